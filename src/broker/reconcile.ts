// The reconciler: makes each firewall backend agree with the store, at start and on every sweep.
// Rules no live grant explains are removed; live grants whose rule vanished are reopened or
// closed; grants a crash left in `approved`, `opening`, `extending` or `closing` are settled.
// All of it audited. It calls an adapter to open only behind the same durable intent as a
// request does (`opening`, through openRule), so a revoke racing it cannot leave a rule behind.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { errorFields, type Logger } from '../log.ts';
import type { FirewallAdapter, ManagedRule } from '../firewall/port.ts';
import type { Store } from '../store/store.ts';
import { LIVE_STATES, type CloseReason, type Grant, type GrantId } from '../domain/index.ts';

/** The least wait before a grant sitting in `approved`, `opening` or `extending` is settled as stale. */
const MIN_STALE_OPENING_MS = 60_000;
/** The least wait before a grant sitting in `closing` has its close retried. */
const MIN_STALE_CLOSING_MS = 5_000;
/**
 * Replicas' clocks may differ by this much. A rule of a grant closed this recently is left for the next
 * sweep (its closer removed it); a rule that truly outlived its grant's close goes one sweep later.
 */
const CLOCK_SKEW_MS = 30_000;
/** An adapter that does not say how long its calls can take. */
const DEFAULT_MAX_CALL_SECONDS = 60;

/**
 * Stale thresholds from the slowest backend's worst call: an intent of a live replica (or of this
 * one) is never settled while its adapter call may still be running. An open is one call and its
 * record; a close one call; the margin covers the store writes around them.
 */
export function staleThresholds(firewalls: Iterable<FirewallAdapter>): { openingMs: number; closingMs: number } {
  let worst = 0;
  for (const fw of firewalls) worst = Math.max(worst, fw.maxCallSeconds ?? DEFAULT_MAX_CALL_SECONDS);
  const callMs = worst * 1000;
  return { openingMs: Math.max(MIN_STALE_OPENING_MS, callMs + 30_000), closingMs: Math.max(MIN_STALE_CLOSING_MS, callMs + 5_000) };
}

export interface ReconcileResult {
  orphansRemoved: number;
  reopened: number;
  settled: number;
  failedBackends: number;
  /** True when another replica was reconciling, so this one did nothing. */
  skipped?: boolean;
}

/** What the reconciler needs of the broker: its store and backends, and its open and close sequences. */
export interface ReconcileHost {
  store: Store;
  firewalls: ReadonlyMap<string, FirewallAdapter>;
  log: Logger;
  now(): number;
  close(grants: Grant[], reason: CloseReason, actor: string): Promise<unknown>;
  finishClosing(grants: Grant[], actor: string): Promise<void>;
  announceActive(grant: Grant): void;
  /** opening → active through the one provisioning step (the caller made `opening` durable). */
  openRule(grant: Grant, fw: FirewallAdapter, actor: string, opts: { event: string; detail: Record<string, unknown> }): Promise<Grant>;
  /** approved → opening → active, re-checking the requester (an approval a crash interrupted). */
  activate(id: GrantId, actor: string): Promise<Grant>;
  /** True while this process has an intent (claim, adapter call, record) running for the grant. */
  busy(id: GrantId): boolean;
  /** Runs an intent on the grant, known to this process's revoke (which waits for it). */
  intent<T>(id: GrantId, run: () => Promise<T>): Promise<T>;
}

export class Reconciler {
  constructor(private readonly host: ReconcileHost) {}

  /**
   * Makes each backend agree with the store. `atStart`: on SQLite every `opening` grant is settled
   * now, since no request of this process can be in flight; on PostgreSQL only those of replicas
   * that are gone (the others wait out thresholds derived from the adapters' own timeouts).
   */
  async run(opts: { atStart?: boolean } = {}): Promise<ReconcileResult> {
    // One reconciler at a time across replicas: two would each see the other's fresh rules and intents.
    const done = await this.host.store.exclusive('reconcile', () => this.runAlone(opts));
    return done ?? { orphansRemoved: 0, reopened: 0, settled: 0, failedBackends: 0, skipped: true };
  }

  private async runAlone(opts: { atStart?: boolean }): Promise<ReconcileResult> {
    const result = { orphansRemoved: 0, reopened: 0, settled: 0, failedBackends: 0 };
    const now = this.host.now();
    const stale = staleThresholds(new Set(this.host.firewalls.values()));
    // On SQLite one process serves the store, so at start nothing of anyone's can be in flight. On
    // PostgreSQL other replicas may be mid-call: only intents of replicas that are gone settle now.
    const pg = this.host.store.dialect === 'postgres';
    const settleNow = async (grants: Grant[]): Promise<(g: Grant) => boolean> => {
      if (!pg) return () => opts.atStart === true;
      const dead = await this.host.store.ownedByDeadReplicas(grants.filter((g) => g.state !== 'active').map((g) => g.id));
      return (g) => dead.has(g.id);
    };
    result.settled += await this.recoverApproved(now, settleNow, stale.openingMs);
    const backends = new Map<FirewallAdapter, string[]>();
    for (const [targetId, fw] of this.host.firewalls) {
      const ids = backends.get(fw);
      if (ids) ids.push(targetId);
      else backends.set(fw, [targetId]);
    }

    for (const [fw, targetIds] of backends) {
      // A turn of the event loop per backend: on SQLite the reads do not yield, and a reconcile of
      // many backends would otherwise hold the reaper's timer (and every request) until it is done.
      await nextTurn();
      // List the backend BEFORE reading grants: a grant that opens in between is then seen as
      // live, never its rule as an orphan.
      let rules;
      const listedAt = this.host.now();
      try {
        rules = await fw.list();
      } catch (e) {
        result.failedBackends += 1;
        this.host.log.warn('reconcile: backend did not answer', { backend: fw.scope, ...errorFields(e) });
        continue;
      }
      const grants = await this.host.store.grantsInStates(LIVE_STATES, { targetIds });
      const orphaned = await settleNow(grants);
      const closing: Grant[] = [];
      const liveIds = new Set(grants.map((g) => g.id as string));
      const liveRefs = new Set(grants.map((g) => g.ruleRef).filter((r): r is string => r !== null));
      const rulesByGrant = new Map<string, string>();
      for (const r of rules) for (const gid of r.grantIds) rulesByGrant.set(gid, r.ref);
      const ruleRefs = new Set(rules.map((r) => r.ref));

      const candidates = rules.filter((r) => !liveRefs.has(r.ref) && !r.grantIds.some((gid) => liveIds.has(gid)));
      const orphans = await this.notClosedSince(candidates, listedAt);
      if (orphans.length) {
        try {
          await fw.close(orphans.map((r) => r.ref));
          await this.host.store.write(async (w) => {
            for (const r of orphans) {
              await w.audit({ actor: 'system:reconciler', type: 'reconcile.orphan_removed', grant: r.grantIds[0], sourceIp: r.source, port: r.port, ruleRef: r.ref, detail: { backend: fw.scope } });
            }
          });
          result.orphansRemoved += orphans.length;
        } catch (e) {
          this.host.log.warn('reconcile: orphan removal failed', { backend: fw.scope, ...errorFields(e) });
        }
      }

      for (const g of grants) {
        const ref = rulesByGrant.get(g.id) ?? (g.ruleRef !== null && ruleRefs.has(g.ruleRef) ? g.ruleRef : undefined);
        // A call of this process in flight will settle the grant itself.
        if (this.host.busy(g.id)) continue;
        const staleOpen = orphaned(g) || g.updatedAt < now - stale.openingMs;
        try {
          if (g.state === 'opening' && staleOpen) {
            await this.settleOpening(g, ref, fw);
            result.settled += 1;
          } else if (g.state === 'extending' && staleOpen) {
            await this.settleExtending(g);
            result.settled += 1;
          } else if (g.state === 'active' && ref === undefined && g.updatedAt <= listedAt) {
            // (A grant that changed after the listing may have a rule the listing could not show.)
            if (await this.reopen(g, fw)) result.reopened += 1;
          } else if (g.state === 'closing' && (orphaned(g) || g.updatedAt < now - stale.closingMs)) {
            closing.push(g);
          }
        } catch (e) {
          this.host.log.warn('reconcile: grant not settled', { grant: g.id, ...errorFields(e) });
        }
      }
      // Closes to finish (a dead replica's claimed page, a failed call) go in one batch: one backend call.
      if (closing.length) {
        try {
          await this.host.finishClosing(closing, 'system:reconciler');
          result.settled += closing.length;
        } catch (e) {
          this.host.log.warn('reconcile: closes not finished', { count: closing.length, ...errorFields(e) });
        }
      }
    }
    return result;
  }

  /**
   * Drops from `rules` those of a grant closed since the listing: its closer (this replica's reaper,
   * or another replica's) removed the rule after the listing saw it, so it is no orphan, and closing
   * it again would be a second close of the same rule.
   */
  private async notClosedSince(rules: ManagedRule[], listedAt: number): Promise<ManagedRule[]> {
    const out: ManagedRule[] = [];
    for (const r of rules) {
      let closedSince = false;
      for (const gid of r.grantIds) {
        const g = await this.host.store.getGrant(gid as GrantId);
        if (g?.closedAt != null && g.closedAt >= listedAt - CLOCK_SKEW_MS) closedSince = true;
      }
      if (!closedSince) out.push(r);
    }
    return out;
  }

  /** A grant left in `opening` by a crash or a failed call: adopt its rule, or fail it. */
  private async settleOpening(g: Grant, ref: string | undefined, fw: FirewallAdapter): Promise<void> {
    const now = this.host.now();
    const audit = { actor: 'system:reconciler', grant: g.id, target: g.targetId, sourceIp: g.source, port: g.port };
    if (ref !== undefined && g.expiresAt !== null && g.expiresAt > now) {
      const adopted = await this.host.store.write(async (w) => {
        if (!(await w.transition(g.id, 'opening', 'active', { ruleRef: ref, activatedAt: now }))) return undefined;
        await w.audit({ ...audit, type: 'rule.opened', ruleRef: ref, detail: { backend: fw.scope, adopted: true } });
        return w.getGrant(g.id);
      });
      if (adopted) this.host.announceActive(adopted);
      return;
    }
    if (ref !== undefined) {
      const shared = await this.host.store.refsHeldByOthers([ref], [g.id]);
      if (!shared.has(ref)) await fw.close([ref]);
      await this.host.store.write(async (w) => {
        await w.audit({ ...audit, type: 'rule.closed', ruleRef: ref, detail: { backend: fw.scope, reason: 'expired before adoption' } });
      });
    }
    await this.host.store.write(async (w) => {
      if (!(await w.transition(g.id, 'opening', 'failed', { failure: 'INTERRUPTED', closedAt: now }))) return;
      await w.audit({ ...audit, type: 'grant.failed', detail: { code: 'INTERRUPTED', ruleFound: ref !== undefined } });
    });
  }

  /**
   * An active grant whose rule vanished from the backend: put it back (active → opening → active,
   * the intent durable first), or close the grant if its time is up.
   */
  private async reopen(g: Grant, fw: FirewallAdapter): Promise<boolean> {
    const now = this.host.now();
    if (g.expiresAt === null || g.expiresAt <= now + 1000) {
      await this.host.close([g], 'expired', 'system:reconciler');
      return false;
    }
    const audit = { actor: 'system:reconciler', grant: g.id, target: g.targetId, sourceIp: g.source, port: g.port };
    return this.host.intent(g.id, async () => {
      const claimed = await this.host.store.write(async (w) => {
        if (!(await w.transition(g.id, 'active', 'opening', {}, { ruleRef: g.ruleRef }))) return false;
        await w.audit({ ...audit, type: 'rule.opening', detail: { backend: fw.scope, expiresAt: new Date(g.expiresAt!).toISOString(), reopen: true } });
        return true;
      });
      // Someone else moved it (a revoke, an extend): their transition explains the rule now.
      if (!claimed) return false;
      await this.host.openRule({ ...g, state: 'opening' }, fw, 'system:reconciler', { event: 'reconcile.rule_reopened', detail: { previous: g.ruleRef } });
      return true;
    });
  }

  /** An extend a crash interrupted: back to active with the expiry the store has (the user was never told the new one). */
  private async settleExtending(g: Grant): Promise<void> {
    const back = await this.host.store.write(async (w) => {
      if (!(await w.transition(g.id, 'extending', 'active'))) return undefined;
      await w.audit({ actor: 'system:reconciler', grant: g.id, target: g.targetId, type: 'grant.extend_failed', detail: { code: 'INTERRUPTED' } });
      return w.getGrant(g.id);
    });
    if (back) this.host.announceActive(back);
  }

  /**
   * Grants a crash left `approved` (between the last approval and the opening intent): activate
   * them, re-checking the requester, or fail them if that cannot be done.
   */
  private async recoverApproved(now: number, settleNow: (grants: Grant[]) => Promise<(g: Grant) => boolean>, staleMs: number): Promise<number> {
    const all = await this.host.store.grantsInStates(['approved']);
    const orphaned = await settleNow(all);
    const approved = all.filter((g) => orphaned(g) || g.updatedAt < now - staleMs);
    let n = 0;
    for (const g of approved) {
      if (this.host.busy(g.id)) continue;
      n += 1;
      try {
        await this.host.activate(g.id, 'system:reconciler');
      } catch (e) {
        this.host.log.warn('reconcile: an approved grant could not be activated', { grant: g.id, ...errorFields(e) });
        // An unknown target (config changed) or a refusal before the intent: nothing was opened.
        await this.host.store.write(async (w) => {
          if (!(await w.transition(g.id, 'approved', 'failed', { failure: 'INTERRUPTED', closedAt: this.host.now() }))) return;
          await w.audit({ actor: 'system:reconciler', grant: g.id, target: g.targetId, type: 'grant.failed', detail: { code: 'INTERRUPTED', from: 'approved' } });
        });
      }
    }
    return n;
  }
}
