// Source addresses: parse, canonicalise and bound the CIDR a rule may admit (invariant 2).
import { isIP } from 'node:net';
import { PortcullisError } from '../errors.ts';

export interface Source {
  /** Canonical CIDR, e.g. 198.51.100.7/32 or 2001:db8::1/128. */
  cidr: string;
  address: string;
  prefixLength: number;
  family: 4 | 6;
}

export interface SourceLimits {
  /** Widest prefix allowed by configuration (policy.maxSourcePrefix). */
  ipv4: number;
  ipv6: number;
}

/** The caller's address as the server saw it, with IPv4-mapped IPv6 unwrapped. */
export function canonicalAddress(ip: string): string | undefined {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  const bare = mapped ? mapped[1]! : ip.replace(/%.*$/, '');
  const fam = isIP(bare);
  if (fam === 4) return bare.split('.').map((o) => String(Number(o))).join('.');
  if (fam === 6) return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  return undefined;
}

/**
 * Reads `text` (an address or a CIDR) into a Source no wider than `limits`.
 * `0.0.0.0/0` and `::/0` are refused whatever the limits say.
 */
export function parseSource(text: string, limits: SourceLimits, field = 'sourceIp'): Source {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) {
    throw new PortcullisError('INVALID_SOURCE_IP', 'sourceIp must be an IPv4 or IPv6 address', { field });
  }
  const [addrPart, lenPart, ...extra] = text.trim().split('/');
  const address = canonicalAddress(addrPart ?? '');
  if (address === undefined || extra.length > 0 || (lenPart !== undefined && !/^\d{1,3}$/.test(lenPart))) {
    throw new PortcullisError('INVALID_SOURCE_IP', `sourceIp "${truncate(text)}" is not an IPv4 or IPv6 address or CIDR`, { field });
  }
  const family = isIP(address) as 4 | 6;
  const max = family === 4 ? 32 : 128;
  const prefixLength = lenPart === undefined ? max : Number(lenPart);
  if (prefixLength > max) {
    throw new PortcullisError('INVALID_SOURCE_IP', `sourceIp prefix /${prefixLength} is longer than /${max}`, { field });
  }
  if (prefixLength === 0) {
    throw new PortcullisError('SOURCE_TOO_WIDE', `sourceIp ${address}/0 would admit the whole internet; it is never allowed`, { field });
  }
  const widest = family === 4 ? limits.ipv4 : limits.ipv6;
  if (prefixLength < widest) {
    throw new PortcullisError('SOURCE_TOO_WIDE', `sourceIp /${prefixLength} is wider than the allowed /${widest}`, { field });
  }
  if (hasHostBits(address, family, prefixLength)) {
    throw new PortcullisError('INVALID_SOURCE_IP', `sourceIp ${address}/${prefixLength} has host bits set; give the network address`, { field });
  }
  return { cidr: `${address}/${prefixLength}`, address, prefixLength, family };
}

function hasHostBits(address: string, family: 4 | 6, prefix: number): boolean {
  const bits = family === 4 ? 32 : 128;
  if (prefix >= bits) return false;
  const value = family === 4 ? ipv4ToBigInt(address) : ipv6ToBigInt(address);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  return (value & hostMask) !== 0n;
}

function ipv4ToBigInt(a: string): bigint {
  return a.split('.').reduce((acc, o) => (acc << 8n) + BigInt(Number(o)), 0n);
}

function ipv6ToBigInt(a: string): bigint {
  let text = a;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToBigInt(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g, 16)), 0n);
}

function truncate(s: string): string {
  return s.length > 50 ? `${s.slice(0, 50)}…` : s;
}
