// Closes grants at expiry: ONE in-process timer, armed for the store's next expiry, that closes
// every grant then due in one batch; plus a node-cron safety sweep that also reconciles and times
// out pending requests. Memory and timers do not grow with the number of live grants. With several
// replicas every replica arms for the soonest expiry it knows of (its store, and NOTIFY from the
// others), and the store's claim decides who closes.
import cron from 'node-cron';
import type { Broker } from '../broker/broker.ts';
import { errorFields, type Logger } from '../log.ts';

/** setTimeout's ceiling (~24.8 days); longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The least time between two batches: expiries this close together are closed in one (one firewall call per backend). */
export const MIN_BATCH_GAP_MS = 20;
/** After a failed batch (store or firewall down), the next try; the sweep is the backstop. */
export const RETRY_MS = 1000;

/** The timer primitive (tests drive a controlled one). */
export interface ReaperTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: ReaperTimers = {
  set(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clear: (t) => clearTimeout(t as NodeJS.Timeout),
};

export interface ReaperOptions {
  sweep: string;
  log: Logger;
  clock?: () => number;
  timers?: ReaperTimers;
  /** Observes each expiry's lag (ms after expiresAt that the grant was closed), for metrics. */
  onLag?: (ms: number) => void;
  /** Verifies (and restores) each backend's baseline; first at start and on every sweep. Must not throw. */
  gate?: () => Promise<unknown>;
}

export class Reaper {
  private timer: unknown;
  /** The expiry the timer is armed for (epoch ms), undefined when disarmed. */
  private armedFor: number | undefined;
  /** When the last batch ended: the next one starts MIN_BATCH_GAP_MS later at the earliest. */
  private lastBatchEnd = -Infinity;
  /** What the work loop has still to do: a batch (then re-arm), or only re-arm from the store. */
  private wanted: 'batch' | 'refresh' | undefined;
  private working: Promise<void> | undefined;
  /** The soonest wake heard since the work loop last read the store's next expiry. */
  private wokenSinceRead = Infinity;
  private task: ReturnType<typeof cron.schedule> | undefined;
  private sweeping = false;
  private stopped = false;
  private readonly clock: () => number;
  private readonly timers: ReaperTimers;

  constructor(private readonly broker: Broker, private readonly opts: ReaperOptions) {
    this.clock = opts.clock ?? Date.now;
    this.timers = opts.timers ?? realTimers;
    broker.onActive((g, change) => {
      if (g.expiresAt !== null) this.wake(g.expiresAt);
      // Extended: the timer may be armed for its old expiry; re-arm from the store.
      if (change && change.previousExpiresAt !== null && change.previousExpiresAt === this.armedFor) void this.work('refresh');
    });
    broker.onClosed((g) => {
      if (g.closeReason === 'expired' && g.expiresAt !== null && g.closedAt !== null) opts.onLag?.(g.closedAt - g.expiresAt);
      // Closed before its time (revoked, idle): the timer may be armed for it; re-arm from the store.
      if (g.expiresAt !== null && g.expiresAt === this.armedFor) void this.work('refresh');
    });
  }

  /** Recovers after a (re)start: settle interrupted grants, close those already due, arm for the next. */
  async start(): Promise<void> {
    if (!cron.validate(this.opts.sweep)) throw new Error(`reaper.sweep "${this.opts.sweep}" is not a cron expression`);
    await this.opts.gate?.();
    await this.broker.reconcile({ atStart: true });
    await this.broker.expireDue(this.clock());
    this.lastBatchEnd = this.clock();
    await this.work('refresh');
    this.task = cron.schedule(this.opts.sweep, () => void this.sweep(), { noOverlap: true, name: 'portcullis-sweep' });
  }

  /**
   * A grant expires at `expiresAt`: this replica's (activated or extended), or another replica's
   * (told through the store's NOTIFY). Re-arms the timer when that is sooner than it is armed for.
   */
  wake(expiresAt: number): void {
    if (this.stopped) return;
    if (expiresAt < this.wokenSinceRead) this.wokenSinceRead = expiresAt;
    if (this.armedFor === undefined || expiresAt < this.armedFor) this.arm(expiresAt);
  }

  /** The expiry the timer is armed for, or undefined (metrics, tests). */
  get nextWake(): number | undefined {
    return this.armedFor;
  }

  /** Resolves once no batch or re-arm is running (tests with a controlled clock wait on it). */
  async idle(): Promise<void> {
    while (this.working) await this.working;
  }

  /** Arms the one timer for `at` exactly (never before it), and no sooner than the batch gap allows. */
  private arm(at: number): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.armedFor = at;
    const now = this.clock();
    const wait = Math.max(at - now, this.lastBatchEnd + MIN_BATCH_GAP_MS - now, 0);
    this.timer = this.timers.set(() => this.fire(), Math.min(wait, MAX_TIMER_MS));
  }

  private disarm(): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    this.armedFor = undefined;
  }

  private fire(): void {
    this.timer = undefined;
    const at = this.armedFor;
    if (at === undefined || this.stopped) return;
    // A long wait re-arms in steps; a timer that fired a little early waits the rest.
    if (this.clock() < at) return this.arm(at);
    this.armedFor = undefined;
    // A batch is running: once it ends, re-arm from the store, which keeps the gap between batches.
    void this.work(this.working ? 'refresh' : 'batch');
  }

  /**
   * The one work loop: a batch closes every grant due now (the store re-checks expires_at <= now),
   * then the timer is re-armed for the store's next expiry (or a wake heard meanwhile, if sooner).
   */
  private work(kind: 'batch' | 'refresh'): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.wanted = this.wanted === 'batch' || kind === 'batch' ? 'batch' : 'refresh';
    if (this.working) return this.working;
    this.working = (async () => {
      try {
        while (this.wanted && !this.stopped) {
          const batch = this.wanted === 'batch';
          this.wanted = undefined;
          let failed = false;
          if (batch) {
            try {
              await this.broker.expireDue(this.clock());
            } catch (e) {
              failed = true;
              this.opts.log.warn('expiry batch failed; retrying in a second (and on every sweep)', errorFields(e));
            }
            this.lastBatchEnd = this.clock();
          }
          this.wokenSinceRead = Infinity;
          let next: number | null = null;
          try {
            next = await this.broker.nextExpiry();
          } catch (e) {
            failed = true;
            this.opts.log.warn('reaper could not read the next expiry; retrying in a second', errorFields(e));
          }
          if (this.stopped) break;
          let at = Math.min(next ?? Infinity, this.wokenSinceRead);
          if (failed) at = Math.max(at === Infinity ? 0 : at, this.clock() + RETRY_MS);
          if (at === Infinity) this.disarm();
          else this.arm(at);
        }
      } finally {
        this.working = undefined;
      }
    })();
    return this.working;
  }

  /** The safety net: anything the timer missed, anything stuck, any drift between store and backends. */
  async sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    try {
      // The gate first: a flushed baseline admits everyone until it is back.
      await this.opts.gate?.();
      // Through the timer's own loop: never a second batch beside one already closing the same grants.
      await this.work('batch');
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
    this.disarm();
    await this.working;
  }
}
