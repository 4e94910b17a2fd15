// The gate use case: on every sweep (and at start, before anything else), each backend that holds a
// baseline of its own verifies it and restores it at once with the live grants put back; each
// restoration is audited and counted. Which targets are without a verified gate is what /readyz names.
import type { FirewallAdapter, RuleSpec } from '../firewall/port.ts';
import { errorFields, type Logger } from '../log.ts';
import type { Store } from '../store/store.ts';

export interface GateState {
  scope: string;
  targets: string[];
  ok: boolean;
  /** Why not, when not ok. */
  detail: string;
}

export interface GateDeps {
  store: Store;
  firewalls: ReadonlyMap<string, FirewallAdapter>;
  log: Logger;
  now?: () => number;
  /** Called once per restoration (metrics). */
  onRestored?: (scope: string, missing: string[]) => void;
  /** Called after each check with whether the gate is in place (metrics). */
  onChecked?: (scope: string, ok: boolean) => void;
  /** Runs after the gates are verified on every sweep: reads the attempt counters (src/broker/attempts.ts). */
  attempts?: { sweep(): Promise<void> };
  /** Runs after the attempts: closes grants idle past their target's idleTimeout (src/broker/idle.ts). */
  idle?: { sweep(): Promise<void> };
}

export class GateKeeper {
  private readonly states = new Map<FirewallAdapter, GateState>();
  private readonly now: () => number;

  constructor(private readonly deps: GateDeps) {
    this.now = deps.now ?? Date.now;
    for (const [targetId, fw] of deps.firewalls) {
      if (!fw.ensureGate) continue;
      const s = this.states.get(fw) ?? { scope: fw.scope, targets: [], ok: false, detail: 'not checked yet' };
      s.targets.push(targetId);
      this.states.set(fw, s);
    }
  }

  /** Verifies every gate, restoring what is missing; never throws (a backend that fails stays not ready and is retried next sweep). */
  async sweep(): Promise<GateState[]> {
    await Promise.all([...this.states].map(([fw, s]) => this.verify(fw, s)));
    await this.deps.attempts?.sweep().catch((e: unknown) => this.deps.log.warn('gate: reading the attempt counters failed', errorFields(e)));
    await this.deps.idle?.sweep().catch((e: unknown) => this.deps.log.warn('gate: the idle check failed', errorFields(e)));
    return this.status();
  }

  /** Each backend with a baseline: its targets and whether its gate was in place at the last check. */
  status(): GateState[] {
    return [...this.states.values()].map((s) => ({ ...s, targets: [...s.targets] }));
  }

  /** The /readyz entry: not ready while any target is without its gate, naming those targets. */
  readiness(): { ok: boolean; detail: string } {
    const down = [...this.states.values()].filter((s) => !s.ok);
    if (down.length === 0) return { ok: true, detail: this.states.size ? `gate in place for ${[...this.states.values()].flatMap((s) => s.targets).join(', ')}` : 'no backend holds a baseline' };
    return { ok: false, detail: `gate not in place for ${down.map((s) => `${s.targets.join(', ')} (${s.detail})`).join('; ')}` };
  }

  private async verify(fw: FirewallAdapter, s: GateState): Promise<void> {
    const first = !this.checked.has(fw);
    this.checked.add(fw);
    try {
      // The adapter compares one listing of its table with the baseline; the live grants are read only for a restore.
      const report = await fw.ensureGate!(() => this.liveRules(s.targets));
      s.ok = true;
      s.detail = '';
      this.fallen.delete(fw);
      this.deps.onChecked?.(s.scope, true);
      if (!report.restored) return;
      this.deps.onRestored?.(s.scope, report.missing);
      this.deps.log.error('gate: baseline was missing or altered; restored', { backend: s.scope, targets: s.targets, missing: report.missing, putBack: report.putBack });
      // The restore happened whatever the store says now; a failed audit is logged, not a fallen gate.
      await this.deps.store
        .audit({ type: 'gate.restored', actor: 'system:gate', detail: { backend: s.scope, targets: s.targets, missing: report.missing, putBack: report.putBack, ...(first ? { atStart: true } : {}) } })
        .catch((err: unknown) => this.deps.log.warn('gate: could not audit the restoration', { backend: s.scope, ...errorFields(err) }));
    } catch (e) {
      s.ok = false;
      s.detail = String(errorFields(e).error);
      this.deps.onChecked?.(s.scope, false);
      const fields = { backend: s.scope, targets: s.targets, ...errorFields(e) };
      // Once per fall at error level and in the audit trail; a backend down for a day must not grow the trail.
      if (this.fallen.has(fw)) {
        this.deps.log.warn('gate: still not in place; retrying next sweep', fields);
        return;
      }
      this.fallen.add(fw);
      this.deps.log.error('gate: not in place and could not be restored; grants for its targets are refused until it is', fields);
      await this.deps.store.audit({ type: 'gate.unavailable', actor: 'system:gate', detail: { backend: s.scope, targets: s.targets, error: s.detail } }).catch((err: unknown) => {
        this.deps.log.warn('gate: could not audit the fall', errorFields(err));
      });
    }
  }

  private readonly checked = new Set<FirewallAdapter>();
  private readonly fallen = new Set<FirewallAdapter>();

  /** What must be in place: every active grant of these targets whose time is not up. */
  private async liveRules(targetIds: string[]): Promise<RuleSpec[]> {
    const now = this.now();
    const grants = await this.deps.store.grantsInStates(['active'], { targetIds });
    return grants
      .filter((g) => g.expiresAt !== null && g.expiresAt > now)
      .map((g) => ({ grantId: g.id, targetId: g.targetId, source: g.source, port: g.port, protocol: 'tcp', expiresAt: g.expiresAt! }));
  }
}
