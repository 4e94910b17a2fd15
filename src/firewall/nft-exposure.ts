// Exposure scan over `nft -j list ruleset`: accept rules in OTHER tables that match a managed port.
// Report only. In nftables an accept ends just its own base chain, so Portcullis's drop still holds;
// these rules matter when our table is gone or when someone relies on them, and an auditor should know.
import type { Exposure } from './port.ts';

type Json = Record<string, unknown>;

interface Ctx {
  ownTable: string;
  ports: number[];
  scope: string;
}

export function scanRuleset(stdout: string, ctx: Ctx): Exposure[] {
  const items = ((JSON.parse(stdout) as { nftables?: Json[] }).nftables ?? []);
  // Named sets, to resolve `tcp dport @ssh_rdp` and `ip saddr @admins`.
  const sets = new Map<string, unknown[]>();
  for (const it of items) {
    const s = it.set as Json | undefined;
    if (s && typeof s.name === 'string') sets.set(`${String(s.family)}/${String(s.table)}/${s.name}`, (s.elem as unknown[] | undefined) ?? []);
  }
  const found: Exposure[] = [];
  for (const it of items) {
    const r = it.rule as Json | undefined;
    if (!r || (r.family === 'inet' && r.table === ctx.ownTable)) continue;
    const expr = (r.expr as Json[] | undefined) ?? [];
    if (!expr.some((e) => 'accept' in e)) continue;
    const where = `${String(r.family)}/${String(r.table)}`;
    let portValues: unknown[] | undefined;
    let negated = false;
    let source: string | undefined;
    for (const e of expr) {
      const m = e.match as Json | undefined;
      if (!m) continue;
      const left = (m.left as Json | undefined)?.payload as Json | undefined;
      if (!left) continue;
      if (left.field === 'dport' && (left.protocol === 'tcp' || left.protocol === 'th')) {
        portValues = values(m.right, sets, where);
        negated = m.op === '!=';
      }
      if (left.field === 'saddr' && (left.protocol === 'ip' || left.protocol === 'ip6')) source = sourceText(m.right);
    }
    // Rules without a port match are not about a managed port (e.g. `ct state established accept`).
    if (portValues === undefined) continue;
    for (const port of ctx.ports) {
      const hit = portValues.some((v) => covers(v, port));
      if (hit === negated) continue;
      const world = source === undefined || /\/0$/.test(source);
      found.push({
        scope: ctx.scope,
        ref: `rule:${where}/${String(r.chain)}/handle ${String(r.handle)}`,
        source: source ?? 'any',
        fromPort: port,
        toPort: port,
        protocol: 'tcp',
        why: world ? 'world' : 'unmanaged',
        description: `accept rule in table ${where} chain ${String(r.chain)} (not managed by Portcullis)`,
      });
    }
  }
  return found;
}

function values(right: unknown, sets: Map<string, unknown[]>, where: string): unknown[] {
  if (typeof right === 'string' && right.startsWith('@')) {
    return (sets.get(`${where}/${right.slice(1)}`) ?? []).map((e) => ((e as Json | null)?.elem as Json | undefined)?.val ?? e);
  }
  const set = (right as Json | null)?.set;
  return Array.isArray(set) ? set : [right];
}

function covers(v: unknown, port: number): boolean {
  if (typeof v === 'number') return v === port;
  const range = (v as Json | null)?.range as unknown[] | undefined;
  return Array.isArray(range) && typeof range[0] === 'number' && typeof range[1] === 'number' && port >= range[0] && port <= range[1];
}

function sourceText(right: unknown): string {
  if (typeof right === 'string') return right.startsWith('@') ? `set ${right}` : right;
  const p = (right as Json | null)?.prefix as { addr?: unknown; len?: unknown } | undefined;
  if (p) return `${String(p.addr)}/${String(p.len)}`;
  const range = (right as Json | null)?.range as unknown[] | undefined;
  if (Array.isArray(range)) return `${String(range[0])}-${String(range[1])}`;
  return JSON.stringify(right).slice(0, 80);
}
