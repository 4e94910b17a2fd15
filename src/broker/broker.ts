// The Broker: the one entry every transport (HTTP, web, Slack, CLI) calls. A thin facade over the
// use cases: request.ts (requesting, activation, the one provisioning step), approvals.ts,
// extend.ts, close.ts (revoke, expiry), queries.ts (reads, audit trail) and reconcile.ts.
import type { TargetConfig } from '../config/schema.ts';
import type { AuditEvent, AuditInput, VerifyResult } from '../audit/chain.ts';
import type { DurationLimit } from '../policy/max-duration.ts';
import type { Approval, Channel, CloseReason, Grant, GrantId, Principal } from '../domain/index.ts';
import { approvable, approve, deny } from './approvals.ts';
import { close, expireDue, expirePending, finishClosing, revoke } from './close.ts';
import { BrokerCore, type BrokerDeps, type GrantListener } from './core.ts';
import { extend } from './extend.ts';
import * as queries from './queries.ts';
import { Reconciler, type ReconcileResult } from './reconcile.ts';
import { activate, openRule, requestAccess, type RequestContext, type RequestOutcome } from './request.ts';
import type { AccessRequestInput } from './validate.ts';
import type { AuditFilter } from './audit-query.ts';
import type { InboxItem } from './inbox.ts';
import type { AttemptsReport } from './attempts-report.ts';

export type { BrokerDeps, BrokerLimits, GrantListener } from './core.ts';
export type { RequestContext, RequestOutcome } from './request.ts';
export { newGrantId } from './request.ts';

export class Broker {
  private readonly core: BrokerCore;
  private readonly reconciler: Reconciler;

  constructor(deps: BrokerDeps) {
    const core = new BrokerCore(deps);
    this.core = core;
    this.reconciler = new Reconciler({
      store: core.store,
      firewalls: deps.firewalls,
      log: deps.log,
      now: core.clock,
      close: (grants, reason, actor) => close(core, grants, reason, actor),
      finishClosing: (grants, actor) => finishClosing(core, grants, actor),
      announceActive: (g) => core.announceActive(g),
      openRule: (g, fw, actor, opts) => openRule(core, g, fw, actor, opts),
      activate: (id, actor) => activate(core, id, actor, { recheck: true }),
      busy: (id) => core.inFlight.has(id),
      intent: (id, run) => core.intent(id, run),
    });
  }

  /** Called after a grant becomes active or its expiry moves (the reaper arms its timer). */
  onActive(l: GrantListener): void {
    this.core.activeListeners.push(l);
  }
  onClosed(l: GrantListener): void {
    this.core.closedListeners.push(l);
  }

  listTargets(): readonly TargetConfig[] {
    return this.core.deps.targets;
  }

  requestAccess(principal: Principal, input: AccessRequestInput, ctx: RequestContext): Promise<RequestOutcome> {
    return requestAccess(this.core, principal, input, ctx);
  }

  activate(id: GrantId, actor: string, opts: { recheck?: boolean } = {}): Promise<Grant> {
    return activate(this.core, id, actor, opts);
  }

  approve(approver: Principal, id: GrantId, input: { comment?: unknown }, channel: Channel): Promise<Grant> {
    return approve(this.core, approver, id, input, channel);
  }

  deny(approver: Principal, id: GrantId, input: { comment?: unknown }, channel: Channel): Promise<Grant> {
    return deny(this.core, approver, id, input, channel);
  }

  approvable(principal: Principal, channel: Channel): Promise<Grant[]> {
    return approvable(this.core, principal, channel);
  }

  extend(principal: Principal, id: GrantId, input: { duration?: unknown }, channel: Channel): Promise<Grant> {
    return extend(this.core, principal, id, input, channel);
  }

  revoke(principal: Principal, id: GrantId): Promise<Grant> {
    return revoke(this.core, principal, id);
  }

  /** Closes every active grant due at `now` (expires_at <= now), in batches: one close per backend each. */
  expireDue(now?: number): Promise<number> {
    return expireDue(this.core, now);
  }

  /** The soonest expiry of an active grant, or null: what the reaper's one timer is armed for. */
  nextExpiry(): Promise<number | null> {
    return this.core.store.nextExpiry();
  }

  async close(grants: Grant[], reason: CloseReason, actor: string): Promise<void> {
    await close(this.core, grants, reason, actor);
  }

  expirePending(now?: number): Promise<number> {
    return expirePending(this.core, now);
  }

  /** Makes each backend agree with the store (see reconcile.ts). */
  reconcile(opts: { atStart?: boolean } = {}): Promise<ReconcileResult> {
    return this.reconciler.run(opts);
  }

  getGrant(principal: Principal, id: GrantId, channel: Channel = 'api'): Promise<Grant> {
    return queries.getGrant(this.core, principal, id, channel);
  }

  /** A visible grant with its approvals. */
  grantApprovals(principal: Principal, id: GrantId, channel: Channel = 'api'): Promise<{ grant: Grant; approvals: Approval[] }> {
    return queries.grantApprovals(this.core, principal, id, channel);
  }

  listGrants(principal: Principal, opts: { limit?: number; all?: boolean } = {}): Promise<Grant[]> {
    return queries.listGrants(this.core, principal, opts);
  }

  durationLimit(principal: Principal, targetId: string, callerIp: string, channel: Channel, capMinutes: number): DurationLimit {
    return queries.durationLimit(this.core, principal, targetId, callerIp, channel, capMinutes);
  }

  isAdmin(principal: Principal): boolean {
    return this.core.isAdmin(principal);
  }

  mayReadAudit(principal: Principal): boolean {
    return queries.mayReadAudit(this.core, principal);
  }

  /** Audit events for an audit reader (FORBIDDEN for anyone else). */
  readAudit(principal: Principal, filter: { afterSeq?: number; limit?: number; grant?: string }): Promise<AuditEvent[]> {
    return queries.readAudit(this.core, principal, filter);
  }

  /** Pending requests this approver may decide and has not approved yet, oldest first. */
  inbox(principal: Principal, channel: Channel): Promise<InboxItem[]> {
    return queries.inbox(this.core, principal, channel);
  }

  /** The audit events of a grant the principal may see. */
  grantEvents(principal: Principal, id: GrantId, channel: Channel = 'api'): Promise<AuditEvent[]> {
    return queries.grantEvents(this.core, principal, id, channel);
  }

  /** Filtered audit events for an audit reader (FORBIDDEN for anyone else). */
  searchAudit(principal: Principal, filter: AuditFilter, limit: number): Promise<{ events: AuditEvent[]; matched: number }> {
    return queries.searchAudit(this.core, principal, filter, limit);
  }

  /** Every matching audit event for an audit reader, streamed (FORBIDDEN for anyone else). */
  exportAudit(principal: Principal, filter: AuditFilter): AsyncGenerator<AuditEvent> {
    return queries.exportAuditTrail(this.core, principal, filter);
  }

  /** Who knocked on the gate since then, per source and target (FORBIDDEN for anyone but an admin). */
  attemptsReport(principal: Principal, opts: { sinceMs: number; target?: string | undefined }): Promise<AttemptsReport> {
    return queries.attemptsReport(this.core, principal, opts);
  }

  verifyAudit(principal: Principal): Promise<VerifyResult & { headSeq: number }> {
    return queries.verifyAudit(this.core, principal);
  }

  /** A refused credential, audited by its code only. */
  recordRefusal(event: { code: string; sourceIp: string; path: string; suppressedBefore?: number }): Promise<void> {
    return queries.recordRefusal(this.core, event);
  }

  recordTransportEvent(event: AuditInput): Promise<void> {
    return queries.recordTransportEvent(this.core, event);
  }

  storeHealth(): Promise<{ ok: boolean; detail: string }> {
    return queries.storeHealth(this.core);
  }

  /** Called by transports on every authenticated request: group changes reach approval re-checks. */
  async noteSignIn(principal: Principal): Promise<void> {
    await this.core.store.rememberUser(principal, this.core.clock());
  }
}
