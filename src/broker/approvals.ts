// Approvals: approve (N of M), deny, and the pending requests a principal may decide.
import { PortcullisError } from '../errors.ts';
import { failpoint } from '../failpoints.ts';
import type { Channel, Grant, GrantId, Principal } from '../domain/index.ts';
import type { BrokerCore } from './core.ts';
import { activate } from './request.ts';

/**
 * approve: the approver must hold MFA, be permitted ApprovePort for the target, and not be the
 * requester (refused here whatever the policies say). When the N-th approval arrives, the
 * requester's authorization is checked again with what the broker last learnt of them, and
 * only then does the grant open.
 */
export async function approve(core: BrokerCore, approver: Principal, id: GrantId, input: { comment?: unknown }, channel: Channel): Promise<Grant> {
  const { store } = core;
  const comment = optionalComment(input.comment);
  const grant = await core.mustGet(id);
  if (grant.requester === approver.sub) {
    throw new PortcullisError('SELF_APPROVAL', 'you cannot approve your own request; ask another approver');
  }
  core.assertMfa(approver);
  const decision = core.decideApproval(approver, grant, channel);
  if (!decision.allowed) {
    throw new PortcullisError('FORBIDDEN', `you may not approve requests for ${grant.targetId}${decision.policyIds.length ? ` (${decision.policyIds.join(', ')})` : ''}`);
  }
  if (grant.state !== 'pending') throw new PortcullisError('INVALID_STATE', `grant ${id} is ${grant.state}, not waiting for approval`);

  const now = core.clock();
  const result = await store.write(async (w) => {
    // The grant row is locked before counting: two approvers at once under READ COMMITTED would
    // otherwise each count only their own approval, and an N-of-N grant would never open.
    const current = await w.lockGrant(id);
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
  if (result.count < grant.requiredApprovals) return core.mustGet(id);

  // Authorization is re-checked now, not trusted from request time: a requester removed from
  // a group since must not be opened.
  const recheck = await core.recheckRequester(grant, now);
  if (recheck !== undefined) {
    await store.write(async (w) => {
      if (!(await w.transition(id, 'pending', 'denied', { closedAt: now, failure: 'REQUESTER_NO_LONGER_PERMITTED' }))) return;
      await w.audit({ actor: 'system', grant: id, target: grant.targetId, type: 'grant.denied', policyIds: recheck.policyIds, detail: { by: 'recheck', at: 'approval' } });
    });
    return core.mustGet(id);
  }
  const moved = await store.write(async (w) => {
    if (!(await w.transition(id, 'pending', 'approved'))) return false;
    await w.audit({ actor: approver.sub, grant: id, target: grant.targetId, sourceIp: grant.source, port: grant.port, type: 'grant.approved', policyIds: decision.policyIds, detail: { by: 'approvers', approvers: result.approvers } });
    return true;
  });
  if (!moved) return core.mustGet(id);
  failpoint('after-approval');
  return activate(core, id, approver.sub, { recheck: true });
}

export async function deny(core: BrokerCore, approver: Principal, id: GrantId, input: { comment?: unknown }, channel: Channel): Promise<Grant> {
  const comment = optionalComment(input.comment);
  const grant = await core.mustGet(id);
  if (grant.requester === approver.sub) {
    throw new PortcullisError('SELF_APPROVAL', 'you cannot decide your own request; close it instead');
  }
  core.assertMfa(approver);
  const decision = core.decideApproval(approver, grant, channel);
  if (!decision.allowed) throw new PortcullisError('FORBIDDEN', `you may not decide requests for ${grant.targetId}`);
  const now = core.clock();
  const done = await core.store.write(async (w) => {
    if (!(await w.transition(id, 'pending', 'denied', { closedAt: now }))) return false;
    await w.addApproval({ grantId: id, approver: approver.sub, decision: 'deny', comment, policyIds: decision.policyIds, createdAt: now });
    await w.audit({ actor: approver.sub, grant: id, target: grant.targetId, type: 'grant.denied', policyIds: decision.policyIds, reason: comment ?? undefined, detail: { by: 'approver' } });
    return true;
  });
  if (!done) throw new PortcullisError('INVALID_STATE', `grant ${id} is no longer waiting for approval`);
  return core.mustGet(id);
}

/** Pending grants this principal may approve (not their own). */
export async function approvable(core: BrokerCore, principal: Principal, channel: Channel): Promise<Grant[]> {
  const pending = await core.store.grantsInStates(['pending'], { limit: 500 });
  return pending.filter((g) => g.requester !== principal.sub && core.decideApproval(principal, g, channel).allowed);
}

function optionalComment(v: unknown): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string' || v.length > 500 || /[\u0000-\u001f\u007f]/.test(v)) {
    throw new PortcullisError('INVALID_REQUEST', 'comment must be one line of at most 500 characters', { field: 'comment' });
  }
  return v.trim();
}
