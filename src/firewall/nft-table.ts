// The grant elements of Portcullis's own nft table: element keys and refs, and reading
// `nft -j list table` back into elements. (The table's baseline is described in nft-baseline.ts.)
import { createHash } from 'node:crypto';
import { PortcullisError } from '../errors.ts';
import { GRANT_SET } from './nft-baseline.ts';
import {
  canonicalIp,
  cidrText,
  parseCidr,
  parseGrantComment,
  rangeToPrefix,
  toBigInt,
} from './nft-values.ts';

export { grantSet, type TableLayout } from './nft-baseline.ts';

/** One element of a grant set, its key as nft text (CIDR or `a-b` range) so it can be deleted exactly. */
export interface NftElement {
  set: string;
  family: 4 | 6;
  saddr: string;
  daddr: string;
  /** `tcp`, `udp` (as nft lists the protocol). */
  proto: string;
  dport: string;
  grantId: string | undefined;
  /** Epoch ms from the comment; else from the kernel's `expires`; null when the element never expires. */
  expiresAt: number | null;
  comment: string | undefined;
  /** Packets the element admitted (its counter), when listed. */
  packets?: number | undefined;
}

export const elementKey = (e: Pick<NftElement, 'saddr' | 'daddr' | 'proto' | 'dport'>) => `${e.saddr} . ${e.daddr} . ${e.proto} . ${e.dport}`;

/**
 * When the kernel removes a grant's elements, as the adapter knows it from the write: `bound` is the
 * latest the kernel's timeout can fire (epoch ms: the write's answer plus the timeout computed before
 * it), `expiresAt` the grant expiry the timeout was computed for, `shape` a digest of every element
 * key written (all destinations and protocols), so a close can delete exactly those keys without a
 * listing, and only while the target's configuration still yields the same keys.
 */
export interface RefTiming {
  bound: number;
  expiresAt: number;
  shape: string;
}

/** Digest of a grant's element keys (order-free): what a close rebuilds from the configuration must match it. */
export function keysShape(keys: string[]): string {
  return createHash('sha256').update([...keys].sort().join('\n')).digest('hex').slice(0, 16);
}

/**
 * The ref handed to the core: set, source, (first) destination, port and grant. A grant holds one
 * element per destination and protocol, all in one set; close() removes the grant's elements of that
 * set, source and port, so it never removes another grant's. Without a grant id (an orphan nobody's
 * comment explains) the destination is part of the match. Refs the adapter wrote itself add the
 * element's timing (bound, expiresAt, shape); refs read back from a listing, and refs stored before
 * the timing existed, have the first five fields only and are closed through a listing.
 */
export function elementRef(e: Pick<NftElement, 'set' | 'saddr' | 'daddr' | 'dport' | 'grantId'>, timing?: RefTiming): string {
  const base = [e.set, e.saddr, e.daddr, e.dport, e.grantId ?? ''];
  return (timing && e.grantId !== undefined ? [...base, timing.bound, timing.expiresAt, timing.shape] : base).join(',');
}

export type ParsedRef = Pick<NftElement, 'set' | 'family' | 'saddr' | 'daddr' | 'dport' | 'grantId'> & { timing?: RefTiming };

export function parseRef(ref: string): ParsedRef {
  const parts = typeof ref === 'string' ? ref.split(',') : [];
  const [set, saddr, daddr, dport, grantId, bound, expiresAt, shape] = parts;
  const m = GRANT_SET.exec(set ?? '');
  const timed = parts.length === 8 && /^\d{1,15}$/.test(bound!) && /^\d{1,15}$/.test(expiresAt!) && /^[0-9a-f]{16}$/.test(shape!) && grantId !== '';
  const ok =
    (parts.length === 5 || timed) &&
    m !== null &&
    checkAddrKey(saddr!, Number(m[1]) as 4 | 6) &&
    checkAddrKey(daddr!, Number(m[1]) as 4 | 6) &&
    /^\d{1,5}(-\d{1,5})?$/.test(dport!) &&
    /^([A-Za-z0-9][A-Za-z0-9._:-]{0,79})?$/.test(grantId!);
  if (!ok) throw new PortcullisError('INVALID_REQUEST', `nftables: "${String(ref).slice(0, 120)}" is not an nftables rule ref`, { field: 'ref' });
  const out: ParsedRef = { set: set!, family: Number(m[1]) as 4 | 6, saddr: saddr!, daddr: daddr!, dport: dport!, grantId: grantId || undefined };
  if (timed) out.timing = { bound: Number(bound), expiresAt: Number(expiresAt), shape: shape! };
  return out;
}

function checkAddrKey(text: string, family: 4 | 6): boolean {
  try {
    if (text.includes('-')) {
      const [a, b] = text.split('-');
      return canonicalIp(a!)?.family === family && canonicalIp(b!)?.family === family;
    }
    const c = parseCidr(text);
    return c.family === family && cidrText(c) === text;
  } catch {
    return false;
  }
}

type Json = Record<string, unknown>;

/** Reads the grant-set elements out of `nft -j list table inet T`. */
export function parseTableListing(stdout: string, now: number): { sets: Set<string>; elements: NftElement[] } {
  return tableElements(listingItems(stdout), now);
}

/** The items of an `nft -j list` document. */
export function listingItems(stdout: string): Json[] {
  return (JSON.parse(stdout) as { nftables?: Json[] }).nftables ?? [];
}

export function tableElements(items: Json[], now: number): { sets: Set<string>; elements: NftElement[] } {
  const sets = new Set<string>();
  const elements: NftElement[] = [];
  for (const item of items) {
    const set = item.set as Json | undefined;
    if (!set || typeof set.name !== 'string') continue;
    sets.add(set.name);
    const m = GRANT_SET.exec(set.name);
    if (!m) continue;
    const family = Number(m[1]) as 4 | 6;
    for (const raw of (set.elem as unknown[] | undefined) ?? []) {
      const wrapped = (raw as Json | null)?.elem as Json | undefined;
      const body = wrapped ?? { val: raw };
      const concat = (body.val as Json | undefined)?.concat as unknown[] | undefined;
      if (!Array.isArray(concat) || concat.length !== 4) continue;
      const saddr = addrKey(concat[0], family);
      const daddr = addrKey(concat[1], family);
      const proto = protoKey(concat[2]);
      const dport = portKey(concat[3]);
      if (saddr === undefined || daddr === undefined || proto === undefined || dport === undefined) continue;
      const comment = typeof body.comment === 'string' ? body.comment : undefined;
      const named = parseGrantComment(comment);
      const expires = typeof body.expires === 'number' ? now + body.expires * 1000 : null;
      const packets = (body.counter as Json | undefined)?.packets;
      elements.push({ set: set.name, family, saddr, daddr, proto, dport, grantId: named?.grantId, expiresAt: named?.expiresAt ?? expires, comment, ...(typeof packets === 'number' ? { packets } : {}) });
    }
  }
  return { sets, elements };
}

/** nft prints a /32 (/128) as a bare address, other prefixes as {prefix}, odd spans as {range}. */
function addrKey(v: unknown, family: 4 | 6): string | undefined {
  if (typeof v === 'string') {
    const ip = canonicalIp(v);
    return ip?.family === family ? `${ip.address}/${family === 4 ? 32 : 128}` : undefined;
  }
  const o = v as Json | null;
  const prefix = o?.prefix as { addr?: unknown; len?: unknown } | undefined;
  if (prefix && typeof prefix.addr === 'string' && typeof prefix.len === 'number') {
    const ip = canonicalIp(prefix.addr);
    return ip?.family === family ? `${ip.address}/${prefix.len}` : undefined;
  }
  const range = o?.range as unknown[] | undefined;
  if (Array.isArray(range) && typeof range[0] === 'string' && typeof range[1] === 'string') {
    const a = canonicalIp(range[0]);
    const b = canonicalIp(range[1]);
    if (a?.family !== family || b?.family !== family) return undefined;
    const p = rangeToPrefix(toBigInt(a.address, family), toBigInt(b.address, family), family);
    return p === undefined ? `${a.address}-${b.address}` : `${a.address}/${p}`;
  }
  return undefined;
}

function protoKey(v: unknown): string | undefined {
  if (v === 6 || v === 'tcp') return 'tcp';
  if (v === 17 || v === 'udp') return 'udp';
  return typeof v === 'string' && /^[a-z0-9-]{1,16}$/.test(v) ? v : undefined;
}

function portKey(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return String(v);
  const range = (v as Json | null)?.range as unknown[] | undefined;
  if (Array.isArray(range) && typeof range[0] === 'number' && typeof range[1] === 'number') {
    return range[0] === range[1] ? String(range[0]) : `${range[0]}-${range[1]}`;
  }
  return undefined;
}
