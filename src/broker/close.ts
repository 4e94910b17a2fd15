// Closing: revoke, expiry of due grants, pending timeouts, and the close sequence they share.
import { PortcullisError, isPortcullisError } from '../errors.ts';
import { failpoint } from '../failpoints.ts';
import type { FirewallAdapter } from '../firewall/port.ts';
import { errorFields } from '../log.ts';
import type { CloseReason, Grant, GrantId, Principal } from '../domain/index.ts';
import type { BrokerCore } from './core.ts';

/** Due grants closed per round: one close call per backend each. */
const EXPIRY_PAGE = 5000;

/** Early close by the requester, or by an admin. */
export async function revoke(core: BrokerCore, principal: Principal, id: GrantId): Promise<Grant> {
  // An open or extend of this process on the grant is waited for (a few times at most), then the
  // close goes ahead; one of another process answers INVALID_STATE and the caller retries.
  for (let attempt = 0; ; attempt++) {
    const wait = attempt < 3 && core.inFlight.has(id);
    const grant = await core.visibleGrant(principal, id);
    if (grant.state === 'pending' || grant.state === 'approved') {
      const done = await core.store.write(async (w) => {
        if (!(await w.transition(id, ['pending', 'approved'], 'closed', { closeReason: 'revoked', closedAt: core.clock() }))) return false;
        await w.audit({ actor: principal.sub, grant: id, target: grant.targetId, type: 'grant.revoked', detail: { from: grant.state } });
        return true;
      });
      if (done) return core.mustGet(id);
      continue;
    }
    if (grant.state === 'opening' || grant.state === 'extending') {
      if (wait) {
        await core.settled(id);
        continue;
      }
      throw new PortcullisError('INVALID_STATE', `grant ${id} is ${grant.state} right now; close it again in a moment`);
    }
    if (grant.state !== 'active') {
      throw new PortcullisError('INVALID_STATE', `grant ${id} is ${grant.state}; only a pending or active grant can be closed`);
    }
    if ((await close(core, [grant], 'revoked', principal.sub)) === 1) return core.mustGet(id);
    if (core.inFlight.has(id) && attempt < 3) {
      await core.settled(id);
      continue;
    }
    const now = await core.mustGet(id);
    throw new PortcullisError('INVALID_STATE', `grant ${id} is ${now.state}; it changed while being closed`);
  }
}

/**
 * Expires every active grant whose time is up (the reaper's timer and its sweep call this). Each
 * round claims a page of due grants in one statement (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so
 * whichever replica is awake closes them and no two replicas close the same one), then removes
 * their rules. A replica that dies after its claim leaves them `closing` under its owner id, which
 * the reconciler of a live replica settles at once (see reconcile.ts).
 */
export async function expireDue(core: BrokerCore, now = core.clock()): Promise<number> {
  // An idle sweep reads the index and takes no lock: the chain head is every write's first lock.
  if ((await core.store.dueForExpiry(now, 1)).length === 0) return 0;
  let total = 0;
  for (;;) {
    const claimed = await core.store.write(async (w) => {
      const mine = await w.claimDue(now, EXPIRY_PAGE);
      for (const g of mine) await w.audit({ actor: 'system:reaper', grant: g.id, target: g.targetId, sourceIp: g.source, port: g.port, type: 'grant.expired', ruleRef: g.ruleRef ?? undefined });
      return mine;
    });
    if (claimed.length) failpoint('after-close-intent');
    await finishClosing(core, claimed, 'system:reaper');
    total += claimed.length;
    if (claimed.length < EXPIRY_PAGE) return total;
  }
}

/**
 * active → closing → (rule removed) → closed, for many grants at once: one transaction per phase,
 * one firewall call per backend. A grant is never marked closed while its rule may still exist.
 * Returns how many of `grants` this call claimed (the others were not active any more).
 */
export async function close(core: BrokerCore, grants: Grant[], reason: CloseReason, actor: string): Promise<number> {
  const eventType = reason === 'expired' ? 'grant.expired' : reason === 'revoked' ? 'grant.revoked' : 'grant.closing';
  const claimed = await core.store.write(async (w) => {
    const mine: Grant[] = [];
    for (const read of grants) {
      // Claimed with the rule ref it was read with: an extend or reopen that finished since may
      // have given it another rule, and closing the old ref would leave the new one open.
      // An expiry also expects the expiry it found due: a grant extended since is not due any more.
      const expect = (g: Grant) => ({ ruleRef: g.ruleRef, ...(reason === 'expired' ? { expiresAt: g.expiresAt } : {}) });
      let g: Grant | undefined = read;
      if (!(await w.transition(g.id, 'active', 'closing', { closeReason: reason }, expect(g)))) {
        g = await w.getGrant(read.id);
        if (g?.state !== 'active') continue;
        if (reason === 'expired' && (g.expiresAt === null || read.expiresAt === null || g.expiresAt > read.expiresAt)) continue;
        if (!(await w.transition(g.id, 'active', 'closing', { closeReason: reason }, expect(g)))) continue;
      }
      await w.audit({ actor, grant: g.id, target: g.targetId, sourceIp: g.source, port: g.port, type: eventType, ruleRef: g.ruleRef ?? undefined });
      mine.push({ ...g, state: 'closing', closeReason: reason });
    }
    return mine;
  });
  if (claimed.length) failpoint('after-close-intent');
  await finishClosing(core, claimed, actor);
  return claimed.length;
}

/**
 * closing → closed: remove the rules (one call per backend, the backends in parallel), then record
 * every close in one transaction (a batch over many backends is one commit, not one per backend).
 */
export async function finishClosing(core: BrokerCore, grants: Grant[], actor: string): Promise<void> {
  if (grants.length === 0) return;
  const byBackend = new Map<FirewallAdapter, Grant[]>();
  for (const g of grants) {
    const fw = core.firewall(g.targetId);
    const batch = byBackend.get(fw);
    if (batch) batch.push(g);
    else byBackend.set(fw, [g]);
  }
  // Grants closing together do not keep each other's rules.
  const closingIds = grants.map((g) => g.id);
  const errors: unknown[] = [];
  const failed: { batch: Grant[]; error: unknown }[] = [];
  const removed: { batch: Grant[]; shared: Set<string> }[] = [];
  await Promise.all(
    [...byBackend].map(async ([fw, batch]) => {
      const refs = [...new Set(batch.map((g) => g.ruleRef).filter((r): r is string => r !== null))];
      const shared = await core.store.refsHeldByOthers(refs, closingIds);
      const toClose = refs.filter((r) => !shared.has(r));
      try {
        if (toClose.length) await fw.close(toClose);
        failpoint('after-firewall-close');
        removed.push({ batch, shared });
      } catch (e) {
        errors.push(e);
        failed.push({ batch, error: e });
        core.log.warn('rule close failed; will retry', { backend: fw.scope, count: toClose.length, ...errorFields(e) });
      }
    }),
  );
  if (failed.length) {
    await core.store.write(async (w) => {
      for (const { batch, error } of failed) {
        for (const g of batch) await w.audit({ actor: 'system', grant: g.id, target: g.targetId, type: 'rule.close_failed', ruleRef: g.ruleRef ?? undefined, detail: { code: isPortcullisError(error) ? error.code : 'FIREWALL_UNAVAILABLE' } });
      }
    });
  }
  if (removed.length) {
    const closedAt = core.clock();
    const closed = await core.store.write(async (w) => {
      const done: Grant[] = [];
      for (const { batch, shared } of removed) {
        for (const g of batch) {
          if (!(await w.transition(g.id, 'closing', 'closed', { closedAt }))) continue;
          const kept = g.ruleRef !== null && shared.has(g.ruleRef);
          await w.audit({ actor, grant: g.id, target: g.targetId, sourceIp: g.source, port: g.port, type: 'rule.closed', ruleRef: g.ruleRef ?? undefined, detail: kept ? { sharedRuleKept: true } : undefined });
          await w.audit({ actor, grant: g.id, target: g.targetId, type: 'grant.closed', detail: { reason: g.closeReason } });
          done.push({ ...g, state: 'closed', closedAt });
        }
      }
      return done;
    });
    for (const g of closed) core.announceClosed(g);
  }
  if (errors.length && errors.length === byBackend.size) {
    const e = errors[0];
    throw isPortcullisError(e) ? e : new PortcullisError('FIREWALL_UNAVAILABLE', 'the firewall did not remove the rule; it will be retried', { cause: e });
  }
}

/** Pending requests nobody decided in time become `expired`. */
export async function expirePending(core: BrokerCore, now = core.clock()): Promise<number> {
  const stale = await core.store.grantsInStates(['pending'], { updatedBefore: now - core.limits.pendingTimeoutSeconds * 1000 });
  if (stale.length === 0) return 0;
  return core.store.write(async (w) => {
    let n = 0;
    for (const g of stale) {
      if (!(await w.transition(g.id, 'pending', 'expired', { closeReason: 'expired', closedAt: now }))) continue;
      await w.audit({ actor: 'system:reaper', grant: g.id, target: g.targetId, type: 'grant.pending_expired' });
      n += 1;
    }
    return n;
  });
}
