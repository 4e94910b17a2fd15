// Checks and classifies a rule source for the AWS adapter: exact CIDR, family, and whether it is the whole internet.
import { isIP } from 'node:net';

export interface SourceCidr {
  family: 4 | 6;
  /** The CIDR as it is written to AWS (an address alone gets /32 or /128). */
  cidr: string;
  prefix: number;
  network: bigint;
}

/** Parses `addr/len` or a bare address; undefined when malformed or when host bits are set. */
export function parseSource(source: string): SourceCidr | undefined {
  const parts = source.trim().split('/');
  if (parts.length > 2) return undefined;
  const addr = parts[0]!;
  const fam = isIP(addr);
  if (fam === 0) return undefined;
  const bits = fam === 4 ? 32 : 128;
  const len = parts[1];
  if (len !== undefined && !/^\d{1,3}$/.test(len)) return undefined;
  const prefix = len === undefined ? bits : Number(len);
  if (prefix > bits) return undefined;
  const value = fam === 4 ? ipv4ToBigInt(addr) : ipv6ToBigInt(addr);
  if ((value & ((1n << BigInt(bits - prefix)) - 1n)) !== 0n) return undefined;
  return { family: fam === 4 ? 4 : 6, cidr: `${addr.toLowerCase()}/${prefix}`, prefix, network: value };
}

export function sameSource(a: SourceCidr, b: SourceCidr): boolean {
  return a.family === b.family && a.prefix === b.prefix && a.network === b.network;
}

/** True when the CIDR admits every address of its family: 0.0.0.0/0 or ::/0. */
export function isWorld(cidr: string): boolean {
  const s = parseSource(cidr);
  return s !== undefined && s.prefix === 0;
}

function ipv4ToBigInt(addr: string): bigint {
  return addr.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6ToBigInt(addr: string): bigint {
  let s = addr.toLowerCase();
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4tail) {
    const n = ipv4ToBigInt(v4tail[1]!);
    s = `${s.slice(0, -v4tail[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}
