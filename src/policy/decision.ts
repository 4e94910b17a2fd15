// The broker's request decision in one place, shared with `policy test` so the fixtures test
// exactly what production does: OpenPort ⇒ allow, else RequestPort ⇒ approval, else deny.
import type { PolicyEngine, PolicyQuery } from './port.ts';

export type RequestOutcome = 'allow' | 'approval' | 'deny';

export interface RequestDecision {
  outcome: RequestOutcome;
  /** The permits that decided (allow, approval) or every forbid that matched (deny). */
  policyIds: string[];
  errors: string[];
}

export function decideRequest(engine: PolicyEngine, query: Omit<PolicyQuery, 'action'>): RequestDecision {
  const open = engine.decide({ ...query, action: 'OpenPort' });
  if (open.allowed) return { outcome: 'allow', policyIds: open.policyIds, errors: [] };
  const ask = engine.decide({ ...query, action: 'RequestPort' });
  if (ask.allowed) return { outcome: 'approval', policyIds: ask.policyIds, errors: open.errors };
  // Both refusals are reported: "production-max-4h" on RequestPort explains more than the
  // silence of a missing OpenPort permit.
  return {
    outcome: 'deny',
    policyIds: [...new Set([...open.policyIds, ...ask.policyIds])].sort(),
    errors: [...open.errors, ...ask.errors],
  };
}
