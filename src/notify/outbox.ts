// The durable outbox: notifications derived from the committed audit trail (a persisted cursor), delivered
// with retries and backoff. It runs beside the core: a slow or absent Slack never holds up a grant.
import type { Kysely } from 'kysely';
import type { AuditEvent } from '../audit/chain.ts';
import { errorFields, type Logger } from '../log.ts';
import { DeliveryError, type Notification, type NotifySink } from './port.ts';

interface OutboxTables {
  notify_cursor: { name: string; seq: number };
  notify_outbox: {
    key: string;
    created_seq: number;
    sink: string;
    grant_id: string | null;
    payload: string;
    state: string; // pending | done | dead
    attempts: number;
    next_at: number;
    last_error: string | null;
    created_at: number;
    done_at: number | null;
  };
}

export interface OutboxDeps {
  db: Kysely<any>;
  /** Committed audit events after `seq`, in order. */
  auditAfter: (seq: number, limit: number) => Promise<AuditEvent[]>;
  /** The newest committed seq: where a fresh cursor starts (history is not replayed to Slack). */
  headSeq: () => Promise<number>;
  sinks: NotifySink[];
  log: Logger;
  clock?: () => number;
  retry?: { baseMs?: number; maxMs?: number; maxAttempts?: number };
  /** How often time-based notifications are looked for (default 15 s). */
  scanEveryMs?: number;
}

export interface OutboxRow {
  key: string;
  sink: string;
  grantId: string | null;
  payload: Record<string, unknown>;
  state: 'pending' | 'done' | 'dead';
  attempts: number;
  lastError: string | null;
}

const CURSOR = 'audit';
/** How long a delivery may take before another replica may try the row again. */
const LEASE_MS = 60_000;
const PAGE = 500;

export class Outbox {
  private readonly db: Kysely<OutboxTables>;
  private readonly clock: () => number;
  private readonly sinks: Map<string, NotifySink>;
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly deps: OutboxDeps) {
    this.db = deps.db as Kysely<OutboxTables>;
    this.clock = deps.clock ?? Date.now;
    this.sinks = new Map(deps.sinks.map((s) => [s.name, s]));
  }

  /** Places the cursor (at the head the first time), then delivers whatever is due. */
  async start(): Promise<void> {
    const head = await this.deps.headSeq();
    await this.db.insertInto('notify_cursor').values({ name: CURSOR, seq: head }).onConflict((oc) => oc.column('name').doNothing()).execute();
    this.stopped = false;
    const every = this.deps.scanEveryMs ?? 15_000;
    this.scanTimer = setInterval(() => this.kick(), every);
    this.scanTimer.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.scanTimer);
    clearTimeout(this.timer);
    await this.running?.catch(() => {});
  }

  /** Something happened (an audit commit, a new row): run a pass soon. Never throws, never waits. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((e) => this.deps.log.warn('notifications: pass failed; will retry', errorFields(e)))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Waits for the current pass (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** A notification not derived from the audit trail (a reply to a slash command). */
  async enqueue(sink: string, n: Notification): Promise<void> {
    await this.insert(sink, n, 0);
    this.kick();
  }

  async rows(filter: { sink?: string; grantId?: string } = {}): Promise<OutboxRow[]> {
    let q = this.db.selectFrom('notify_outbox').selectAll();
    if (filter.sink) q = q.where('sink', '=', filter.sink);
    if (filter.grantId) q = q.where('grant_id', '=', filter.grantId);
    const rows = await q.orderBy('created_seq').orderBy('created_at').orderBy('key').execute();
    return rows.map((r) => ({ key: r.key, sink: r.sink, grantId: r.grant_id, payload: JSON.parse(r.payload), state: r.state as OutboxRow['state'], attempts: Number(r.attempts), lastError: r.last_error }));
  }

  private async insert(sink: string, n: Notification, seq: number): Promise<void> {
    await this.db
      .insertInto('notify_outbox')
      .values({ key: `${sink}|${n.key}`, created_seq: seq, sink, grant_id: n.grantId, payload: JSON.stringify(n.payload), state: 'pending', attempts: 0, next_at: this.clock(), last_error: null, created_at: this.clock(), done_at: null })
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
  }

  private async pass(): Promise<void> {
    await this.derive();
    await this.scan();
    const next = await this.deliverDue();
    clearTimeout(this.timer);
    if (next !== undefined && !this.stopped) {
      this.timer = setTimeout(() => this.kick(), Math.max(10, next - this.clock()));
      this.timer.unref();
    }
  }

  /** Reads events after the cursor and records what they call for; the cursor moves after the rows exist. */
  private async derive(): Promise<void> {
    for (;;) {
      const cur = await this.db.selectFrom('notify_cursor').select('seq').where('name', '=', CURSOR).executeTakeFirst();
      const from = Number(cur?.seq ?? 0);
      const events = await this.deps.auditAfter(from, PAGE);
      if (events.length === 0) return;
      for (const e of events) {
        for (const sink of this.sinks.values()) {
          let out: Notification[];
          try {
            out = await sink.derive(e);
          } catch (err) {
            // A store hiccup: stop here and derive this event again on the next pass.
            this.deps.log.warn('notifications: could not derive; will retry', { sink: sink.name, seq: e.seq, ...errorFields(err) });
            return;
          }
          for (const n of out) await this.insert(sink.name, n, e.seq);
        }
      }
      const last = events[events.length - 1]!.seq;
      await this.db.updateTable('notify_cursor').set({ seq: last }).where('name', '=', CURSOR).where('seq', '=', from).execute();
      if (events.length < PAGE) return;
    }
  }

  private async scan(): Promise<void> {
    for (const sink of this.sinks.values()) {
      if (!sink.scan) continue;
      for (const n of await sink.scan(this.clock())) await this.insert(sink.name, n, 0);
    }
  }

  /** Delivers due rows oldest first; a row that fails holds back the later rows of its grant only. Returns when to look again. */
  private async deliverDue(): Promise<number | undefined> {
    const rows = await this.db.selectFrom('notify_outbox').selectAll().where('state', '=', 'pending').orderBy('created_seq').orderBy('created_at').orderBy('key').limit(1000).execute();
    const held = new Set<string>();
    let next: number | undefined;
    const now = this.clock();
    for (const r of rows) {
      if (this.stopped) return undefined;
      const lane = `${r.sink}|${r.grant_id ?? r.key}`;
      if (held.has(lane)) continue;
      if (Number(r.next_at) > now) {
        held.add(lane);
        next = Math.min(next ?? Infinity, Number(r.next_at));
        continue;
      }
      const sink = this.sinks.get(r.sink);
      if (!sink) continue;
      // A lease (compare-and-swap on next_at): of two replicas, one delivers; a replica that dies
      // mid-delivery leaves the row to be retried once the lease runs out.
      const lease = await this.db.updateTable('notify_outbox').set({ next_at: now + LEASE_MS }).where('key', '=', r.key).where('state', '=', 'pending').where('next_at', '=', Number(r.next_at)).executeTakeFirst();
      if (Number(lease.numUpdatedRows) !== 1) {
        held.add(lane);
        continue;
      }
      try {
        await sink.deliver(JSON.parse(r.payload), r.key);
        await this.db.updateTable('notify_outbox').set({ state: 'done', done_at: this.clock(), attempts: Number(r.attempts) + 1, last_error: null }).where('key', '=', r.key).execute();
      } catch (e) {
        held.add(lane);
        const attempts = Number(r.attempts) + 1;
        const retry = this.deps.retry ?? {};
        const permanent = e instanceof DeliveryError && e.permanent;
        const dead = permanent || attempts >= (retry.maxAttempts ?? 60);
        const backoff = Math.min((retry.baseMs ?? 1000) * 2 ** Math.min(attempts - 1, 20), retry.maxMs ?? 5 * 60_000);
        const wait = e instanceof DeliveryError && e.retryAfterMs !== undefined ? e.retryAfterMs : backoff;
        const at = this.clock() + wait;
        const message = (e as Error).message.slice(0, 300);
        await this.db.updateTable('notify_outbox').set({ state: dead ? 'dead' : 'pending', attempts, next_at: at, last_error: message }).where('key', '=', r.key).execute();
        if (dead) {
          held.delete(lane);
          this.deps.log.warn('notifications: gave up on one', { sink: r.sink, grant: r.grant_id ?? undefined, attempts, error: message });
        } else {
          next = Math.min(next ?? Infinity, at);
        }
      }
    }
    return next;
  }
}
