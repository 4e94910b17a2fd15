// "How long may I ask for?": evaluates candidate durations against the policies, per target,
// so the UI and CLI can say "up to 2 h now, up to 8 h with approval" before anyone asks.
import type { DecideOptions, PolicyEngine, PolicyQuery } from './port.ts';

export interface DurationLimit {
  /** Longest candidate for which OpenPort or RequestPort is permitted; 0 when none is. */
  minutes: number;
  /** True when that longest duration needs an approver (only RequestPort permits it). */
  approval: boolean;
  /** Longest candidate that opens at once; 0 when nothing does. */
  immediateMinutes: number;
  /** Policies that permitted `minutes`. */
  policyIds: string[];
  /** Set by previews: a forbid about the reason changes this answer, so a request must cite what it wants. */
  reasonDependent?: boolean;
}

export const BASE_CANDIDATES = [5, 15, 30, 60, 120, 240, 480] as const;

/** The candidates up to `capMinutes` (grants.maxDuration): the base list, doublings, the cap. */
export function candidateDurations(capMinutes: number, minMinutes = 1): number[] {
  const out = new Set<number>(BASE_CANDIDATES.filter((m) => m <= capMinutes));
  for (let m = 960; m < capMinutes; m *= 2) out.add(m);
  out.add(Math.floor(capMinutes));
  return [...out].filter((m) => m >= minMinutes && m > 0).sort((a, b) => a - b);
}

/**
 * Every candidate is evaluated rather than bisected: policies need not be monotonic in the
 * duration (a rule may permit exactly 30 minutes), and a decision costs microseconds.
 */
export function maxDuration(
  engine: PolicyEngine,
  query: Omit<PolicyQuery, 'action'>,
  options: { capMinutes?: number; minMinutes?: number; candidates?: number[]; decide?: DecideOptions } = {},
): DurationLimit {
  const candidates = options.candidates ?? candidateDurations(options.capMinutes ?? 480, options.minMinutes);
  const compute = () => evaluate(engine, query, candidates, options.decide);
  // The answer depends on the query and the candidates only; engines that can, remember it per policy set.
  const got = engine.remember ? engine.remember(`maxDuration|${candidates.join(',')}|${options.decide?.reasonUnknown ? 'r' : ''}`, query, compute) : compute();
  return { ...got, policyIds: [...got.policyIds] };
}

function evaluate(engine: PolicyEngine, query: Omit<PolicyQuery, 'action'>, candidates: number[], decide: DecideOptions | undefined): DurationLimit {
  const limit: DurationLimit = { minutes: 0, approval: false, immediateMinutes: 0, policyIds: [] };
  for (const durationMinutes of candidates) {
    const q = { ...query, context: { ...query.context, durationMinutes } };
    const open = engine.decide({ ...q, action: 'OpenPort' }, decide);
    if (open.allowed) {
      limit.immediateMinutes = Math.max(limit.immediateMinutes, durationMinutes);
      if (durationMinutes >= limit.minutes) Object.assign(limit, { minutes: durationMinutes, approval: false, policyIds: open.policyIds });
      continue;
    }
    const ask = engine.decide({ ...q, action: 'RequestPort' }, decide);
    if (ask.allowed && durationMinutes >= limit.minutes) {
      Object.assign(limit, { minutes: durationMinutes, approval: true, policyIds: ask.policyIds });
    }
  }
  return limit;
}
