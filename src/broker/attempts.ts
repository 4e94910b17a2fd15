// Who knocks on the gate: each sweep reads the kernel's per-source attempt counters, turns them into
// deltas, counts them for /metrics, audits one `gate.attempts` summary per window and raises
// `gate.alert` events (a source above the configured rate; attempts on a port while it is open for
// someone else) that the notifier forwards. The kernel counts; the broker only reads and subtracts.
import { hasAttemptCounter, type AttemptCount, type AttemptReading, type FirewallAdapter } from '../firewall/port.ts';
import { errorFields, type Logger } from '../log.ts';
import type { Store } from '../store/store.ts';
import type { Grant } from '../domain/index.ts';
import { cidrContains, parseAddress, parseCidr } from '../net/cidr.ts';

export interface AttemptsSettings {
  /** A `gate.attempts` summary is audited when a window with attempts closes. */
  windowMs: number;
  /** Sources named in each summary (and in /metrics): the busiest ones. */
  top: number;
  /** A source with more attempts per minute than this (over one sweep) raises an alert; 0: never. */
  alertPerMinute: number;
  /** Attempts from other sources on a target and port while a grant holds it open raise an alert. */
  alertOpenWindow: boolean;
}

export interface SourceCount {
  source: string;
  target: string | null;
  port: number;
  protocol: string;
  count: number;
  firstSeen: number;
  lastSeen: number;
}

/** The detail of a `gate.attempts` event: one window's blocked attempts, its busiest sources by name. */
export interface WindowSummary {
  from: string;
  to: string;
  total: number;
  sources: number;
  overflow: number;
  top: AttemptsRow[];
}

/** One source's attempts on one target, protocol and port, with ISO first and last seen. */
export interface AttemptsRow {
  source: string;
  target: string | null;
  port: number;
  protocol: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
}

export interface AttemptsHooks {
  /** New blocked attempts since the last sweep, per target, port and protocol. */
  onAttempts?: (target: string, port: number, protocol: string, n: number) => void;
  /** Packets dropped uncounted because the set was full, since the last sweep. */
  onOverflow?: (backend: string, n: number) => void;
  /** After each sweep: the distinct sources each target's set holds, and the busiest entries of the sets. */
  onSnapshot?: (sources: Map<string, number>, top: SourceCount[]) => void;
}

export interface AttemptsDeps {
  store: Store;
  firewalls: ReadonlyMap<string, FirewallAdapter>;
  log: Logger;
  settings: AttemptsSettings;
  now?: () => number;
  hooks?: AttemptsHooks;
}

const keyOf = (c: Pick<AttemptCount, 'source' | 'destination' | 'protocol' | 'port'>) => `${c.source}|${c.destination}|${c.protocol}|${c.port}`;

export class AttemptWatcher {
  private readonly now: () => number;
  /** Per backend: the counters at the last read, and the overflow counter. */
  private readonly last = new Map<string, { counts: Map<string, number>; overflow: number }>();
  private window: { from: number; sources: Map<string, SourceCount>; overflow: number; alerted: Set<string> };
  private lastSweep: number;

  constructor(private readonly deps: AttemptsDeps) {
    this.now = deps.now ?? Date.now;
    this.lastSweep = this.now();
    this.window = this.freshWindow(this.lastSweep);
  }

  /** Reads every counting backend once; never throws (a backend that fails is read again next sweep). */
  async sweep(): Promise<void> {
    const now = this.now();
    const elapsed = Math.max(1, now - this.lastSweep);
    this.lastSweep = now;
    const backends = new Map<string, FirewallAdapter>();
    for (const fw of this.deps.firewalls.values()) if (hasAttemptCounter(fw)) backends.set(fw.scope, fw);
    const snapshotSources = new Map<string, number>();
    const snapshotTop: SourceCount[] = [];
    for (const [scope, fw] of backends) {
      let reading: AttemptReading;
      try {
        reading = await (fw as unknown as { readAttempts(): Promise<AttemptReading> }).readAttempts();
      } catch (e) {
        this.deps.log.warn('attempts: could not read the counters; next sweep', { backend: scope, ...errorFields(e) });
        continue;
      }
      const fresh = await this.account(scope, reading, now, elapsed);
      for (const c of reading.counts) {
        const t = c.targetId ?? '-';
        snapshotSources.set(t, (snapshotSources.get(t) ?? 0) + 1);
        snapshotTop.push({ source: c.source, target: c.targetId ?? null, port: c.port, protocol: c.protocol, count: c.packets, firstSeen: now, lastSeen: now });
      }
      if (fresh.length > 0) await this.alertOpenWindow(fresh);
    }
    snapshotTop.sort((a, b) => b.count - a.count);
    this.deps.hooks?.onSnapshot?.(snapshotSources, snapshotTop.slice(0, this.deps.settings.top));
    if (now - this.window.from >= this.deps.settings.windowMs) await this.flush(now);
  }

  /** Audits the current window's summary now (at shutdown, or when its time is up), if it saw anything. */
  async flush(now = this.now()): Promise<void> {
    const detail = this.current(now);
    this.window = this.freshWindow(now);
    if (!detail) return;
    await this.deps.store
      .audit({ type: 'gate.attempts', actor: 'system:gate', detail: { ...detail } })
      .catch((e: unknown) => this.deps.log.warn('attempts: could not audit the window summary', errorFields(e)));
  }

  /** The window in progress, shaped as its `gate.attempts` summary will be; undefined while it saw nothing. */
  current(now = this.now()): WindowSummary | undefined {
    const w = this.window;
    if (w.sources.size === 0 && w.overflow === 0) return undefined;
    const all = [...w.sources.values()].sort((a, b) => b.count - a.count || a.firstSeen - b.firstSeen);
    const total = all.reduce((n, s) => n + s.count, 0);
    const top = all.slice(0, this.deps.settings.top).map((s) => ({ ...s, firstSeen: new Date(s.firstSeen).toISOString(), lastSeen: new Date(s.lastSeen).toISOString() }));
    return { from: new Date(w.from).toISOString(), to: new Date(now).toISOString(), total, sources: new Set(all.map((s) => s.source)).size, overflow: w.overflow, top };
  }

  private freshWindow(from: number) {
    return { from, sources: new Map<string, SourceCount>(), overflow: 0, alerted: new Set<string>() };
  }

  /** Deltas since the last read of this backend; the first read of a backend is the baseline (its counts were someone else's to report). */
  private async account(scope: string, r: AttemptReading, now: number, elapsedMs: number): Promise<SourceCount[]> {
    const prev = this.last.get(scope);
    const counts = new Map(r.counts.map((c) => [keyOf(c), c.packets]));
    this.last.set(scope, { counts, overflow: r.overflow });
    if (!prev) return [];
    // A counter smaller than before: the element timed out and came back, or the table was rebuilt.
    const overflow = r.overflow >= prev.overflow ? r.overflow - prev.overflow : r.overflow;
    if (overflow > 0) {
      this.window.overflow += overflow;
      this.deps.hooks?.onOverflow?.(scope, overflow);
    }
    const fresh: SourceCount[] = [];
    for (const c of r.counts) {
      const before = prev.counts.get(keyOf(c)) ?? 0;
      const delta = c.packets >= before ? c.packets - before : c.packets;
      if (delta <= 0) continue;
      const target = c.targetId ?? null;
      this.deps.hooks?.onAttempts?.(target ?? '-', c.port, c.protocol, delta);
      const k = `${c.source}|${target}|${c.protocol}|${c.port}`;
      const s = this.window.sources.get(k) ?? { source: c.source, target, port: c.port, protocol: c.protocol, count: 0, firstSeen: now, lastSeen: now };
      s.count += delta;
      s.lastSeen = now;
      this.window.sources.set(k, s);
      fresh.push({ ...s, count: delta });
      const perMinute = (delta * 60_000) / elapsedMs;
      const rate = this.deps.settings.alertPerMinute;
      if (rate > 0 && perMinute > rate) await this.alert(`rate|${k}`, { kind: 'rate', source: c.source, target, port: c.port, protocol: c.protocol, count: delta, perMinute: Math.round(perMinute), limit: rate });
    }
    return fresh;
  }

  /** Attempts on a target and port that a live grant holds open for someone: brute force aimed at the open window. */
  private async alertOpenWindow(fresh: SourceCount[]): Promise<void> {
    if (!this.deps.settings.alertOpenWindow) return;
    const targets = [...new Set(fresh.map((f) => f.target).filter((t): t is string => t !== null))];
    if (targets.length === 0) return;
    const now = this.now();
    // Grouped by target and port once: each attempt looks at its own window's grants only.
    const live = new Map<string, Grant[]>();
    for (const g of await this.deps.store.grantsInStates(['active'], { targetIds: targets })) {
      if (g.expiresAt !== null && g.expiresAt <= now) continue;
      const key = `${g.targetId}|${g.port}`;
      const list = live.get(key);
      if (list) list.push(g);
      else live.set(key, [g]);
    }
    for (const f of fresh) {
      const open = (live.get(`${f.target}|${f.port}`) ?? []).filter((g) => !covers(g.source, f.source));
      if (open.length === 0) continue;
      await this.alert(`open|${f.source}|${f.target}|${f.protocol}|${f.port}`, {
        kind: 'open-window',
        source: f.source,
        target: f.target,
        port: f.port,
        protocol: f.protocol,
        count: f.count,
        openFor: open.map((g) => ({ grant: g.id, source: g.source })),
      });
    }
  }

  /** One alert per kind, source, target and port per window: a scan that lasts an hour is not a thousand messages. */
  private async alert(key: string, detail: Record<string, unknown> & { source: string; target: string | null; port: number }): Promise<void> {
    if (this.window.alerted.has(key)) return;
    this.window.alerted.add(key);
    this.deps.log.warn('attempts: alert', detail);
    await this.deps.store
      .audit({ type: 'gate.alert', actor: 'system:gate', target: detail.target ?? undefined, sourceIp: detail.source, port: detail.port, detail })
      .catch((e: unknown) => this.deps.log.warn('attempts: could not audit the alert', errorFields(e)));
  }
}

function covers(cidr: string, address: string): boolean {
  const a = parseAddress(address);
  const c = parseCidr(cidr.includes('/') ? cidr : `${cidr}/${cidr.includes(':') ? 128 : 32}`);
  return a !== undefined && c !== undefined && cidrContains(c, a);
}
