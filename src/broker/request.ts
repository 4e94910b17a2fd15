// Requesting and activation: the security sequence (validate, MFA, quota, policy) and then the one
// provisioning step, openRule, which every path that opens a rule goes through.
import { randomBytes } from 'node:crypto';
import type { AuditInput } from '../audit/chain.ts';
import { PortcullisError, isPortcullisError } from '../errors.ts';
import { failpoint } from '../failpoints.ts';
import type { FirewallAdapter } from '../firewall/port.ts';
import { errorFields } from '../log.ts';
import type { Channel, Grant, GrantId, Principal, TargetId } from '../domain/index.ts';
import type { BrokerCore } from './core.ts';
import { canonicalAddress, parseSource } from './source.ts';
import { validateRequest, type AccessRequestInput } from './validate.ts';

export interface RequestContext {
  channel: Channel;
  /** The caller's address as the server saw it; the default source. */
  callerIp: string;
}

export interface RequestOutcome {
  grant: Grant;
  /** `active`: the rule is in place. `pending`: waiting for approval. */
  outcome: 'active' | 'pending';
}

/** requestAccess: validate, check MFA and quota, decide by policy, then open or wait for approval. */
export async function requestAccess(core: BrokerCore, principal: Principal, input: AccessRequestInput, ctx: RequestContext): Promise<RequestOutcome> {
  const { limits, store } = core;
  const req = validateRequest(input, core.targets, limits);
  const source = parseSource(req.sourceIp ?? ctx.callerIp, limits.maxSource, req.sourceIp === undefined ? 'callerIp' : 'sourceIp');
  core.assertMfa(principal);

  const live = await store.countLiveForUser(principal.sub, limits.maxActivePerUser);
  if (live >= limits.maxActivePerUser) {
    throw new PortcullisError('QUOTA_EXCEEDED', `you already have ${live} open or pending grants (limit ${limits.maxActivePerUser}); close one first`);
  }

  const now = core.clock();
  const grant: Grant = {
    id: newGrantId(),
    targetId: req.target.id as TargetId,
    port: req.port,
    source: source.cidr,
    requester: principal.sub,
    requesterEmail: principal.email ?? null,
    reason: req.reason,
    durationSeconds: req.durationSeconds,
    channel: ctx.channel,
    state: 'requested',
    closeReason: null,
    policyIds: [],
    ruleRef: null,
    createdAt: now,
    updatedAt: now,
    activatedAt: null,
    expiresAt: null,
    closedAt: null,
    failure: null,
    requiredApprovals: 1,
    callerIp: canonicalAddress(ctx.callerIp) ?? null,
  };
  const decision = core.decideRequest(principal, grant, source, ctx.channel, now);
  const base = { actor: principal.sub, grant: grant.id, target: grant.targetId, sourceIp: grant.source, port: grant.port, reason: grant.reason };
  const requested = { ...base, type: 'grant.requested', detail: { durationSeconds: grant.durationSeconds, channel: grant.channel } };

  if (decision.outcome === 'deny') {
    const { policyIds } = decision;
    await store.write(async (w) => {
      await w.insertGrant({ ...grant, state: 'denied', policyIds, closedAt: now });
      await w.audit(requested);
      await w.audit({ ...base, type: 'grant.denied', policyIds, detail: { by: 'policy' } });
    });
    const why = policyIds.length ? `denied by policy ${policyIds.join(', ')}` : 'no policy permits it';
    throw new PortcullisError('POLICY_DENIED', `access to ${grant.targetId} on port ${grant.port} for ${grant.durationSeconds / 60} min is refused: ${why}`, {
      details: { grant: grant.id, policyIds },
    });
  }

  if (decision.outcome === 'approval') {
    const pending: Grant = { ...grant, state: 'pending', policyIds: decision.policyIds, requiredApprovals: core.requiredApprovals(decision.policyIds) };
    await store.write(async (w) => {
      await w.insertGrant(pending);
      await w.audit(requested);
      await w.audit({ ...base, type: 'grant.pending', policyIds: pending.policyIds, detail: { requiredApprovals: pending.requiredApprovals } });
    });
    return { grant: pending, outcome: 'pending' };
  }

  // Approved by policy: request, approval and the opening intent are one transaction.
  const fw = core.firewall(grant.targetId);
  const opening: Grant = { ...grant, state: 'opening', policyIds: decision.policyIds, expiresAt: now + grant.durationSeconds * 1000 };
  await store.write(async (w) => {
    await w.insertGrant(opening);
    await w.audit(requested);
    await w.audit({ ...base, type: 'grant.approved', policyIds: decision.policyIds, detail: { by: 'policy' } });
    await w.audit(openingEvent(opening, fw, principal.sub));
  });
  failpoint('after-open-intent');
  return { grant: await openRule(core, opening, fw, principal.sub), outcome: 'active' };
}

function openingEvent(g: Grant, fw: FirewallAdapter, actor: string): AuditInput {
  return { actor, grant: g.id, target: g.targetId, sourceIp: g.source, port: g.port, type: 'rule.opening', detail: { backend: fw.scope, expiresAt: new Date(g.expiresAt!).toISOString() } };
}

/**
 * approved → opening → active. The requester is re-checked (`recheck`), the intent (state
 * `opening`, expiry) is durable before the firewall is called; the grant id is the rule's
 * idempotency key.
 */
export async function activate(core: BrokerCore, id: GrantId, actor: string, opts: { recheck?: boolean } = {}): Promise<Grant> {
  const { store } = core;
  const grant = await core.mustGet(id);
  if (opts.recheck) {
    const refused = await core.recheckRequester(grant, core.clock());
    if (refused) {
      await store.write(async (w) => {
        if (!(await w.transition(id, 'approved', 'denied', { closedAt: core.clock(), failure: 'REQUESTER_NO_LONGER_PERMITTED' }))) return;
        await w.audit({ actor: 'system', grant: id, target: grant.targetId, type: 'grant.denied', policyIds: refused.policyIds, detail: { by: 'recheck', at: 'activation' } });
      });
      return core.mustGet(id);
    }
  }
  const fw = core.firewall(grant.targetId);
  const opening: Grant = { ...grant, state: 'opening', expiresAt: core.clock() + grant.durationSeconds * 1000 };
  const moved = await store.write(async (w) => {
    if (!(await w.transition(id, 'approved', 'opening', { expiresAt: opening.expiresAt }))) return false;
    await w.audit(openingEvent(opening, fw, actor));
    return true;
  });
  if (!moved) throw new PortcullisError('INVALID_STATE', `grant ${id} is no longer approved`);
  failpoint('after-open-intent');
  return openRule(core, opening, fw, actor);
}

/**
 * opening → active: the one firewall call, then the record that the rule is in place. The caller
 * has made `opening` durable; nothing else moves a grant out of `opening` while this call is in
 * flight (the reconciler waits for a stale one), and if something did, the rule is taken back.
 */
export function openRule(core: BrokerCore, grant: Grant, fw: FirewallAdapter, actor: string, opts: { event?: string; detail?: Record<string, unknown> } = {}): Promise<Grant> {
  return core.intent(grant.id, () => openAndRecord(core, grant, fw, actor, opts));
}

async function openAndRecord(core: BrokerCore, grant: Grant, fw: FirewallAdapter, actor: string, opts: { event?: string; detail?: Record<string, unknown> }): Promise<Grant> {
  const id = grant.id;
  const expiresAt = grant.expiresAt!;
  const audit = { actor, grant: id, target: grant.targetId, sourceIp: grant.source, port: grant.port };
  let ref: string;
  try {
    ref = await fw.open({ grantId: id, targetId: grant.targetId, source: grant.source, port: grant.port, protocol: 'tcp', expiresAt });
  } catch (e) {
    await openFailed(core, grant, fw, e);
    throw isPortcullisError(e) ? e : new PortcullisError('FIREWALL_UNAVAILABLE', `the firewall for ${grant.targetId} did not open the rule`, { cause: e });
  }
  failpoint('after-firewall-open');
  const activatedAt = grant.activatedAt ?? core.clock();
  const active = await core.store.write(async (w) => {
    if (!(await w.transition(id, 'opening', 'active', { ruleRef: ref, activatedAt }))) return undefined;
    await w.audit({ ...audit, type: opts.event ?? 'rule.opened', ruleRef: ref, detail: { backend: fw.scope, expiresAt: new Date(expiresAt).toISOString(), ...opts.detail } });
    return { ...grant, state: 'active' as const, ruleRef: ref, activatedAt, updatedAt: activatedAt };
  });
  if (!active) {
    // The grant left `opening` meanwhile (a reconciler that took it for stale): its new state does
    // not hold this rule, so take the rule back rather than leave it to the next sweep.
    await undoOpen(core, grant, fw, ref);
    throw new PortcullisError('INVALID_STATE', `grant ${id} changed state while its rule was being opened; the rule was removed`);
  }
  core.announceActive(active);
  return active;
}

async function undoOpen(core: BrokerCore, grant: Grant, fw: FirewallAdapter, ref: string): Promise<void> {
  try {
    const shared = await core.store.refsHeldByOthers([ref], [grant.id]);
    if (!shared.has(ref)) await fw.close([ref]);
    await core.store.write(async (w) => {
      await w.audit({ actor: 'system', grant: grant.id, target: grant.targetId, sourceIp: grant.source, port: grant.port, type: 'rule.closed', ruleRef: ref, detail: { backend: fw.scope, reason: 'grant left opening during the call' } });
    });
  } catch (e) {
    core.log.warn('could not take back a rule opened for a grant that moved on; the reconciler will', { grant: grant.id, ...errorFields(e) });
  }
}

/** The rule may or may not exist after a failed open (a timeout can hide a success): look, remove, then fail. */
async function openFailed(core: BrokerCore, grant: Grant, fw: FirewallAdapter, cause: unknown): Promise<void> {
  const code = isPortcullisError(cause) ? cause.code : 'FIREWALL_UNAVAILABLE';
  core.log.warn('rule open failed', { grant: grant.id, target: grant.targetId, ...errorFields(cause) });
  let cleaned = false;
  try {
    const stray = (await fw.list()).filter((r) => r.grantIds.includes(grant.id)).map((r) => r.ref);
    const shared = await core.store.refsHeldByOthers(stray, [grant.id]);
    const refs = stray.filter((r) => !shared.has(r));
    if (refs.length) await fw.close(refs);
    cleaned = true;
  } catch (e) {
    core.log.warn('could not confirm the failed rule is absent; the reconciler will', { grant: grant.id, ...errorFields(e) });
  }
  await core.store.write(async (w) => {
    await w.audit({ actor: 'system', grant: grant.id, target: grant.targetId, type: 'rule.open_failed', detail: { code } });
    // Without confirmation the grant stays `opening`; the reconciler settles it once the backend answers.
    if (cleaned && (await w.transition(grant.id, 'opening', 'failed', { failure: code, closedAt: core.clock() }))) {
      await w.audit({ actor: 'system', grant: grant.id, target: grant.targetId, type: 'grant.failed', detail: { code } });
    }
  });
}

export function newGrantId(): GrantId {
  return `g_${randomBytes(15).toString('base64url')}` as GrantId;
}
