// What Portcullis's nft table must contain, as data: the install script and the check of one listing
// against it are both derived from this description, so a new part (a counter on the drop rules, a
// per-element counter) is added in one place and is then both installed and verified.
import type { Protocol } from './port.ts';
import { assertPort, canonicalIp } from './nft-values.ts';

export interface TableLayout {
  table: string;
  /** Grant sets per family. Two live grants with the same key (same source, destination, port) need two sets. */
  slots: number;
  /** Set-level default timeout: a backstop so even a hand-added element without one cannot live forever. */
  backstopSeconds: number;
  /** The per-source attempt sets the drop path updates: at most `size` elements, each forgotten `timeoutSeconds` after its last attempt. */
  attempts: { size: number; timeoutSeconds: number };
}

/** One target guarded by the table: its destination addresses (none = any), ports and protocols. */
export interface NftTarget {
  id: string;
  destinations: { family: 4 | 6; address: string }[];
  ports: number[];
  protocols: Protocol[];
  /** `keep`: packets of connections conntrack already knows (established during a grant) pass after it ends. */
  onExpiry?: 'cut' | 'keep';
}

export interface SetPart {
  name: string;
  /** Key types as `nft -j` lists them. */
  type: string[];
  flags: string[];
  timeout?: number;
  /** Most elements the kernel keeps (a dynamic set that is full refuses new keys). */
  size?: number;
  /** Every element carries a counter (`counter` in the set). */
  counter?: boolean;
  /** Elements the baseline itself holds (guarded ports), as nft text; grant sets have none. */
  elements?: string[];
}

export interface RulePart {
  /** Also the rule's identity: the check finds each rule by it. */
  comment: string;
  /** Left side of the set lookup, as nft text (`meta l4proto . th dport`); none for a bare verdict. */
  match?: string;
  set?: string;
  /** A statement before the verdict, as nft text (`update @attempts4 { … }`, `counter`). */
  stmt?: string;
  verdict: string;
}

export interface ChainPart {
  name: string;
  base?: { type: 'filter'; hook: 'input' | 'forward'; prio: number; policy: 'accept' };
  rules: RulePart[];
}

export interface Baseline {
  table: string;
  sets: SetPart[];
  chains: ChainPart[];
}

export const grantSet = (family: 4 | 6, slot: number) => `g${family}_${slot}`;
export const GRANT_SET = /^g([46])_(\d{1,2})$/;
export const attemptSet = (family: 4 | 6) => `attempts${family}`;
/** The last rule of the `blocked` chain: drops what neither attempt set could take (it was full), counting it. */
export const OVERFLOW_RULE = 'portcullis:overflow';

const ADDR = { 4: 'ipv4_addr', 6: 'ipv6_addr' } as const;
const IP = { 4: 'ip', 6: 'ip6' } as const;

/**
 * The table: grant sets keyed source . destination . protocol . port (so an element admits to one
 * destination only; each element counts its packets, the clock of idleTimeout), the guarded sets, and a gate chain that accepts what a grant set holds and drops
 * what a guarded set holds. Priority -10 puts it before the usual filter chains, though order does not
 * matter for safety: a drop here is final whatever other tables accept.
 */
export function describeBaseline(l: TableLayout, targets: readonly NftTarget[]): Baseline {
  const sets: SetPart[] = [];
  const accepts: RulePart[] = [];
  for (const fam of [4, 6] as const) {
    for (let s = 0; s < l.slots; s++) {
      const name = grantSet(fam, s);
      sets.push({ name, type: [ADDR[fam], ADDR[fam], 'inet_proto', 'inet_service'], flags: ['interval', 'timeout'], timeout: l.backstopSeconds, counter: true });
      accepts.push({ comment: `portcullis:accept:${name}`, match: `${IP[fam]} saddr . ${IP[fam]} daddr . meta l4proto . th dport`, set: name, verdict: 'accept' });
    }
  }
  // Guarded: any destination (`ports`, a target without destinations) or per destination (`guarded4/6`).
  // Kept (onExpiry: keep): the same shapes, for the targets whose established connections outlive a grant.
  const anyDest: string[] = [];
  const perDest: Record<4 | 6, string[]> = { 4: [], 6: [] };
  const keepAny: string[] = [];
  const keepPer: Record<4 | 6, string[]> = { 4: [], 6: [] };
  for (const t of targets) {
    for (const p of t.ports) assertPort(p);
    const keep = t.onExpiry === 'keep';
    for (const proto of t.protocols) {
      for (const port of t.ports) {
        if (t.destinations.length === 0) {
          anyDest.push(`${proto} . ${port}`);
          if (keep) keepAny.push(`${proto} . ${port}`);
        }
        for (const d of t.destinations) {
          perDest[d.family].push(`${d.address} . ${proto} . ${port}`);
          if (keep) keepPer[d.family].push(`${d.address} . ${proto} . ${port}`);
        }
      }
    }
  }
  sets.push({ name: 'ports', type: ['inet_proto', 'inet_service'], flags: [], elements: uniq(anyDest) });
  for (const fam of [4, 6] as const) sets.push({ name: `guarded${fam}`, type: [ADDR[fam], 'inet_proto', 'inet_service'], flags: [], elements: uniq(perDest[fam]) });
  sets.push({ name: 'keepports', type: ['inet_proto', 'inet_service'], flags: [], elements: uniq(keepAny) });
  for (const fam of [4, 6] as const) sets.push({ name: `keep${fam}`, type: [ADDR[fam], 'inet_proto', 'inet_service'], flags: [], elements: uniq(keepPer[fam]) });
  // Only conntrack's established or related packets, only to a kept target's destination and port:
  // a connection can only have been established through a grant's accept, so a new one is still dropped.
  const keeps: RulePart[] = [
    { comment: 'portcullis:keep:ports', match: 'ct state established,related meta l4proto . th dport', set: 'keepports', verdict: 'accept' },
    { comment: 'portcullis:keep:keep4', match: 'ct state established,related ip daddr . meta l4proto . th dport', set: 'keep4', verdict: 'accept' },
    { comment: 'portcullis:keep:keep6', match: 'ct state established,related ip6 daddr . meta l4proto . th dport', set: 'keep6', verdict: 'accept' },
  ];
  // Every guarded packet no grant admits goes to `blocked`, which counts it per source, destination,
  // protocol and port in a bounded set and drops it. The update is a rule of its own ending in drop: a
  // full set makes nft skip the rest of that rule, so the packet falls through to the overflow rule,
  // which counts and drops it too. Every path out of `blocked` is a drop.
  for (const fam of [4, 6] as const) {
    sets.push({ name: attemptSet(fam), type: [ADDR[fam], ADDR[fam], 'inet_proto', 'inet_service'], flags: ['timeout'], timeout: l.attempts.timeoutSeconds, size: l.attempts.size, counter: true });
  }
  const drops: RulePart[] = [
    { comment: 'portcullis:drop:ports', match: 'meta l4proto . th dport', set: 'ports', verdict: 'jump blocked' },
    { comment: 'portcullis:drop:guarded4', match: 'ip daddr . meta l4proto . th dport', set: 'guarded4', verdict: 'jump blocked' },
    { comment: 'portcullis:drop:guarded6', match: 'ip6 daddr . meta l4proto . th dport', set: 'guarded6', verdict: 'jump blocked' },
  ];
  const blocked: RulePart[] = [
    ...([4, 6] as const).map((fam) => ({ comment: `portcullis:count${fam}`, stmt: `update @${attemptSet(fam)} { ${IP[fam]} saddr . ${IP[fam]} daddr . meta l4proto . th dport }`, verdict: 'drop' })),
    { comment: OVERFLOW_RULE, stmt: 'counter', verdict: 'drop' },
  ];
  const jump: RulePart = { comment: 'portcullis:jump', verdict: 'jump gate' };
  return {
    table: l.table,
    sets,
    chains: [
      { name: 'gate', rules: [...accepts, ...keeps, ...drops] },
      { name: 'blocked', rules: blocked },
      { name: 'input', base: { type: 'filter', hook: 'input', prio: -10, policy: 'accept' }, rules: [jump] },
      { name: 'forward', base: { type: 'filter', hook: 'forward', prio: -10, policy: 'accept' }, rules: [jump] },
    ],
  };
}

export function ruleText(r: RulePart): string {
  return [r.match, r.set && `@${r.set}`, r.stmt, r.verdict, `comment "${r.comment}"`].filter(Boolean).join(' ');
}

/**
 * One transaction that replaces the table with the baseline plus `elements` (lines of `add element`).
 * `add` then `delete` makes the delete safe when the table is absent (nft 1.0.6 has no `destroy`); the
 * kernel applies the batch atomically, so no packet ever sees the table half-built or missing.
 */
export function installScript(b: Baseline, elements: string[]): string {
  const t = `inet ${b.table}`;
  const out = [`add table ${t}`, `delete table ${t}`, `add table ${t}`];
  for (const s of b.sets) {
    const flags = s.flags.length ? ` flags ${s.flags.join(',')};` : '';
    const timeout = s.timeout === undefined ? '' : ` timeout ${s.timeout}s;`;
    const size = s.size === undefined ? '' : ` size ${s.size};`;
    const counter = s.counter ? ' counter;' : '';
    out.push(`add set ${t} ${s.name} { type ${s.type.join(' . ')};${flags}${timeout}${size}${counter} }`);
    if (s.elements?.length) out.push(`add element ${t} ${s.name} { ${s.elements.join(', ')} }`);
  }
  for (const c of b.chains) {
    out.push(c.base ? `add chain ${t} ${c.name} { type ${c.base.type} hook ${c.base.hook} priority ${c.base.prio}; policy ${c.base.policy}; }` : `add chain ${t} ${c.name}`);
  }
  for (const c of b.chains) for (const r of c.rules) out.push(`add rule ${t} ${c.name} ${ruleText(r)}`);
  out.push(...elements);
  return out.join('\n') + '\n';
}

type Json = Record<string, unknown>;

/**
 * What of the baseline is missing or altered in `nft -j list table inet T` (undefined: the table is
 * absent). Each entry names the part, e.g. `chain gate rules`, `set ports elements`. Parts the baseline
 * does not describe (another chain someone added) are not judged: only a drop is final in nftables,
 * and ours are all checked.
 */
export function compareBaseline(b: Baseline, listing: Json[] | undefined): string[] {
  if (listing === undefined) return [`table inet ${b.table}`];
  const sets = new Map<string, Json>();
  const chains = new Map<string, Json>();
  const rules = new Map<string, string[]>();
  for (const item of listing) {
    const s = item.set as Json | undefined;
    if (s && typeof s.name === 'string') sets.set(s.name, s);
    const c = item.chain as Json | undefined;
    if (c && typeof c.name === 'string') chains.set(c.name, c);
    const r = item.rule as Json | undefined;
    if (r && typeof r.chain === 'string') rules.set(r.chain, [...(rules.get(r.chain) ?? []), listedRuleText(r)]);
  }
  const missing: string[] = [];
  for (const want of b.sets) {
    const have = sets.get(want.name);
    if (!have) {
      missing.push(`set ${want.name}`);
      continue;
    }
    const type = Array.isArray(have.type) ? have.type : [have.type];
    const flags = Array.isArray(have.flags) ? (have.flags as string[]) : [];
    if (
      !same(type as string[], want.type) || !same([...flags].sort(), [...want.flags].sort()) || (want.timeout !== undefined && have.timeout !== want.timeout) ||
      (want.size !== undefined && have.size !== want.size) ||
      Boolean(want.counter) !== hasCounter(have)
    ) {
      missing.push(`set ${want.name} definition`);
      continue;
    }
    if (want.elements !== undefined) {
      const elems = ((have.elem as unknown[] | undefined) ?? []).map(elementText);
      if (!same([...elems].sort(), [...want.elements].sort())) missing.push(`set ${want.name} elements`);
    }
  }
  for (const want of b.chains) {
    const have = chains.get(want.name);
    if (!have) {
      missing.push(`chain ${want.name}`);
      continue;
    }
    if (want.base && (have.type !== want.base.type || have.hook !== want.base.hook || have.prio !== want.base.prio || have.policy !== want.base.policy)) {
      missing.push(`chain ${want.name} hook`);
    }
    if (!same(rules.get(want.name) ?? [], want.rules.map(ruleText))) missing.push(`chain ${want.name} rules`);
  }
  return missing;
}

/** A listed rule back as the text `ruleText` writes; anything it cannot read becomes `?`, i.e. altered. */
function listedRuleText(r: Json): string {
  const parts: string[] = [];
  for (const e of (r.expr as Json[] | undefined) ?? []) {
    const m = e.match as Json | undefined;
    if (m) {
      const left = m.left as Json | undefined;
      const ct = left?.ct as Json | undefined;
      if (ct && m.op === 'in' && Array.isArray(m.right) && m.right.every((x) => typeof x === 'string')) {
        parts.push(`ct ${String(ct.key)}`, (m.right as string[]).join(','));
        continue;
      }
      const keys = Array.isArray(left?.concat) ? (left.concat as Json[]) : left ? [left] : [];
      if (m.op !== '==' || typeof m.right !== 'string') return '?';
      parts.push(keys.map(keyText).join(' . '), m.right);
    } else if ('accept' in e) parts.push('accept');
    else if ('drop' in e) parts.push('drop');
    else if (e.jump) parts.push(`jump ${String((e.jump as Json).target)}`);
    else if (e.set && (e.set as Json).op === 'update') {
      const st = e.set as Json;
      const el = st.elem as Json | undefined;
      const keys = Array.isArray(el?.concat) ? (el.concat as Json[]) : el ? [el] : [];
      parts.push(`update ${String(st.set)} { ${keys.map(keyText).join(' . ')} }`);
    }
    else if ('counter' in e) parts.push('counter');
    else return '?';
  }
  if (typeof r.comment === 'string') parts.push(`comment "${r.comment}"`);
  return parts.join(' ');
}

function keyText(k: Json): string {
  const p = k.payload as Json | undefined;
  if (p) return `${String(p.protocol)} ${String(p.field)}`;
  const meta = k.meta as Json | undefined;
  if (meta) return `meta ${String(meta.key)}`;
  return '?';
}

const PROTO_NUMBERS: Record<number, string> = { 6: 'tcp', 17: 'udp' };

/** A static element (`tcp . 3389`, `10.0.0.1 . udp . 3389`) as nft text. */
function elementText(raw: unknown): string {
  const v = ((raw as Json | null)?.elem as Json | undefined)?.val ?? raw;
  const parts = Array.isArray((v as Json | null)?.concat) ? ((v as Json).concat as unknown[]) : [v];
  // Only the port is last; a number before it is a protocol nft chose to print by number. Addresses
  // are compared by value (nft lists ::102:304 as ::1.2.3.4).
  return parts
    .map((p, i) => {
      if (typeof p === 'number') return i < parts.length - 1 ? (PROTO_NUMBERS[p] ?? String(p)) : String(p);
      if (typeof p === 'string') return p.includes('.') || p.includes(':') ? (canonicalIp(p)?.address ?? p) : p;
      return '?';
    })
    .join(' . ');
}

function hasCounter(set: Json): boolean {
  return Array.isArray(set.stmt) && (set.stmt as Json[]).some((x) => 'counter' in x);
}

function same(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function uniq(xs: string[]): string[] {
  return [...new Set(xs)];
}
