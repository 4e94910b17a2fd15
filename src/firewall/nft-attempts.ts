// Reading the gate's per-source attempt counters (the `attempts4/6` sets the drop path updates) and the
// overflow rule's counter out of one `nft -j list table`. Types only otherwise: the broker reads them.
import { OVERFLOW_RULE, attemptSet } from './nft-baseline.ts';
import { canonicalIp } from './nft-values.ts';
import type { AttemptCount } from './port.ts';

export { hasAttemptCounter, type AttemptCount, type AttemptCounter, type AttemptReading } from './port.ts';

type Json = Record<string, unknown>;
const PROTO: Record<string, string> = { 6: 'tcp', 17: 'udp', tcp: 'tcp', udp: 'udp' };

export function parseAttempts(items: Json[], resolve: (destination: string, port: number) => string | undefined): { counts: AttemptCount[]; overflow: number } {
  const counts: AttemptCount[] = [];
  let overflow = 0;
  const names = new Set<string>([attemptSet(4), attemptSet(6)]);
  for (const item of items) {
    const set = item.set as Json | undefined;
    if (set && typeof set.name === 'string' && names.has(set.name)) {
      for (const raw of (set.elem as unknown[] | undefined) ?? []) {
        const body = ((raw as Json | null)?.elem as Json | undefined) ?? { val: raw };
        const concat = (body.val as Json | undefined)?.concat as unknown[] | undefined;
        if (!Array.isArray(concat) || concat.length !== 4) continue;
        const src = typeof concat[0] === 'string' ? canonicalIp(concat[0]) : undefined;
        const dst = typeof concat[1] === 'string' ? canonicalIp(concat[1]) : undefined;
        const protocol = PROTO[String(concat[2])];
        const port = concat[3];
        const packets = Number((body.counter as Json | undefined)?.packets ?? 0);
        if (!src || !dst || !protocol || typeof port !== 'number' || !Number.isFinite(packets)) continue;
        counts.push({ targetId: resolve(dst.address, port), source: src.address, destination: dst.address, protocol, port, packets, expiresIn: typeof body.expires === 'number' ? body.expires : undefined });
      }
    }
    const rule = item.rule as Json | undefined;
    if (rule && rule.comment === OVERFLOW_RULE) {
      for (const e of (rule.expr as Json[] | undefined) ?? []) {
        const c = e.counter as Json | undefined;
        if (c && typeof c.packets === 'number') overflow += c.packets;
      }
    }
  }
  return { counts, overflow };
}
