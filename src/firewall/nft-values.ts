// Checks every value before it enters an nft script: addresses, prefixes, ports, names, grant ids.
// The core validated them already; this is the adapter's own fence because nft scripts are a language.
import { PortcullisError } from '../errors.ts';
import { bitsOf, cidrRange as rangeOf, hasHostBits, parseAddress, readCidr, type Address } from '../net/cidr.ts';

export { addressText as fromBigInt, rangeToPrefix } from '../net/cidr.ts';

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
  const a = nftAddress(text);
  return a && { family: a.family, address: a.text };
}

/**
 * Any spelling is read by value (nft itself lists ::102:304 as ::1.2.3.4), and compared by its
 * canonical text. IPv4-mapped addresses (::ffff:0:0/96) are refused: an IPv4 packet never
 * matches them, so such an element would admit nobody while looking like a grant.
 */
function nftAddress(text: string): Address | undefined {
  const a = parseAddress(text);
  return a?.family === 6 && a.value >> 32n === 0xffffn ? undefined : a;
}

/** Parses `addr` or `addr/len`; refuses host bits so the element nft stores is exactly the text given. */
export function parseCidr(text: string, field = 'source'): Cidr {
  if (typeof text !== 'string' || text.length > 64) bad('source is not a CIDR', field);
  const parts = readCidr(text, nftAddress);
  if (parts === undefined) bad(`"${text}" is not a CIDR`, field);
  const { address: ip, prefix } = parts;
  const max = bitsOf(ip.family);
  if (prefix > max) bad(`"${text}" has a prefix longer than /${max}`, field);
  if (hasHostBits(ip.value, ip.family, prefix)) bad(`"${text}" has host bits set`, field);
  return { family: ip.family, address: ip.text, prefix };
}

export function cidrText(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}

/** Inclusive first and last address of a prefix, as integers. */
export function cidrRange(c: Cidr): [bigint, bigint] {
  return rangeOf({ family: c.family, network: toBigInt(c.address, c.family), prefix: c.prefix });
}

/** The address as an integer; text that is not an address of `family` is refused, never read as something else. */
export function toBigInt(address: string, family: 4 | 6): bigint {
  const a = parseAddress(address);
  if (a?.family !== family) bad(`${JSON.stringify(String(address).slice(0, 60))} is not an IPv${family} address`, 'address');
  return a.value;
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
