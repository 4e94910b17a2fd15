// Checks every value before it enters an nft script: addresses, prefixes, ports, names, grant ids.
// The core validated them already; this is the adapter's own fence because nft scripts are a language.
import { isIP } from 'node:net';
import { PortcullisError } from '../errors.ts';

export interface Cidr {
  family: 4 | 6;
  /** Canonical address text as nft prints it (Node's formatting matches nft's for v4 and v6). */
  address: string;
  prefix: number;
}

const GRANT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$/;
const TABLE = /^[A-Za-z][A-Za-z0-9_]{0,30}$/;
const NETNS = /^[A-Za-z0-9_.-]{1,64}$/;

function bad(message: string, field: string): never {
  throw new PortcullisError('INVALID_REQUEST', `nftables: ${message}`, { field });
}

export function assertGrantId(id: string): void {
  if (typeof id !== 'string' || !GRANT_ID.test(id)) bad(`grant id ${JSON.stringify(String(id).slice(0, 40))} has characters nft comments must not carry`, 'grantId');
}

export function assertTable(name: string): void {
  if (!TABLE.test(name)) bad(`table name ${JSON.stringify(name)} is not an nft identifier`, 'table');
}

export function assertNetns(name: string): void {
  if (!NETNS.test(name) || name === '.' || name === '..') bad(`netns ${JSON.stringify(name)} is not a namespace name`, 'netns');
}

export function assertPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new PortcullisError('INVALID_PORT', `nftables: port ${String(port)} is not 1-65535`, { field: 'port' });
  }
}

/** Canonical text of an IP address, or undefined. IPv4-mapped IPv6 is refused: it would never match. */
export function canonicalIp(text: string): { family: 4 | 6; address: string } | undefined {
  const fam = isIP(text);
  if (fam === 4) {
    const parts = text.split('.');
    if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
    return { family: 4, address: parts.map((p) => String(Number(p))).join('.') };
  }
  if (fam === 6) {
    if (text.includes('%') || text.includes('.')) return undefined;
    return { family: 6, address: new URL(`http://[${text}]/`).hostname.slice(1, -1) };
  }
  return undefined;
}

/** Parses `addr` or `addr/len`; refuses host bits so the element nft stores is exactly the text given. */
export function parseCidr(text: string, field = 'source'): Cidr {
  if (typeof text !== 'string' || text.length > 64) bad('source is not a CIDR', field);
  const [addr, len, ...rest] = text.split('/');
  const ip = canonicalIp(addr ?? '');
  if (ip === undefined || rest.length > 0 || (len !== undefined && !/^\d{1,3}$/.test(len))) bad(`"${text}" is not a CIDR`, field);
  const max = ip.family === 4 ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (prefix > max) bad(`"${text}" has a prefix longer than /${max}`, field);
  if (toBigInt(ip.address, ip.family) & ~mask(prefix, ip.family) & allOnes(ip.family)) bad(`"${text}" has host bits set`, field);
  return { family: ip.family, address: ip.address, prefix };
}

export function cidrText(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}

/** Inclusive first and last address of a prefix, as integers. */
export function cidrRange(c: Cidr): [bigint, bigint] {
  const start = toBigInt(c.address, c.family);
  return [start, start | (~mask(c.prefix, c.family) & allOnes(c.family))];
}

export function toBigInt(address: string, family: 4 | 6): bigint {
  if (family === 4) return address.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** The prefix length that covers exactly [start, end], or undefined when the range is not a prefix. */
export function rangeToPrefix(start: bigint, end: bigint, family: 4 | 6): number | undefined {
  const bits = family === 4 ? 32 : 128;
  for (let p = 0; p <= bits; p++) {
    const m = mask(p, family);
    if ((start & ~m & allOnes(family)) === 0n && (start | (~m & allOnes(family))) === end) return p;
  }
  return undefined;
}

export function fromBigInt(n: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((n >> s) & 0xffffn).toString(16));
  return canonicalIp(groups.join(':'))!.address;
}

function allOnes(family: 4 | 6): bigint {
  return (1n << BigInt(family === 4 ? 32 : 128)) - 1n;
}

function mask(prefix: number, family: 4 | 6): bigint {
  const bits = BigInt(family === 4 ? 32 : 128);
  return (allOnes(family) >> (bits - BigInt(prefix))) << (bits - BigInt(prefix));
}

const COMMENT = /^portcullis grant=([A-Za-z0-9][A-Za-z0-9._:-]{0,79}) exp=(\d{1,15})$/;

/** The element comment: names the grant and its expiry so a crashed or second broker can find and judge it. */
export function grantComment(grantId: string, expiresAt: number): string {
  assertGrantId(grantId);
  return `portcullis grant=${grantId} exp=${Math.trunc(expiresAt)}`;
}

export function parseGrantComment(comment: unknown): { grantId: string; expiresAt: number } | undefined {
  if (typeof comment !== 'string') return undefined;
  const m = COMMENT.exec(comment);
  return m ? { grantId: m[1]!, expiresAt: Number(m[2]) } : undefined;
}
