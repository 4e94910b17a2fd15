// The use cases: request, revoke, expire, reconcile. The one code path every transport goes through.
import { randomBytes } from 'node:crypto';
import type { TargetConfig } from '../config/schema.ts';
import { PortcullisError, isPortcullisError } from '../errors.ts';
import type { FirewallAdapter } from '../firewall/port.ts';
import { failpoint } from '../failpoints.ts';
import { errorFields, type Logger } from '../log.ts';
import { buildPolicyContext } from '../policy/context.ts';
import { decideRequest, type RequestDecision } from '../policy/decision.ts';
import { maxDuration, type DurationLimit } from '../policy/max-duration.ts';
import type { PolicyDecision, PolicyEngine, PolicyQuery } from '../policy/port.ts';
import type { AuditInput } from '../audit/chain.ts';
import type { Store } from '../store/store.ts';
import { canonicalAddress, parseSource, type Source, type SourceLimits } from './source.ts';
import { parseDuration } from '../config/duration.ts';
import { Reconciler, type ReconcileResult } from './reconcile.ts';
import { validateRequest, type AccessRequestInput } from './validate.ts';
import { type Channel, type CloseReason, type Grant, type GrantId, type Principal, type TargetId } from './types.ts';

export interface BrokerLimits {
  minDurationSeconds: number;
  maxDurationSeconds: number;
  pendingTimeoutSeconds: number;
  reasonPattern?: RegExp | undefined;
  maxActivePerUser: number;
  maxSource: SourceLimits;
  mfaMaxAgeSeconds: number;
  timeZone: string;
  /** Groups whose members may see and close anyone's grant. */
  adminGroups?: string[];
}

export interface BrokerDeps {
  store: Store;
  /** A getter, so a policy reload swaps the engine without rebuilding the broker. */
  policy: () => PolicyEngine;
  firewalls: ReadonlyMap<string, FirewallAdapter>;
  targets: readonly TargetConfig[];
  limits: BrokerLimits;
  log: Logger;
  clock?: () => number;
}

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

export type GrantListener = (grant: Grant) => void;

/** Due grants closed per round: one close call per backend each. */
const EXPIRY_PAGE = 5000;


export class Broker {
  private readonly store: Store;
  private readonly clock: () => number;
  private readonly targets: Map<string, TargetConfig>;
  private readonly activeListeners: GrantListener[] = [];
  private readonly closedListeners: GrantListener[] = [];
  private readonly reconciler: Reconciler;

  constructor(private readonly deps: BrokerDeps) {
    this.store = deps.store;
    this.clock = deps.clock ?? Date.now;
    this.targets = new Map(deps.targets.map((t) => [t.id, t]));
    this.reconciler = new Reconciler({
      store: this.store,
      firewalls: deps.firewalls,
      log: deps.log,
      now: this.clock,
      close: (grants, reason, actor) => this.close(grants, reason, actor),
      finishClosing: (grants, actor) => this.finishClosing(grants, actor),
      announceActive: (g) => {
        for (const l of this.activeListeners) l(g);
      },
    });
  }

  /** Called after a grant becomes active (the reaper schedules its timer). */
  onActive(l: GrantListener): void {
    this.activeListeners.push(l);
  }
  onClosed(l: GrantListener): void {
    this.closedListeners.push(l);
  }

  listTargets(): readonly TargetConfig[] {
    return this.deps.targets;
  }

  /** requestAccess: validate, check MFA and quota, decide by policy, then open or wait for approval. */
  async requestAccess(principal: Principal, input: AccessRequestInput, ctx: RequestContext): Promise<RequestOutcome> {
    const { limits } = this.deps;
    const req = validateRequest(input, this.targets, limits);
    const source = parseSource(req.sourceIp ?? ctx.callerIp, limits.maxSource, req.sourceIp === undefined ? 'callerIp' : 'sourceIp');
    this.assertMfa(principal);

    const live = await this.store.countLiveForUser(principal.sub);
    if (live >= limits.maxActivePerUser) {
      throw new PortcullisError('QUOTA_EXCEEDED', `you already have ${live} open or pending grants (limit ${limits.maxActivePerUser}); close one first`);
    }

    const now = this.clock();
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
    const decision = this.decideRequest(principal, grant, source, ctx.channel, now);
    const base = { actor: principal.sub, grant: grant.id, target: grant.targetId, sourceIp: grant.source, port: grant.port, reason: grant.reason };
    const requested = { ...base, type: 'grant.requested', detail: { durationSeconds: grant.durationSeconds, channel: grant.channel } };

    if (decision.outcome === 'deny') {
      const { policyIds } = decision;
      await this.store.write(async (w) => {
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
      const pending: Grant = { ...grant, state: 'pending', policyIds: decision.policyIds, requiredApprovals: this.requiredApprovals(decision.policyIds) };
      await this.store.write(async (w) => {
        await w.insertGrant(pending);
        await w.audit(requested);
        await w.audit({ ...base, type: 'grant.pending', policyIds: pending.policyIds, detail: { requiredApprovals: pending.requiredApprovals } });
      });
      return { grant: pending, outcome: 'pending' };
    }

    // Approved by policy: request, approval and the opening intent are one transaction.
    const fw = this.firewall(grant.targetId);
    const opening: Grant = { ...grant, state: 'opening', policyIds: decision.policyIds, expiresAt: now + grant.durationSeconds * 1000 };
    await this.store.write(async (w) => {
      await w.insertGrant(opening);
      await w.audit(requested);
      await w.audit({ ...base, type: 'grant.approved', policyIds: decision.policyIds, detail: { by: 'policy' } });
      await w.audit(this.openingEvent(opening, fw, principal.sub));
    });
    failpoint('after-open-intent');
    return { grant: await this.openRule(opening, fw, principal.sub), outcome: 'active' };
  }

  private openingEvent(g: Grant, fw: FirewallAdapter, actor: string): AuditInput {
    return { actor, grant: g.id, target: g.targetId, sourceIp: g.source, port: g.port, type: 'rule.opening', detail: { backend: fw.scope, expiresAt: new Date(g.expiresAt!).toISOString() } };
  }

  /**
   * approved → opening → active. The intent (state `opening`, expiry) is durable before the
   * firewall is called; the grant id is the rule's idempotency key.
   */
  async activate(id: GrantId, actor: string, opts: { recheck?: boolean } = {}): Promise<Grant> {
    const grant = await this.mustGet(id);
    if (opts.recheck) {
      const refused = await this.recheckRequester(grant, this.clock());
      if (refused) {
        await this.store.write(async (w) => {
          if (!(await w.transition(id, 'approved', 'denied', { closedAt: this.clock(), failure: 'REQUESTER_NO_LONGER_PERMITTED' }))) return;
          await w.audit({ actor: 'system', grant: id, target: grant.targetId, type: 'grant.denied', policyIds: refused.policyIds, detail: { by: 'recheck', at: 'activation' } });
        });
        return this.mustGet(id);
      }
    }
    const fw = this.firewall(grant.targetId);
    const opening: Grant = { ...grant, state: 'opening', expiresAt: this.clock() + grant.durationSeconds * 1000 };
    const moved = await this.store.write(async (w) => {
      if (!(await w.transition(id, 'approved', 'opening', { expiresAt: opening.expiresAt }))) return false;
      await w.audit(this.openingEvent(opening, fw, actor));
      return true;
    });
    if (!moved) throw new PortcullisError('INVALID_STATE', `grant ${id} is no longer approved`);
    failpoint('after-open-intent');
    return this.openRule(opening, fw, actor);
  }

  /** opening → active: the one firewall call, then the record that the rule is in place. */
  private async openRule(grant: Grant, fw: FirewallAdapter, actor: string): Promise<Grant> {
    const id = grant.id;
    const expiresAt = grant.expiresAt!;
    const audit = { actor, grant: id, target: grant.targetId, sourceIp: grant.source, port: grant.port };
    let ref: string;
    try {
      ref = await fw.open({ grantId: id, targetId: grant.targetId, source: grant.source, port: grant.port, protocol: 'tcp', expiresAt });
    } catch (e) {
      await this.openFailed(grant, fw, e);
      throw isPortcullisError(e) ? e : new PortcullisError('FIREWALL_UNAVAILABLE', `the firewall for ${grant.targetId} did not open the rule`, { cause: e });
    }
    failpoint('after-firewall-open');
    const activatedAt = this.clock();
    const active = await this.store.write(async (w) => {
      if (!(await w.transition(id, 'opening', 'active', { ruleRef: ref, activatedAt }))) return undefined;
      await w.audit({ ...audit, type: 'rule.opened', ruleRef: ref, detail: { backend: fw.scope, expiresAt: new Date(expiresAt).toISOString() } });
      return { ...grant, state: 'active' as const, ruleRef: ref, activatedAt, updatedAt: activatedAt };
    });
    if (!active) {
      // Someone (the reconciler) moved it meanwhile; whatever state it is in now explains the rule.
      throw new PortcullisError('INVALID_STATE', `grant ${id} changed state while its rule was being opened`);
    }
    for (const l of this.activeListeners) l(active);
    return active;
  }

  /** The rule may or may not exist after a failed open (a timeout can hide a success): look, remove, then fail. */
  private async openFailed(grant: Grant, fw: FirewallAdapter, cause: unknown): Promise<void> {
    const code = isPortcullisError(cause) ? cause.code : 'FIREWALL_UNAVAILABLE';
    this.deps.log.warn('rule open failed', { grant: grant.id, target: grant.targetId, ...errorFields(cause) });
    let cleaned = false;
    try {
      const stray = (await fw.list()).filter((r) => r.grantIds.includes(grant.id)).map((r) => r.ref);
      const shared = await this.store.refsHeldByOthers(stray, [grant.id]);
      const refs = stray.filter((r) => !shared.has(r));
      if (refs.length) await fw.close(refs);
      cleaned = true;
    } catch (e) {
      this.deps.log.warn('could not confirm the failed rule is absent; the reconciler will', { grant: grant.id, ...errorFields(e) });
    }
    await this.store.write(async (w) => {
      await w.audit({ actor: 'system', grant: grant.id, target: grant.targetId, type: 'rule.open_failed', detail: { code } });
      // Without confirmation the grant stays `opening`; the reconciler settles it once the backend answers.
      if (cleaned && (await w.transition(grant.id, 'opening', 'failed', { failure: code, closedAt: this.clock() }))) {
        await w.audit({ actor: 'system', grant: grant.id, target: grant.targetId, type: 'grant.failed', detail: { code } });
      }
    });
  }

  /**
   * approve: the approver must hold MFA, be permitted ApprovePort for the target, and not be the
   * requester (refused here whatever the policies say). When the N-th approval arrives, the
   * requester's authorization is checked again with what the broker last learnt of them, and
   * only then does the grant open.
   */
  async approve(approver: Principal, id: GrantId, input: { comment?: unknown }, channel: Channel): Promise<Grant> {
    const comment = optionalComment(input.comment);
    const grant = await this.mustGet(id);
    if (grant.requester === approver.sub) {
      throw new PortcullisError('SELF_APPROVAL', 'you cannot approve your own request; ask another approver');
    }
    this.assertMfa(approver);
    const decision = this.decideApproval(approver, grant, channel);
    if (!decision.allowed) {
      throw new PortcullisError('FORBIDDEN', `you may not approve requests for ${grant.targetId}${decision.policyIds.length ? ` (${decision.policyIds.join(', ')})` : ''}`);
    }
    if (grant.state !== 'pending') throw new PortcullisError('INVALID_STATE', `grant ${id} is ${grant.state}, not waiting for approval`);

    const now = this.clock();
    const result = await this.store.write(async (w) => {
      const current = await w.getGrant(id);
      if (current?.state !== 'pending') return { kind: 'gone' as const };
      if (!(await w.addApproval({ grantId: id, approver: approver.sub, decision: 'approve', comment, policyIds: decision.policyIds, createdAt: now }))) {
        return { kind: 'duplicate' as const };
      }
      const approvals = (await w.approvals(id)).filter((a) => a.decision === 'approve');
      await w.audit({ actor: approver.sub, grant: id, target: grant.targetId, type: 'grant.approval_recorded', policyIds: decision.policyIds, reason: comment ?? undefined, detail: { count: approvals.length, required: grant.requiredApprovals } });
      return { kind: 'recorded' as const, count: approvals.length, approvers: approvals.map((a) => a.approver) };
    });
    if (result.kind === 'gone') throw new PortcullisError('INVALID_STATE', `grant ${id} is no longer waiting for approval`);
    if (result.kind === 'duplicate') throw new PortcullisError('CONFLICT', `you have already approved grant ${id}; it needs another approver`);
    if (result.count < grant.requiredApprovals) return this.mustGet(id);

    // Authorization is re-checked now, not trusted from request time: a requester removed from
    // a group since must not be opened.
    const recheck = await this.recheckRequester(grant, now);
    if (recheck !== undefined) {
      await this.store.write(async (w) => {
        if (!(await w.transition(id, 'pending', 'denied', { closedAt: now, failure: 'REQUESTER_NO_LONGER_PERMITTED' }))) return;
        await w.audit({ actor: 'system', grant: id, target: grant.targetId, type: 'grant.denied', policyIds: recheck.policyIds, detail: { by: 'recheck', at: 'approval' } });
      });
      return this.mustGet(id);
    }
    const moved = await this.store.write(async (w) => {
      if (!(await w.transition(id, 'pending', 'approved'))) return false;
      await w.audit({ actor: approver.sub, grant: id, target: grant.targetId, sourceIp: grant.source, port: grant.port, type: 'grant.approved', policyIds: decision.policyIds, detail: { by: 'approvers', approvers: result.approvers } });
      return true;
    });
    if (!moved) return this.mustGet(id);
    return this.activate(id, approver.sub, { recheck: true });
  }

  async deny(approver: Principal, id: GrantId, input: { comment?: unknown }, channel: Channel): Promise<Grant> {
    const comment = optionalComment(input.comment);
    const grant = await this.mustGet(id);
    if (grant.requester === approver.sub) {
      throw new PortcullisError('SELF_APPROVAL', 'you cannot decide your own request; close it instead');
    }
    this.assertMfa(approver);
    const decision = this.decideApproval(approver, grant, channel);
    if (!decision.allowed) throw new PortcullisError('FORBIDDEN', `you may not decide requests for ${grant.targetId}`);
    const now = this.clock();
    const done = await this.store.write(async (w) => {
      if (!(await w.transition(id, 'pending', 'denied', { closedAt: now }))) return false;
      await w.addApproval({ grantId: id, approver: approver.sub, decision: 'deny', comment, policyIds: decision.policyIds, createdAt: now });
      await w.audit({ actor: approver.sub, grant: id, target: grant.targetId, type: 'grant.denied', policyIds: decision.policyIds, reason: comment ?? undefined, detail: { by: 'approver' } });
      return true;
    });
    if (!done) throw new PortcullisError('INVALID_STATE', `grant ${id} is no longer waiting for approval`);
    return this.mustGet(id);
  }

  /** extend: more time on an active grant, if the policy permits the new total at once. */
  async extend(principal: Principal, id: GrantId, input: { duration?: unknown }, channel: Channel): Promise<Grant> {
    const grant = await this.visibleGrant(principal, id);
    if (grant.requester !== principal.sub) throw new PortcullisError('FORBIDDEN', 'only the requester can extend a grant');
    if (grant.state !== 'active' || grant.expiresAt === null) throw new PortcullisError('INVALID_STATE', `grant ${id} is ${grant.state}; only an active grant can be extended`);
    if (typeof input.duration !== 'string' || parseDuration(input.duration) === undefined) {
      throw new PortcullisError('INVALID_DURATION', 'duration (the extra time) is required, written like 30m or 1h', { field: 'duration' });
    }
    this.assertMfa(principal);
    const extra = parseDuration(input.duration)!;
    const total = grant.durationSeconds + extra;
    if (total > this.deps.limits.maxDurationSeconds) {
      throw new PortcullisError('DURATION_TOO_LONG', `the grant would last ${Math.ceil(total / 60)} minutes in all; the limit is ${this.deps.limits.maxDurationSeconds / 60}`, { field: 'duration' });
    }
    const source = parseSource(grant.source, { ipv4: 0, ipv6: 0 });
    const now = this.clock();
    const decision = this.decideRequest(principal, { ...grant, durationSeconds: total }, source, channel, now);
    if (decision.outcome !== 'allow') {
      const why = decision.outcome === 'approval' ? 'that long needs an approver; ask for a new grant' : `denied by policy ${decision.policyIds.join(', ') || '(no permit)'}`;
      await this.store.audit({ actor: principal.sub, grant: id, target: grant.targetId, type: 'grant.extend_denied', policyIds: decision.policyIds, detail: { extraSeconds: extra } });
      throw new PortcullisError('POLICY_DENIED', `cannot extend to ${Math.ceil(total / 60)} minutes: ${why}`);
    }
    const expiresAt = grant.expiresAt + extra * 1000;
    const fw = this.firewall(grant.targetId);
    // The backend carries the expiry (kernel timeout, tag): move it first, so a crash between the
    // two writes leaves the backend later than the store, never earlier than the user was told.
    const ref = await fw.open({ grantId: id, targetId: grant.targetId, source: grant.source, port: grant.port, protocol: 'tcp', expiresAt, extend: true });
    const updated = await this.store.write(async (w) => {
      if (!(await w.transition(id, 'active', 'active', { expiresAt, durationSeconds: total, ruleRef: ref }))) return undefined;
      await w.audit({ actor: principal.sub, grant: id, target: grant.targetId, sourceIp: grant.source, port: grant.port, type: 'grant.extended', policyIds: decision.policyIds, ruleRef: ref, detail: { extraSeconds: extra, expiresAt: new Date(expiresAt).toISOString() } });
      return w.getGrant(id);
    });
    if (!updated) throw new PortcullisError('INVALID_STATE', `grant ${id} closed while being extended`);
    for (const l of this.activeListeners) l(updated);
    return updated;
  }

  /** Pending grants this principal may approve (not their own). */
  async approvable(principal: Principal, channel: Channel): Promise<Grant[]> {
    const pending = await this.store.grantsInStates(['pending'], { limit: 500 });
    return pending.filter((g) => g.requester !== principal.sub && this.decideApproval(principal, g, channel).allowed);
  }

  /** Re-runs the requester's request decision with what the broker knows of them now; undefined = still permitted. */
  private async recheckRequester(grant: Grant, now: number): Promise<{ policyIds: string[] } | undefined> {
    const known = await this.store.knownUser(grant.requester);
    if (!known) return { policyIds: [] };
    const source = parseSource(grant.source, { ipv4: 0, ipv6: 0 });
    // MFA freshness was proven at request time; the re-check is about who they are now.
    const principal: Principal = { ...known, mfa: true, authTime: Math.floor(grant.createdAt / 1000) - 1 };
    const d = this.decideRequest(principal, grant, source, grant.channel, now);
    return d.outcome === 'deny' ? { policyIds: d.policyIds } : undefined;
  }

  private decideApproval(approver: Principal, grant: Grant, channel: Channel): PolicyDecision {
    const target = this.targets.get(grant.targetId);
    if (!target) return { allowed: false, policyIds: [], errors: ['unknown target'] };
    const [address, len] = grant.source.split('/');
    return this.decide({
      action: 'ApprovePort',
      principal: approver,
      target: { id: target.id, tags: target.tags, ports: target.ports },
      context: buildPolicyContext({ principal: approver, durationMinutes: grant.durationSeconds / 60, port: grant.port, sourceIp: address!, sourcePrefixLength: Number(len), callerIp: grant.callerIp, channel, reason: grant.reason, requester: grant.requester, now: this.clock(), timeZone: this.deps.limits.timeZone }),
    });
  }

  /** The longest duration this principal may ask for on a target, and whether it needs approval. */
  durationLimit(principal: Principal, targetId: string, callerIp: string, channel: Channel, capMinutes: number): DurationLimit {
    const target = this.targets.get(targetId)!;
    const address = canonicalAddress(callerIp) ?? '127.0.0.1';
    const now = this.clock();
    try {
      return maxDuration(
        this.deps.policy(),
        {
          principal,
          target: { id: target.id, tags: target.tags, ports: target.ports },
          context: buildPolicyContext({ principal, durationMinutes: 0, port: target.ports[0]!, sourceIp: address, sourcePrefixLength: address.includes(':') ? 128 : 32, callerIp: address, channel, reason: 'preview', now, timeZone: this.deps.limits.timeZone }),
        },
        { capMinutes, minMinutes: Math.ceil(this.deps.limits.minDurationSeconds / 60) },
      );
    } catch {
      return { minutes: 0, approval: false, immediateMinutes: 0, policyIds: [] };
    }
  }

  /** Called by transports on every authenticated request: group changes reach approval re-checks. */
  async noteSignIn(principal: Principal): Promise<void> {
    await this.store.rememberUser(principal, this.clock());
  }

  /** Early close by the requester (admins and approvers come with the approval workflow). */
  async revoke(principal: Principal, id: GrantId): Promise<Grant> {
    const grant = await this.visibleGrant(principal, id);
    const actor = principal.sub;
    if (grant.state === 'pending' || grant.state === 'approved') {
      const done = await this.store.write(async (w) => {
        if (!(await w.transition(id, ['pending', 'approved'], 'closed', { closeReason: 'revoked', closedAt: this.clock() }))) return false;
        await w.audit({ actor: principal.sub, grant: id, target: grant.targetId, type: 'grant.revoked', detail: { from: grant.state } });
        return true;
      });
      if (done) return this.mustGet(id);
    }
    if (grant.state !== 'active') {
      throw new PortcullisError('INVALID_STATE', `grant ${id} is ${grant.state}; only a pending or active grant can be closed`);
    }
    await this.close([grant], 'revoked', actor);
    return this.mustGet(id);
  }

  /** Expires every active grant whose time is up (the reaper's timers and its sweep call this). */
  async expireDue(now = this.clock()): Promise<number> {
    let total = 0;
    for (;;) {
      // Closed grants leave `active`, so each round reads the next page of due ones.
      const due = await this.store.dueForExpiry(now, EXPIRY_PAGE);
      if (due.length) await this.close(due, 'expired', 'system:reaper');
      total += due.length;
      if (due.length < EXPIRY_PAGE) return total;
    }
  }

  /**
   * active → closing → (rule removed) → closed, for many grants at once: one transaction per phase,
   * one firewall call per backend. A grant is never marked closed while its rule may still exist.
   */
  async close(grants: Grant[], reason: CloseReason, actor: string): Promise<void> {
    const eventType = reason === 'expired' ? 'grant.expired' : reason === 'revoked' ? 'grant.revoked' : 'grant.closing';
    const claimed = await this.store.write(async (w) => {
      const mine: Grant[] = [];
      for (const g of grants) {
        if (!(await w.transition(g.id, 'active', 'closing', { closeReason: reason }))) continue;
        await w.audit({ actor, grant: g.id, target: g.targetId, sourceIp: g.source, port: g.port, type: eventType, ruleRef: g.ruleRef ?? undefined });
        mine.push({ ...g, state: 'closing', closeReason: reason });
      }
      return mine;
    });
    if (claimed.length) failpoint('after-close-intent');
    await this.finishClosing(claimed, actor);
  }

  /** closing → closed: remove the rules (batched per backend), then record the close. */
  private async finishClosing(grants: Grant[], actor: string): Promise<void> {
    if (grants.length === 0) return;
    const byBackend = new Map<FirewallAdapter, Grant[]>();
    for (const g of grants) {
      const fw = this.firewall(g.targetId);
      byBackend.set(fw, [...(byBackend.get(fw) ?? []), g]);
    }
    const errors: unknown[] = [];
    await Promise.all(
      [...byBackend].map(async ([fw, batch]) => {
        const refs = [...new Set(batch.map((g) => g.ruleRef).filter((r): r is string => r !== null))];
        const shared = await this.store.refsHeldByOthers(refs, batch.map((g) => g.id));
        const toClose = refs.filter((r) => !shared.has(r));
        try {
          if (toClose.length) await fw.close(toClose);
          failpoint('after-firewall-close');
        } catch (e) {
          errors.push(e);
          this.deps.log.warn('rule close failed; will retry', { backend: fw.scope, count: toClose.length, ...errorFields(e) });
          await this.store.write(async (w) => {
            for (const g of batch) await w.audit({ actor: 'system', grant: g.id, target: g.targetId, type: 'rule.close_failed', ruleRef: g.ruleRef ?? undefined, detail: { code: isPortcullisError(e) ? e.code : 'FIREWALL_UNAVAILABLE' } });
          });
          return;
        }
        const closedAt = this.clock();
        const closed = await this.store.write(async (w) => {
          const done: Grant[] = [];
          for (const g of batch) {
            if (!(await w.transition(g.id, 'closing', 'closed', { closedAt }))) continue;
            const kept = g.ruleRef !== null && shared.has(g.ruleRef);
            await w.audit({ actor, grant: g.id, target: g.targetId, sourceIp: g.source, port: g.port, type: 'rule.closed', ruleRef: g.ruleRef ?? undefined, detail: kept ? { sharedRuleKept: true } : undefined });
            await w.audit({ actor, grant: g.id, target: g.targetId, type: 'grant.closed', detail: { reason: g.closeReason } });
            done.push({ ...g, state: 'closed', closedAt });
          }
          return done;
        });
        for (const g of closed) for (const l of this.closedListeners) l(g);
      }),
    );
    if (errors.length && errors.length === byBackend.size) {
      const e = errors[0];
      throw isPortcullisError(e) ? e : new PortcullisError('FIREWALL_UNAVAILABLE', 'the firewall did not remove the rule; it will be retried', { cause: e });
    }
  }

  /** Pending requests nobody decided in time become `expired`. */
  async expirePending(now = this.clock()): Promise<number> {
    const stale = await this.store.grantsInStates(['pending'], { updatedBefore: now - this.deps.limits.pendingTimeoutSeconds * 1000 });
    if (stale.length === 0) return 0;
    return this.store.write(async (w) => {
      let n = 0;
      for (const g of stale) {
        if (!(await w.transition(g.id, 'pending', 'expired', { closeReason: 'expired', closedAt: now }))) continue;
        await w.audit({ actor: 'system:reaper', grant: g.id, target: g.targetId, type: 'grant.pending_expired' });
        n += 1;
      }
      return n;
    });
  }

  /** Makes each backend agree with the store (see reconcile.ts). */
  reconcile(opts: { atStart?: boolean } = {}): Promise<ReconcileResult> {
    return this.reconciler.run(opts);
  }

  /** A grant the principal may see; approvers also see the pending requests they may decide. */
  async getGrant(principal: Principal, id: GrantId, channel: Channel = 'api'): Promise<Grant> {
    try {
      return await this.visibleGrant(principal, id);
    } catch (e) {
      const g = isPortcullisError(e, 'GRANT_NOT_FOUND') && /^g_[A-Za-z0-9_-]{10,40}$/.test(id) ? await this.store.getGrant(id) : undefined;
      if (g?.state === 'pending' && g.requester !== principal.sub && this.decideApproval(principal, g, channel).allowed) return g;
      throw e;
    }
  }

  async listGrants(principal: Principal, opts: { limit?: number; all?: boolean } = {}): Promise<Grant[]> {
    if (opts.all && !this.isAdmin(principal)) throw new PortcullisError('FORBIDDEN', 'only administrators can list every grant');
    return this.store.listGrants({ requester: opts.all ? undefined : principal.sub, limit: opts.limit ?? 100 });
  }

  isAdmin(principal: Principal): boolean {
    return (this.deps.limits.adminGroups ?? []).some((g) => principal.groups.includes(g));
  }

  /** A grant the principal may see: their own, one they may approve while it is pending, or any for an admin. */
  private async visibleGrant(principal: Principal, id: GrantId): Promise<Grant> {
    const grant = typeof id === 'string' && /^g_[A-Za-z0-9_-]{10,40}$/.test(id) ? await this.store.getGrant(id) : undefined;
    const visible = grant !== undefined && (grant.requester === principal.sub || this.isAdmin(principal));
    // Someone else's grant answers exactly like a missing one: ids are not an oracle.
    if (!visible) throw new PortcullisError('GRANT_NOT_FOUND', `no grant ${String(id).slice(0, 48)}`);
    return grant;
  }

  private async mustGet(id: GrantId): Promise<Grant> {
    const g = await this.store.getGrant(id);
    if (!g) throw new PortcullisError('GRANT_NOT_FOUND', `no grant ${id}`);
    return g;
  }

  private assertMfa(principal: Principal): void {
    if (!principal.mfa) throw new PortcullisError('MFA_REQUIRED', 'this sign-in did not use multi-factor authentication; sign in again with MFA');
    const age = principal.authTime === undefined ? Infinity : this.clock() / 1000 - principal.authTime;
    if (age > this.deps.limits.mfaMaxAgeSeconds) {
      throw new PortcullisError('MFA_TOO_OLD', 'your multi-factor sign-in is too old; sign in again');
    }
  }

  /** OpenPort ⇒ allow, else RequestPort ⇒ approval, else deny; an engine failure refuses service, never allows. */
  private decideRequest(principal: Principal, grant: Pick<Grant, 'targetId' | 'durationSeconds' | 'port' | 'reason' | 'callerIp'>, source: Pick<Source, 'address' | 'prefixLength'>, channel: Channel, now: number): RequestDecision {
    const target = this.targets.get(grant.targetId)!;
    try {
      return decideRequest(this.deps.policy(), {
        principal,
        target: { id: target.id, tags: target.tags, ports: target.ports },
        context: buildPolicyContext({ principal, durationMinutes: grant.durationSeconds / 60, port: grant.port, sourceIp: source.address, sourcePrefixLength: source.prefixLength, callerIp: grant.callerIp, channel, reason: grant.reason, now, timeZone: this.deps.limits.timeZone }),
      });
    } catch (e) {
      throw new PortcullisError('POLICY_UNAVAILABLE', 'the policy engine could not decide; nothing was opened', { cause: e });
    }
  }

  private decide(query: PolicyQuery): PolicyDecision {
    try {
      return this.deps.policy().decide(query);
    } catch (e) {
      throw new PortcullisError('POLICY_UNAVAILABLE', 'the policy engine could not decide; nothing was opened', { cause: e });
    }
  }

  /** How many approvers the permitting policies ask for: the largest `@approvals("N")`, at least 1. */
  private requiredApprovals(policyIds: string[]): number {
    const wanted = new Set(policyIds);
    let n = 1;
    for (const p of this.deps.policy().describe()) {
      const v = Number(p.annotations?.approvals);
      if (wanted.has(p.id) && Number.isInteger(v) && v > n) n = Math.min(v, 10);
    }
    return n;
  }

  private firewall(targetId: string): FirewallAdapter {
    const fw = this.deps.firewalls.get(targetId);
    if (!fw) throw new PortcullisError('TARGET_NOT_FOUND', `no firewall is configured for target ${targetId}`);
    return fw;
  }
}

function optionalComment(v: unknown): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string' || v.length > 500 || /[\u0000-\u001f\u007f]/.test(v)) {
    throw new PortcullisError('INVALID_REQUEST', 'comment must be one line of at most 500 characters', { field: 'comment' });
  }
  return v.trim();
}

export function newGrantId(): GrantId {
  return `g_${randomBytes(15).toString('base64url')}` as GrantId;
}
