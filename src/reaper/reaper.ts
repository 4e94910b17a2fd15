// Closes grants at expiry: a precise in-process timer per grant, batched per tick, plus a
// node-cron safety sweep that also reconciles and times out pending requests. With several
// replicas every replica arms a timer for every grant (NOTIFY), and the store's claim decides who closes.
import cron from 'node-cron';
import type { Broker } from '../broker/broker.ts';
import type { Grant, GrantId } from '../domain/index.ts';
import { errorFields, type Logger } from '../log.ts';

/** setTimeout's ceiling (~24.8 days); longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Expiries this close together are closed in one batch (one firewall call per backend). */
const BATCH_WINDOW_MS = 20;

export interface ReaperOptions {
  sweep: string;
  log: Logger;
  clock?: () => number;
  /** Observes each expiry's lag (ms after expiresAt that the grant was closed), for metrics. */
  onLag?: (ms: number) => void;
  /** Verifies (and restores) each backend's baseline; first at start and on every sweep. Must not throw. */
  gate?: () => Promise<unknown>;
}

export class Reaper {
  private readonly timers = new Map<GrantId, NodeJS.Timeout>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private task: ReturnType<typeof cron.schedule> | undefined;
  private sweeping = false;
  private stopped = false;
  private readonly clock: () => number;

  constructor(private readonly broker: Broker, private readonly opts: ReaperOptions) {
    this.clock = opts.clock ?? Date.now;
    broker.onActive((g) => this.schedule(g));
    broker.onClosed((g) => {
      this.cancel(g.id);
      if (g.closeReason === 'expired' && g.expiresAt !== null && g.closedAt !== null) opts.onLag?.(g.closedAt - g.expiresAt);
    });
  }

  /** Recovers after a (re)start: settle interrupted grants, then arm timers for all active ones. */
  async start(activeGrants: () => Promise<Grant[]>): Promise<void> {
    if (!cron.validate(this.opts.sweep)) throw new Error(`reaper.sweep "${this.opts.sweep}" is not a cron expression`);
    await this.opts.gate?.();
    await this.broker.reconcile({ atStart: true });
    await this.broker.expireDue();
    for (const g of await activeGrants()) this.schedule(g);
    this.task = cron.schedule(this.opts.sweep, () => void this.sweep(), { noOverlap: true, name: 'portcullis-sweep' });
  }

  schedule(grant: Grant): void {
    if (grant.expiresAt !== null) this.wake(grant.id, grant.expiresAt);
  }

  /**
   * Arms (or re-arms) the timer of a grant expiring at `expiresAt`: this replica's grants, and
   * those another replica activated or extended (told through the store's NOTIFY). Whichever
   * replica's timer fires first claims the grant; the others find nothing due.
   */
  wake(id: GrantId, expiresAt: number): void {
    if (this.stopped) return;
    this.cancel(id);
    const wait = expiresAt - this.clock();
    if (wait <= 0) {
      this.enqueue();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(id);
      if (wait > MAX_TIMER_MS) this.wake(id, expiresAt);
      else this.enqueue();
    }, Math.min(wait, MAX_TIMER_MS));
    t.unref();
    this.timers.set(id, t);
  }

  cancel(id: GrantId): void {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  get scheduled(): number {
    return this.timers.size;
  }

  /** A timer fired: close everything due within the next batch window in one go. */
  private enqueue(): void {
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        this.flushing = this.flushing.then(() => this.flush());
      }, BATCH_WINDOW_MS);
    }
  }

  private async flush(): Promise<void> {
    try {
      // One indexed query for every grant now due, rather than one read per fired timer.
      await this.broker.expireDue();
    } catch (e) {
      // The sweep retries whatever stayed active or closing.
      this.opts.log.warn('expiry batch failed; the sweep will retry', errorFields(e));
    }
  }

  /** The safety net: anything a timer missed, anything stuck, any drift between store and backends. */
  async sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    try {
      // The gate first: a flushed baseline admits everyone until it is back.
      await this.opts.gate?.();
      await this.broker.expireDue();
      await this.broker.expirePending();
      await this.broker.reconcile();
    } catch (e) {
      this.opts.log.warn('sweep failed', errorFields(e));
    } finally {
      this.sweeping = false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.task?.stop();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await this.flushing;
  }
}
