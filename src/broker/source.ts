// Source addresses: parse, canonicalise and bound the CIDR a rule may admit (invariant 2).
import { PortcullisError } from '../errors.ts';
import { addressText, bitsOf, hasHostBits, notASource, parseAddress, readCidr, type Address } from '../net/cidr.ts';

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
  return callerAddress(ip)?.text;
}

/**
 * The socket's address: a zone id is dropped only where one belongs (IPv6 link-local, `fe80::1%eth0`); an IPv4-mapped
 * address (in any spelling) is read as the IPv4 address it carries.
 */
function callerAddress(ip: string): Address | undefined {
  const zone = ip.indexOf('%');
  const a = zone < 0 ? sourceAddress(ip) : sourceAddress(ip.slice(0, zone));
  if (zone >= 0 && !(a?.family === 6 && a.value >> 118n === 0x3fan)) return undefined;
  return a;
}

/** An address as a person writes it: no zone id (`10.0.0.1%eth0` is refused, not trimmed); IPv4-mapped read as IPv4. */
function sourceAddress(ip: string): Address | undefined {
  const a = parseAddress(ip);
  if (a?.family === 6 && a.value >> 32n === 0xffffn) return parseAddress(addressText(a.value & 0xffffffffn, 4));
  return a;
}

/**
 * The address a forwarding proxy reported (X-Forwarded-For as trusted by server.trustProxy): one plain address, never
 * a CIDR and never with a zone id, since it becomes the default source of a rule.
 */
export function forwardedAddress(ip: string): string | undefined {
  return sourceAddress(ip)?.text;
}

/**
 * Reads `text` (an address or a CIDR) into a Source no wider than `limits`.
 * `0.0.0.0/0` and `::/0` are refused whatever the limits say.
 */
export function parseSource(text: string, limits: SourceLimits, field = 'sourceIp'): Source {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) {
    throw new PortcullisError('INVALID_SOURCE_IP', 'sourceIp must be an IPv4 or IPv6 address', { field });
  }
  const parts = readCidr(text.trim(), sourceAddress);
  if (parts === undefined) {
    throw new PortcullisError('INVALID_SOURCE_IP', `sourceIp "${truncate(text)}" is not an IPv4 or IPv6 address or CIDR`, { field });
  }
  const { family, value, text: address } = parts.address;
  const { prefix: prefixLength } = parts;
  const max = bitsOf(family);
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
  if (hasHostBits(value, family, prefixLength)) {
    throw new PortcullisError('INVALID_SOURCE_IP', `sourceIp ${address}/${prefixLength} has host bits set; give the network address`, { field });
  }
  const special = notASource({ family, network: value, prefix: prefixLength });
  if (special !== undefined) {
    throw new PortcullisError('INVALID_SOURCE_IP', `sourceIp ${address}/${prefixLength} is or contains ${special}, which no connection comes from`, { field });
  }
  return { cidr: `${address}/${prefixLength}`, address, prefixLength, family };
}

function truncate(s: string): string {
  return s.length > 50 ? `${s.slice(0, 50)}…` : s;
}
