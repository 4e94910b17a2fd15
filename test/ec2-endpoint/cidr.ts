// CIDR parsing for the stand-in, written apart from the adapter's so a shared mistake cannot hide.
import { isIP } from 'node:net';

export interface Cidr {
  family: 4 | 6;
  /** Network address as a number (IPv4 fits in 32 bits, IPv6 in 128). */
  network: bigint;
  prefix: number;
}

export function parseCidr(s: string): Cidr | undefined {
  const parts = s.split('/');
  if (parts.length !== 2) return undefined;
  const [addr, len] = parts as [string, string];
  const fam = isIP(addr);
  if (fam === 0 || !/^\d{1,3}$/.test(len)) return undefined;
  const bits = fam === 4 ? 32 : 128;
  const prefix = Number(len);
  if (prefix > bits) return undefined;
  const value = fam === 4 ? v4(addr) : v6(addr);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  // EC2 refuses a CIDR whose host bits are set ("CIDR block … is malformed").
  if ((value & hostMask) !== 0n) return undefined;
  return { family: fam === 4 ? 4 : 6, network: value, prefix };
}

/** True when `inner` admits no address that `outer` does not. */
export function within(inner: Cidr, outer: Cidr): boolean {
  if (inner.family !== outer.family || inner.prefix < outer.prefix) return false;
  const bits = inner.family === 4 ? 32 : 128;
  const shift = BigInt(bits - outer.prefix);
  return inner.network >> shift === outer.network >> shift;
}

export function sameCidr(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.prefix === b.prefix && a.network === b.network;
}

function v4(addr: string): bigint {
  return addr.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

function v6(addr: string): bigint {
  let s = addr.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const n = v4(dotted[1]!);
    s = s.slice(0, -dotted[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}
