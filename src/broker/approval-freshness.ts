// Would this approver's decision count now, or only after a fresh sign-in? Transports that cannot prove
// MFA themselves (Slack buttons) ask this before calling approve/deny, to offer a step-up instead of a refusal.
import type { TargetConfig } from '../config/schema.ts';
import { buildPolicyContext } from '../policy/context.ts';
import type { PolicyEngine } from '../policy/port.ts';
import type { Channel, Grant, Principal } from '../domain/index.ts';

export interface FreshnessDeps {
  policy: () => PolicyEngine;
  targets: readonly TargetConfig[];
  timeZone: string;
  mfaMaxAgeSeconds: number;
  clock?: () => number;
}

/**
 * `ok`: call the use case with this principal (it decides, and may still refuse).
 * `stale`: the principal would be permitted with a fresh MFA sign-in, and is not with this one.
 */
export type Freshness = 'ok' | 'stale';

export function approvalFreshness(deps: FreshnessDeps) {
  const targets = new Map(deps.targets.map((t) => [t.id, t]));
  const clock = deps.clock ?? Date.now;
  const permitted = (p: Principal, g: Grant, channel: Channel, now: number): boolean => {
    const target = targets.get(g.targetId);
    if (!target) return false;
    const [address, len] = g.source.split('/');
    try {
      return deps.policy().decide({
        action: 'ApprovePort',
        principal: p,
        target: { id: target.id, tags: target.tags, ports: target.ports },
        context: buildPolicyContext({ principal: p, durationMinutes: g.durationSeconds / 60, port: g.port, sourceIp: address!, sourcePrefixLength: Number(len), callerIp: g.callerIp, channel, reason: g.reason, requester: g.requester, now, timeZone: deps.timeZone }),
      }).allowed;
    } catch {
      return false;
    }
  };
  return (approver: Principal | undefined, grant: Grant, channel: Channel): Freshness => {
    const now = clock();
    if (approver?.sub === grant.requester) return 'ok';
    const fresh = { ...(approver ?? { sub: '' as Principal['sub'], groups: [], amr: [] }), mfa: true, authTime: Math.floor(now / 1000) };
    if (!approver) return 'stale';
    const age = approver.authTime === undefined ? Infinity : now / 1000 - approver.authTime;
    const mfaOk = approver.mfa && age <= deps.mfaMaxAgeSeconds;
    if (mfaOk && permitted(approver, grant, channel, now)) return 'ok';
    return permitted(fresh, grant, channel, now) ? 'stale' : 'ok';
  };
}
