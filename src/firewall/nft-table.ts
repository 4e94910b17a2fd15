// The shape of Portcullis's own nft table: set names, the baseline script, element keys and refs,
// and reading `nft -j list table` back into elements.
import { PortcullisError } from '../errors.ts';
import {
  assertPort,
  canonicalIp,
  cidrText,
  parseCidr,
  parseGrantComment,
  rangeToPrefix,
  toBigInt,
} from './nft-values.ts';

export interface TableLayout {
  table: string;
  /** Grant sets per family. Two live grants with the same key (same source, port) need two sets. */
  slots: number;
  /** Set-level default timeout: a backstop so even a hand-added element without one cannot live forever. */
  backstopSeconds: number;
}

export const grantSet = (family: 4 | 6, slot: number) => `g${family}_${slot}`;
const GRANT_SET = /^g([46])_(\d{1,2})$/;

/**
 * One transaction that creates what is missing and rewrites the gate chain to exactly the rules below.
 * Re-running it is harmless: `add` of an existing table, set or chain is a no-op, and the flush and
 * re-add happen atomically inside the batch, so no packet ever sees a half-built chain.
 */
export function baselineScript(l: TableLayout, guard: { ports: number[]; destination?: string | undefined }): string {
  const t = `inet ${l.table}`;
  const out: string[] = [`add table ${t}`];
  for (const fam of [4, 6] as const) {
    const ip = fam === 4 ? 'ip' : 'ip6';
    for (let s = 0; s < l.slots; s++) {
      out.push(
        `add set ${t} ${grantSet(fam, s)} { typeof ${ip} saddr . ${ip} daddr . tcp dport; flags interval,timeout; timeout ${l.backstopSeconds}s; }`,
      );
    }
  }
  // Guarded ports: any destination (`ports`) or one destination per family (`guarded4`, `guarded6`).
  out.push(`add set ${t} ports { type inet_service; }`);
  out.push(`add set ${t} guarded4 { type ipv4_addr . inet_service; }`);
  out.push(`add set ${t} guarded6 { type ipv6_addr . inet_service; }`);
  out.push(`add chain ${t} gate`);
  // Priority -10: before the usual filter chains, though order does not matter for safety —
  // a drop here is final whatever other tables accept.
  out.push(`add chain ${t} input { type filter hook input priority -10; policy accept; }`);
  out.push(`add chain ${t} forward { type filter hook forward priority -10; policy accept; }`);
  out.push(`flush chain ${t} input`, `flush chain ${t} forward`, `flush chain ${t} gate`);
  out.push(`add rule ${t} input jump gate`, `add rule ${t} forward jump gate`);
  for (const fam of [4, 6] as const) {
    const ip = fam === 4 ? 'ip' : 'ip6';
    for (let s = 0; s < l.slots; s++) out.push(`add rule ${t} gate ${ip} saddr . ${ip} daddr . tcp dport @${grantSet(fam, s)} accept`);
  }
  out.push(`add rule ${t} gate tcp dport @ports drop`);
  out.push(`add rule ${t} gate ip daddr . tcp dport @guarded4 drop`);
  out.push(`add rule ${t} gate ip6 daddr . tcp dport @guarded6 drop`);
  for (const p of guard.ports) assertPort(p);
  if (guard.ports.length > 0) {
    if (guard.destination === undefined) {
      out.push(`add element ${t} ports { ${guard.ports.join(', ')} }`);
    } else {
      const d = canonicalIp(guard.destination);
      if (d === undefined) throw new PortcullisError('CONFIG_INVALID', 'nftables: destination is not an IP address', { field: 'destination' });
      out.push(`add element ${t} guarded${d.family} { ${guard.ports.map((p) => `${d.address} . ${p}`).join(', ')} }`);
    }
  }
  return out.join('\n') + '\n';
}

/** One element of a grant set, its key as nft text (CIDR or `a-b` range) so it can be deleted exactly. */
export interface NftElement {
  set: string;
  family: 4 | 6;
  saddr: string;
  daddr: string;
  dport: string;
  grantId: string | undefined;
  /** Epoch ms from the comment; else from the kernel's `expires`; null when the element never expires. */
  expiresAt: number | null;
  comment: string | undefined;
}

export const elementKey = (e: Pick<NftElement, 'saddr' | 'daddr' | 'dport'>) => `${e.saddr} . ${e.daddr} . ${e.dport}`;

/** The ref handed to the core: set, exact key and grant, so close() never removes another grant's element. */
export function elementRef(e: NftElement): string {
  return [e.set, e.saddr, e.daddr, e.dport, e.grantId ?? ''].join(',');
}

export function parseRef(ref: string): Pick<NftElement, 'set' | 'family' | 'saddr' | 'daddr' | 'dport' | 'grantId'> {
  const parts = typeof ref === 'string' ? ref.split(',') : [];
  const [set, saddr, daddr, dport, grantId] = parts;
  const m = GRANT_SET.exec(set ?? '');
  const ok =
    parts.length === 5 &&
    m !== null &&
    checkAddrKey(saddr!, Number(m[1]) as 4 | 6) &&
    checkAddrKey(daddr!, Number(m[1]) as 4 | 6) &&
    /^\d{1,5}(-\d{1,5})?$/.test(dport!) &&
    /^([A-Za-z0-9][A-Za-z0-9._:-]{0,79})?$/.test(grantId!);
  if (!ok) throw new PortcullisError('INVALID_REQUEST', `nftables: "${String(ref).slice(0, 120)}" is not an nftables rule ref`, { field: 'ref' });
  return { set: set!, family: Number(m[1]) as 4 | 6, saddr: saddr!, daddr: daddr!, dport: dport!, grantId: grantId || undefined };
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
  const doc = JSON.parse(stdout) as { nftables?: Json[] };
  const sets = new Set<string>();
  const elements: NftElement[] = [];
  for (const item of doc.nftables ?? []) {
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
      if (!Array.isArray(concat) || concat.length !== 3) continue;
      const saddr = addrKey(concat[0], family);
      const daddr = addrKey(concat[1], family);
      const dport = portKey(concat[2]);
      if (saddr === undefined || daddr === undefined || dport === undefined) continue;
      const comment = typeof body.comment === 'string' ? body.comment : undefined;
      const named = parseGrantComment(comment);
      const expires = typeof body.expires === 'number' ? now + body.expires * 1000 : null;
      elements.push({ set: set.name, family, saddr, daddr, dport, grantId: named?.grantId, expiresAt: named?.expiresAt ?? expires, comment });
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

function portKey(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return String(v);
  const range = (v as Json | null)?.range as unknown[] | undefined;
  if (Array.isArray(range) && typeof range[0] === 'number' && typeof range[1] === 'number') {
    return range[0] === range[1] ? String(range[0]) : `${range[0]}-${range[1]}`;
  }
  return undefined;
}
