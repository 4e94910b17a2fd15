// Extend: more time on an active grant, re-checked against policy, behind a durable intent.
import { parseDuration } from '../config/duration.ts';
import { PortcullisError, isPortcullisError } from '../errors.ts';
import { failpoint } from '../failpoints.ts';
import { errorFields } from '../log.ts';
import type { FirewallAdapter } from '../firewall/port.ts';
import type { Channel, Grant, GrantId, Principal } from '../domain/index.ts';
import type { BrokerCore } from './core.ts';
import { parseSource } from './source.ts';

/**
 * active → extending → (adapter moves the backend's expiry) → active with the new expiry.
 * `extending` is durable before the adapter is called: a revoke or the reaper cannot close the
 * grant while the call may still (re)create its rule, so no rule outlives its grant whatever the
 * interleaving; the loser of a race gets INVALID_STATE (409).
 */
export async function extend(core: BrokerCore, principal: Principal, id: GrantId, input: { duration?: unknown }, channel: Channel): Promise<Grant> {
  const { store, limits } = core;
  const grant = await core.visibleGrant(principal, id);
  if (grant.requester !== principal.sub) throw new PortcullisError('FORBIDDEN', 'only the requester can extend a grant');
  if (grant.state !== 'active' || grant.expiresAt === null) throw new PortcullisError('INVALID_STATE', `grant ${id} is ${grant.state}; only an active grant can be extended`);
  if (typeof input.duration !== 'string' || parseDuration(input.duration) === undefined) {
    throw new PortcullisError('INVALID_DURATION', 'duration (the extra time) is required, written like 30m or 1h', { field: 'duration' });
  }
  core.assertMfa(principal);
  const now = core.clock();
  if (grant.expiresAt <= now) throw new PortcullisError('INVALID_STATE', `grant ${id} has expired; ask for a new grant`);
  const extra = parseDuration(input.duration)!;
  const total = grant.durationSeconds + extra;
  if (total > limits.maxDurationSeconds) {
    throw new PortcullisError('DURATION_TOO_LONG', `the grant would last ${Math.ceil(total / 60)} minutes in all; the limit is ${limits.maxDurationSeconds / 60}`, { field: 'duration' });
  }
  const source = parseSource(grant.source, { ipv4: 0, ipv6: 0 });
  const decision = core.decideRequest(principal, { ...grant, durationSeconds: total }, source, channel, now);
  if (decision.outcome !== 'allow') {
    const why = decision.outcome === 'approval' ? 'that long needs an approver; ask for a new grant' : `denied by policy ${decision.policyIds.join(', ') || '(no permit)'}`;
    await store.audit({ actor: principal.sub, grant: id, target: grant.targetId, type: 'grant.extend_denied', policyIds: decision.policyIds, detail: { extraSeconds: extra } });
    throw new PortcullisError('POLICY_DENIED', `cannot extend to ${Math.ceil(total / 60)} minutes: ${why}`);
  }
  const expiresAt = grant.expiresAt + extra * 1000;
  const fw = core.firewall(grant.targetId);

  return core.intent(id, () => claimAndExtend(core, principal, grant, fw, { extra, total, expiresAt, policyIds: decision.policyIds }));
}

async function claimAndExtend(core: BrokerCore, principal: Principal, grant: Grant, fw: FirewallAdapter, plan: { extra: number; total: number; expiresAt: number; policyIds: string[] }): Promise<Grant> {
  const { store } = core;
  const { id } = grant;
  const { extra, total, expiresAt } = plan;
  const audit = { actor: principal.sub, grant: id, target: grant.targetId, sourceIp: grant.source, port: grant.port };
  // The intent, with the expiry it was computed from: a concurrent extend that already moved it loses here.
  const claimed = await store.write(async (w) => {
    if (!(await w.transition(id, 'active', 'extending', {}, { expiresAt: grant.expiresAt }))) return false;
    await w.audit({ ...audit, type: 'grant.extending', detail: { extraSeconds: extra, expiresAt: new Date(expiresAt).toISOString() } });
    return true;
  });
  if (!claimed) throw new PortcullisError('INVALID_STATE', `grant ${id} changed meanwhile (closing, expired or extended by another request); nothing was extended`);
  failpoint('after-extend-intent');

  let ref: string;
  try {
    // The backend carries the expiry (kernel timeout, tag): move it first, so a crash between the
    // two writes leaves the backend later than the store, never earlier than the user was told.
    ref = await fw.open({ grantId: id, targetId: grant.targetId, source: grant.source, port: grant.port, protocol: 'tcp', expiresAt, extend: true });
  } catch (e) {
    core.log.warn('extend: the backend did not move the expiry', { grant: id, ...errorFields(e) });
    // Back to active with the old expiry; a backend that did move it only keeps the rule longer
    // than the store, and the reaper closes it at the store's time.
    const back = await store.write(async (w) => {
      if (!(await w.transition(id, 'extending', 'active'))) return undefined;
      await w.audit({ ...audit, actor: 'system', type: 'grant.extend_failed', detail: { code: isPortcullisError(e) ? e.code : 'FIREWALL_UNAVAILABLE' } });
      return w.getGrant(id);
    });
    if (back) core.announceActive(back);
    throw isPortcullisError(e) ? e : new PortcullisError('FIREWALL_UNAVAILABLE', `the firewall for ${grant.targetId} did not take the new expiry; the grant keeps its old one`, { cause: e });
  }
  const updated = await store.write(async (w) => {
    if (!(await w.transition(id, 'extending', 'active', { expiresAt, durationSeconds: total, ruleRef: ref }))) return undefined;
    await w.audit({ ...audit, type: 'grant.extended', policyIds: plan.policyIds, ruleRef: ref, detail: { extraSeconds: extra, expiresAt: new Date(expiresAt).toISOString() } });
    return w.getGrant(id);
  });
  // Only a reconciler of another process that took the intent for stale moves `extending`; the
  // grant then holds its old expiry and the reaper closes it then.
  if (!updated) throw new PortcullisError('INVALID_STATE', `grant ${id} changed state while being extended; it keeps its old expiry`);
  core.announceActive(updated, { previousExpiresAt: grant.expiresAt });
  return updated;
}
