// IP addresses and CIDRs as integers: parse, canonical text, host bits, ranges — shared by the core and the firewall adapters.
import { isIP } from 'node:net';

export type Family = 4 | 6;

export interface Address {
  family: Family;
  value: bigint;
  /** Canonical text: dotted decimal, or IPv6 as the WHATWG URL serializer writes it (lowercase, longest zero run as `::`, no dotted tail). */
  text: string;
}

export interface Cidr {
  family: Family;
  network: bigint;
  prefix: number;
}

export const bitsOf = (family: Family): 32 | 128 => (family === 4 ? 32 : 128);

const allOnes = (family: Family): bigint => (1n << BigInt(bitsOf(family))) - 1n;

/** The bits a prefix leaves to hosts, e.g. 0xff for a /24. */
export const hostMask = (prefix: number, family: Family): bigint => allOnes(family) >> BigInt(prefix);

export const hasHostBits = (value: bigint, family: Family, prefix: number): boolean => (value & hostMask(prefix, family)) !== 0n;

/**
 * Reads an IPv4 or IPv6 address, IPv6 with a dotted IPv4 tail (`::ffff:1.2.3.4`) included; undefined otherwise.
 * Refused: zone ids (`fe80::1%eth0`: not part of the address, callers that see them strip them first) and IPv4 octets
 * with leading zeros (`010.1.1.1`: octal to inet_aton, decimal to others — never guess).
 */
export function parseAddress(text: string): Address | undefined {
  if (typeof text !== 'string' || text.includes('%')) return undefined;
  const family = isIP(text);
  if (family === 4 && !/(^|\.)0\d/.test(text)) return address(v4Value(text), 4);
  if (family === 6) return address(v6Value(text), 6);
  return undefined;
}

function address(value: bigint, family: Family): Address {
  return { family, value, text: addressText(value, family) };
}

/** Canonical text of an address given as an integer (bits above the family's width are ignored). */
export function addressText(value: bigint, family: Family): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((value >> s) & 0xffffn).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** `isIP` has validated `text`. */
function v4Value(text: string): bigint {
  return text.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

/** `isIP` has validated `text`. */
function v6Value(text: string): bigint {
  let s = text;
  const dotted = /\d+\.\d+\.\d+\.\d+$/.exec(s);
  if (dotted) {
    const n = v4Value(dotted[0]);
    s = `${s.slice(0, dotted.index)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/**
 * Splits `addr` or `addr/len` (a bare address gets /32 or /128) without judging the prefix: it may be longer than the
 * family allows or leave host bits set, so each caller can refuse those in its own order and words.
 */
export function readCidr(
  text: string,
  readAddress: (text: string) => Address | undefined = parseAddress,
): { address: Address; prefix: number } | undefined {
  const [addr, len, ...rest] = text.split('/');
  const address = readAddress(addr ?? '');
  if (address === undefined || rest.length > 0 || (len !== undefined && !/^\d{1,3}$/.test(len))) return undefined;
  return { address, prefix: len === undefined ? bitsOf(address.family) : Number(len) };
}

/** `addr` or `addr/len` as an exact network; undefined when malformed, the prefix is too long or host bits are set. */
export function parseCidr(text: string, readAddress?: (text: string) => Address | undefined): Cidr | undefined {
  const parts = readCidr(text, readAddress);
  if (parts === undefined) return undefined;
  const { address: a, prefix } = parts;
  if (prefix > bitsOf(a.family) || hasHostBits(a.value, a.family, prefix)) return undefined;
  return { family: a.family, network: a.value, prefix };
}

export function cidrText(c: Cidr): string {
  return `${addressText(c.network, c.family)}/${c.prefix}`;
}

/** Inclusive first and last address of a prefix, as integers. */
export function cidrRange(c: Cidr): [bigint, bigint] {
  return [c.network, c.network | hostMask(c.prefix, c.family)];
}

export function cidrContains(c: Cidr, a: Address): boolean {
  const [first, last] = cidrRange(c);
  return a.family === c.family && a.value >= first && a.value <= last;
}

/** The prefix length that covers exactly [start, end], or undefined when the range is not a prefix. */
export function rangeToPrefix(start: bigint, end: bigint, family: Family): number | undefined {
  for (let p = 0; p <= bitsOf(family); p++) {
    const host = hostMask(p, family);
    if ((start & host) === 0n && (start | host) === end) return p;
  }
  return undefined;
}

export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const [a0, a1] = cidrRange(a);
  const [b0, b1] = cidrRange(b);
  return a0 <= b1 && b0 <= a1;
}

// Addresses no packet from a person's computer comes from: admitting them either admits nothing or, on some packet
// filters, something other than what was meant. 0.0.0.0/8 is "this network", only ever a source during DHCP.
const NOT_A_SOURCE: { cidr: Cidr; what: string }[] = [
  { cidr: { family: 4, network: 0n, prefix: 8 }, what: 'the unspecified address ("this network", 0.0.0.0/8)' },
  { cidr: { family: 4, network: 0xe0000000n, prefix: 4 }, what: 'a multicast address (224.0.0.0/4)' },
  { cidr: { family: 4, network: 0xffffffffn, prefix: 32 }, what: 'the broadcast address 255.255.255.255' },
  { cidr: { family: 6, network: 0n, prefix: 128 }, what: 'the unspecified address ::' },
  { cidr: { family: 6, network: 0xffn << 120n, prefix: 8 }, what: 'a multicast address (ff00::/8)' },
];

/** Why `c` cannot be a source (it is or overlaps an unspecified, broadcast or multicast range), or undefined. */
export function notASource(c: Cidr): string | undefined {
  return NOT_A_SOURCE.find((s) => cidrOverlaps(c, s.cidr))?.what;
}
