// Idle access closes itself: each sweep reads every grant's packet counter from its backend (the
// kernel's, not the broker's guess); a grant on a target with `idleTimeout` whose counter has not moved
// for that long is closed with reason `idle` (audited as every close is; the notifier tells the requester).
import type { CloseReason, Grant } from '../domain/index.ts';
import type { FirewallAdapter } from '../firewall/port.ts';
import { errorFields, type Logger } from '../log.ts';
import type { Store } from '../store/store.ts';

export interface IdleDeps {
  store: Store;
  firewalls: ReadonlyMap<string, FirewallAdapter>;
  /** Target id → idle timeout in ms (only targets that have one). */
  timeouts: ReadonlyMap<string, number>;
  close: (grants: Grant[], reason: CloseReason, actor: string) => Promise<void>;
  log: Logger;
  now?: () => number;
}

interface ActivityReader {
  readGrantActivity(): Promise<Map<string, number>>;
}

const canRead = (x: unknown): x is ActivityReader => typeof (x as { readGrantActivity?: unknown } | null)?.readGrantActivity === 'function';

export class IdleWatcher {
  private readonly now: () => number;
  /** Per grant: the counter last seen and when it last moved (or was first seen). */
  private readonly seen = new Map<string, { packets: number; since: number }>();

  constructor(private readonly deps: IdleDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Never throws: a backend that cannot be read leaves its grants' clocks where they were. */
  async sweep(): Promise<void> {
    if (this.deps.timeouts.size === 0) return;
    const now = this.now();
    const grants = await this.deps.store.grantsInStates(['active'], { targetIds: [...this.deps.timeouts.keys()] });
    const live = new Set(grants.map((g) => g.id as string));
    for (const id of this.seen.keys()) if (!live.has(id)) this.seen.delete(id);
    const readings = new Map<FirewallAdapter, Map<string, number> | undefined>();
    const idle: Grant[] = [];
    for (const g of grants) {
      const fw = this.deps.firewalls.get(g.targetId);
      const limit = this.deps.timeouts.get(g.targetId);
      if (!fw || limit === undefined || !canRead(fw)) continue;
      if (!readings.has(fw)) {
        readings.set(fw, await fw.readGrantActivity().catch((e: unknown) => {
          this.deps.log.warn('idle: could not read the grant counters; next sweep', { backend: fw.scope, ...errorFields(e) });
          return undefined;
        }));
      }
      const counts = readings.get(fw);
      const packets = counts?.get(g.id);
      if (packets === undefined) continue; // not in the table (the reconciler judges that), or unreadable
      const prev = this.seen.get(g.id);
      // Any change counts as activity: an extend replaces the elements and starts their counters again.
      if (!prev || prev.packets !== packets) {
        this.seen.set(g.id, { packets, since: now });
        continue;
      }
      if (now - prev.since >= limit) idle.push(g);
    }
    if (idle.length === 0) return;
    try {
      // Why, in the trail and to the notifier (the requester's grant events), before the close itself.
      for (const g of idle) {
        const s = this.seen.get(g.id)!;
        await this.deps.store.audit({ type: 'grant.idle', actor: 'system:idle', grant: g.id, target: g.targetId, sourceIp: g.source, port: g.port, detail: { packets: s.packets, idleSinceMs: now - s.since, idleTimeoutMs: this.deps.timeouts.get(g.targetId) } });
      }
      await this.deps.close(idle, 'idle', 'system:idle');
      for (const g of idle) this.seen.delete(g.id);
    } catch (e) {
      this.deps.log.warn('idle: closing idle grants failed; next sweep', errorFields(e));
    }
  }
}
