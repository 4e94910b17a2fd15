// Reads: grants a principal may see, their approvals, duration limits, and the audit trail (who may read it).
import type { AuditEvent, AuditInput } from '../audit/chain.ts';
import { PortcullisError, isPortcullisError } from '../errors.ts';
import { buildPolicyContext } from '../policy/context.ts';
import { maxDuration, type DurationLimit } from '../policy/max-duration.ts';
import type { VerifyResult } from '../audit/chain.ts';
import type { Approval, Channel, Grant, GrantId, Principal } from '../domain/index.ts';
import type { BrokerCore } from './core.ts';
import { approvable } from './approvals.ts';
import { exportAudit, queryAudit, type AuditFilter } from './audit-query.ts';
import { approverInbox, type InboxItem } from './inbox.ts';
import { attemptsReport as report, type AttemptsReport } from './attempts-report.ts';
import { canonicalAddress } from './source.ts';

/** A grant the principal may see; approvers also see the pending requests they may decide. */
export async function getGrant(core: BrokerCore, principal: Principal, id: GrantId, channel: Channel = 'api'): Promise<Grant> {
  try {
    return await core.visibleGrant(principal, id);
  } catch (e) {
    const g = isPortcullisError(e, 'GRANT_NOT_FOUND') ? await core.findGrant(id) : undefined;
    if (g?.state === 'pending' && g.requester !== principal.sub && core.decideApproval(principal, g, channel).allowed) return g;
    throw e;
  }
}

/** The approvals of a grant the principal may see (same visibility as getGrant). */
export async function grantApprovals(core: BrokerCore, principal: Principal, id: GrantId, channel: Channel = 'api'): Promise<{ grant: Grant; approvals: Approval[] }> {
  const grant = await getGrant(core, principal, id, channel);
  return { grant, approvals: await core.store.approvals(grant.id) };
}

export async function listGrants(core: BrokerCore, principal: Principal, opts: { limit?: number; all?: boolean } = {}): Promise<Grant[]> {
  if (opts.all && !core.isAdmin(principal)) throw new PortcullisError('FORBIDDEN', 'only administrators can list every grant');
  return core.store.listGrants({ requester: opts.all ? undefined : principal.sub, limit: opts.limit ?? 100 });
}

/**
 * The longest duration this principal may ask for on a target, and whether it needs approval. No reason
 * exists yet: forbids about the reason are left out (what a reason they accept gets), and `reasonDependent`
 * says when they would change the answer for an empty reason.
 */
export function durationLimit(core: BrokerCore, principal: Principal, targetId: string, callerIp: string, channel: Channel, capMinutes: number): DurationLimit {
  const target = core.targets.get(targetId);
  const none = { minutes: 0, approval: false, immediateMinutes: 0, policyIds: [] };
  if (!target) return none;
  const address = canonicalAddress(callerIp) ?? '127.0.0.1';
  try {
    const query = {
      principal,
      target: { id: target.id, tags: target.tags, ports: target.ports },
      context: buildPolicyContext({ principal, durationMinutes: 0, port: target.ports[0]!, sourceIp: address, sourcePrefixLength: address.includes(':') ? 128 : 32, callerIp: address, channel, reason: '', now: core.clock(), timeZone: core.limits.timeZone }),
    };
    const bounds = { capMinutes, minMinutes: Math.ceil(core.limits.minDurationSeconds / 60) };
    const engine = core.deps.policy();
    const compute = (): DurationLimit => {
      const preview = maxDuration(engine, query, { ...bounds, decide: { reasonUnknown: true } });
      const strict = maxDuration(engine, query, bounds);
      const reasonDependent = preview.minutes !== strict.minutes || preview.approval !== strict.approval || preview.immediateMinutes !== strict.immediateMinutes;
      return { ...preview, reasonDependent };
    };
    // One memo look-up for both answers (GET /targets asks this for every target on each load).
    const got = engine.remember ? engine.remember(`durationLimit|${bounds.capMinutes}|${bounds.minMinutes}`, query, compute) : compute();
    return { ...got, policyIds: [...got.policyIds] };
  } catch {
    return none;
  }
}

/** Members of audit.readerGroups (and admins) may read the trail; everyone else is refused. */
export function mayReadAudit(core: BrokerCore, principal: Principal): boolean {
  return core.isAdmin(principal) || (core.limits.auditReaderGroups ?? []).some((g) => principal.groups.includes(g));
}

export async function readAudit(core: BrokerCore, principal: Principal, filter: { afterSeq?: number; limit?: number; grant?: string }): Promise<AuditEvent[]> {
  if (!mayReadAudit(core, principal)) {
    throw new PortcullisError('FORBIDDEN', 'reading the audit trail needs membership of an audit.readerGroups group');
  }
  return core.store.auditEvents(filter);
}

/** The approver's inbox: pending requests this principal may decide and has not approved yet. */
export async function inbox(core: BrokerCore, principal: Principal, channel: Channel): Promise<InboxItem[]> {
  return approverInbox({ approvable: (p, c) => approvable(core, p, c) }, core.store, principal, channel);
}

/** The audit events of a grant the principal may see (same visibility as getGrant), oldest first. */
export async function grantEvents(core: BrokerCore, principal: Principal, id: GrantId, channel: Channel = 'api', limit = 200): Promise<AuditEvent[]> {
  const grant = await getGrant(core, principal, id, channel);
  return core.store.auditEvents({ grant: grant.id, limit });
}

function requireAuditReader(core: BrokerCore, principal: Principal): void {
  if (!mayReadAudit(core, principal)) throw new PortcullisError('FORBIDDEN', 'reading the audit trail needs membership of an audit.readerGroups group');
}

/** Filtered audit events for an audit reader: the newest `limit` of them and how many matched. */
export async function searchAudit(core: BrokerCore, principal: Principal, filter: AuditFilter, limit: number): Promise<{ events: AuditEvent[]; matched: number }> {
  requireAuditReader(core, principal);
  return queryAudit(core.store, filter, limit);
}

/** Every matching event for an audit reader, page by page (refused before the first page otherwise). */
export function exportAuditTrail(core: BrokerCore, principal: Principal, filter: AuditFilter): AsyncGenerator<AuditEvent> {
  requireAuditReader(core, principal);
  return exportAudit(core.store, filter);
}

/** Blocked attempts on the gate since `sinceMs` (the window in progress included), for administrators only. */
export async function attemptsReport(core: BrokerCore, principal: Principal, opts: { sinceMs: number; target?: string | undefined }): Promise<AttemptsReport> {
  if (!core.isAdmin(principal)) throw new PortcullisError('FORBIDDEN', 'who knocks on the gate is for members of grants.adminGroups');
  return report({ store: core.store, current: core.deps.currentAttempts }, opts);
}

/** Any signed-in principal may ask whether the chain verifies (the answer holds no events). */
export async function verifyAudit(core: BrokerCore, _principal: Principal): Promise<VerifyResult & { headSeq: number }> {
  return core.store.verifyAudit();
}

/** A refused credential, audited by code only (transports decide how many per address). */
export async function recordRefusal(core: BrokerCore, event: { code: string; sourceIp: string; path: string; suppressedBefore?: number }): Promise<void> {
  const input: AuditInput = {
    type: event.code === 'MFA_REQUIRED' ? 'auth.mfa_missing' : 'auth.rejected',
    actor: null,
    sourceIp: event.sourceIp,
    detail: { code: event.code, path: event.path, ...(event.suppressedBefore ? { suppressedBefore: event.suppressedBefore } : {}) },
  };
  await core.store.audit(input);
}

/** An event a transport decided to audit (sign-in outcomes, a window's suppressed refusals); written as given. */
export async function recordTransportEvent(core: BrokerCore, event: AuditInput): Promise<void> {
  await core.store.audit(event);
}

/** Readiness of the store, for /readyz. */
export async function storeHealth(core: BrokerCore): Promise<{ ok: boolean; detail: string }> {
  try {
    await core.store.ping();
    return { ok: true, detail: core.store.dialect };
  } catch {
    return { ok: false, detail: 'store unreachable' };
  }
}
