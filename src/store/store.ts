// Durable state: grants with compare-and-swap transitions, and the audit chain appended in the same transaction.
import { sql, type Kysely, type Transaction } from 'kysely';
import type { AuditEvent, AuditInput } from '../audit/chain.ts';
import { canonicalJson, chainHash, ChainVerifier, type VerifyResult } from '../audit/chain.ts';
import type { Approval, CloseReason, Grant, GrantId, GrantState, Principal, TargetId, UserId } from '../domain/index.ts';
import { PortcullisError } from '../errors.ts';
import type { Db, Dialect } from './db.ts';
import type { AuditEventsTable, Database, GrantsTable } from './schema.ts';

type Exec = Kysely<Database> | Transaction<Database>;

/** The NOTIFY channel of grant activations and extensions: payload `<grant id> <expiresAt ms>`. */
export const GRANT_CHANNEL = 'portcullis_grants';
/** First key of the replicas' session advisory locks `(class, owner)`; a held one means that replica is alive. */
export const OWNER_LOCK_CLASS = 0x50437201;
/** Advisory lock `(class, 1)` held by the replica that is reconciling. */
export const LEADER_LOCK_CLASS = 0x50437202;

export type GrantPatch = Partial<
  Pick<Grant, 'closeReason' | 'policyIds' | 'ruleRef' | 'activatedAt' | 'expiresAt' | 'closedAt' | 'failure' | 'durationSeconds'>
>;

/** The operations a use case may do inside one transaction. */
export interface Writer {
  insertGrant(grant: Grant): Promise<void>;
  /**
   * Moves `id` from one of `from` to `to`; false when its state was not one of `from` (someone else won).
   * `expect` also requires the stored expiry or rule ref to be that one (a decision computed from it).
   */
  transition(id: GrantId, from: GrantState | readonly GrantState[], to: GrantState, patch?: GrantPatch, expect?: { expiresAt?: number | null; ruleRef?: string | null }): Promise<boolean>;
  getGrant(id: GrantId): Promise<Grant | undefined>;
  /** Reads the grant and, on PostgreSQL, locks its row until commit (decisions that count rows of it). */
  lockGrant(id: GrantId): Promise<Grant | undefined>;
  audit(event: AuditInput): Promise<AuditEvent>;
  /** Records one approver's decision; false when that approver already decided this grant. */
  addApproval(a: Approval): Promise<boolean>;
  approvals(id: GrantId): Promise<Approval[]>;
  /**
   * Moves up to `limit` active grants due at `now` (expires_at <= now, re-checked in the statement)
   * to `closing` (reason expired) in one statement and returns them as claimed. On PostgreSQL it
   * skips rows another transaction holds (`FOR UPDATE SKIP LOCKED`): whichever replica runs it
   * first owns those closes. SQLite has one writer.
   */
  claimDue(now: number, limit: number): Promise<Grant[]>;
}

/** What the store needs of the replicas' coordination (src/store/coordination.ts). */
export interface Coordinator {
  /** This replica's owner id, written into each grant it moves. */
  readonly owner: string;
  /** Runs `fn` unless another replica is running one of that name; undefined when skipped. */
  exclusive<T>(name: 'reconcile', fn: () => Promise<T>): Promise<T | undefined>;
}

export type AuditListener = (events: AuditEvent[]) => void;
/** Told when an audit listener throws: the events are committed (the store is the source of truth), only the listener missed them. */
export type ListenerFailure = (error: unknown, events: AuditEvent[]) => void;

interface QueuedWrite {
  fn: (w: Writer) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Most writes grouped into one SQLite transaction; bounds how long one commit holds the writer. */
const MAX_GROUP = 64;

export class Store {
  readonly dialect: Dialect;
  private readonly db: Kysely<Database>;
  private readonly listeners: AuditListener[] = [];
  private readonly failureHandlers: ListenerFailure[] = [];
  /** Audit listener calls that threw, since start (metrics). */
  listenerFailures = 0;
  private readonly queue: QueuedWrite[] = [];
  private draining = false;
  private readonly clock: () => number;
  private coordinator: Coordinator | undefined;

  constructor(db: Db, clock: () => number = Date.now) {
    this.db = db.kysely;
    this.dialect = db.dialect;
    this.clock = clock;
  }

  /** Several replicas: stamp each transition with this replica's owner id, and run reconciles one at a time. */
  coordinate(c: Coordinator): void {
    this.coordinator = c;
  }

  /** This replica's owner id when coordinated with others (PostgreSQL serve), else undefined. */
  get owner(): string | undefined {
    return this.coordinator?.owner;
  }

  /** Runs `fn` unless another replica runs one of that name now (no coordination: always runs). */
  async exclusive<T>(name: 'reconcile', fn: () => Promise<T>): Promise<T | undefined> {
    return this.coordinator ? this.coordinator.exclusive(name, fn) : fn();
  }

  /**
   * Of `ids`, those whose last transition was made by a replica that is gone (its session lock on
   * PostgreSQL released): its intents there can be settled now. Unknown owners (none recorded, or
   * SQLite) are never reported: the caller falls back to waiting out the stale threshold.
   */
  async ownedByDeadReplicas(ids: readonly GrantId[]): Promise<Set<GrantId>> {
    if (this.dialect !== 'postgres' || ids.length === 0) return new Set();
    const live = await sql<{ objid: number }>`select objid::text::bigint as objid from pg_locks where locktype = 'advisory' and classid = ${OWNER_LOCK_CLASS} and objsubid = 2 and granted and database = (select oid from pg_database where datname = current_database())`.execute(this.db);
    const alive = new Set(live.rows.map((r) => String(r.objid)));
    const dead = new Set<GrantId>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db.selectFrom('grants').select(['id', 'claimed_by']).where('id', 'in', ids.slice(i, i + 500) as string[]).where('claimed_by', 'is not', null).execute();
      for (const r of rows) if (r.claimed_by && !alive.has(r.claimed_by)) dead.add(r.id as GrantId);
    }
    return dead;
  }

  /** Called with each committed batch of audit events, in order (JSONL sink, metrics, notifications). */
  onAudit(listener: AuditListener): void {
    this.listeners.push(listener);
  }

  /** Called when a listener throws; the listener is expected to catch up from the store later (JsonlSink does). */
  onListenerFailure(handler: ListenerFailure): void {
    this.failureHandlers.push(handler);
  }

  /**
   * Runs `fn` in a transaction and resolves once it is committed. On SQLite, writes that arrive
   * while one is committing are grouped into the next transaction (group commit: one commit for
   * many requests; SQLite has one writer anyway). `fn` must keep its effects inside the Writer:
   * when a grouped transaction fails, each `fn` of the group is run again on its own.
   */
  write<T>(fn: (w: Writer) => Promise<T>): Promise<T> {
    if (this.dialect !== 'sqlite') return this.writeOne(fn);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve, reject } as QueuedWrite);
      if (!this.draining) void this.drain();
    });
  }

  private async writeOne<T>(fn: (w: Writer) => Promise<T>): Promise<T> {
    const appended: AuditEvent[] = [];
    let result: T;
    try {
      result = await this.db.transaction().execute(async (tx) => {
        const w = this.writer(tx, appended);
        // One lock order everywhere: the audit head first, then grant rows. Taking the head at the
        // first audit event instead (mid-loop over grants) let a batch close and a revoke deadlock.
        if (this.dialect === 'postgres') await w.lockHead();
        const r = await fn(w);
        await w.flush();
        return r;
      });
    } catch (e) {
      if (e instanceof PortcullisError) throw e;
      throw new PortcullisError('STORE_UNAVAILABLE', 'the store could not record the change', { cause: e });
    }
    this.emit(appended);
    return result;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0, MAX_GROUP);
        if (group.length === 1) {
          await this.writeOne(group[0]!.fn).then(group[0]!.resolve, group[0]!.reject);
          continue;
        }
        const appended: AuditEvent[] = [];
        let results: unknown[];
        try {
          results = await this.db.transaction().execute(async (tx) => {
            const w = this.writer(tx, appended);
            const out: unknown[] = [];
            for (const op of group) out.push(await op.fn(w));
            await w.flush();
            return out;
          });
        } catch {
          // Someone's write failed: undo the group and give each its own transaction, so only
          // the failing one fails.
          for (const op of group) await this.writeOne(op.fn).then(op.resolve, op.reject);
          continue;
        }
        this.emit(appended);
        group.forEach((op, i) => op.resolve(results[i]));
      }
    } finally {
      this.draining = false;
    }
  }

  /** Tells the listeners of committed events. A listener that throws never fails the write or the drain. */
  private emit(events: AuditEvent[]): void {
    if (events.length === 0) return;
    for (const l of this.listeners) {
      try {
        l(events);
      } catch (e) {
        this.listenerFailures += 1;
        for (const h of this.failureHandlers) {
          try {
            h(e, events);
          } catch {
            // a failing failure handler must not take the drain down either
          }
        }
      }
    }
  }

  /** Appends audit events with no state change (sign-ins, refused tokens). */
  async audit(event: AuditInput): Promise<AuditEvent> {
    return this.write((w) => w.audit(event));
  }

  private writer(tx: Transaction<Database>, appended: AuditEvent[]): Writer & { flush(): Promise<void>; lockHead(): Promise<void> } {
    const owner = (): { claimed_by?: string } => (this.coordinator ? { claimed_by: this.coordinator.owner } : {});
    let head: { seq: number; hash: string; first: number } | undefined;
    /** Reads the chain head once per transaction (on PostgreSQL: and locks it until commit). */
    const lockHead = async () => {
      if (head) return;
      let q = tx.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1);
      if (this.dialect === 'postgres') q = q.forUpdate();
      const row = await q.executeTakeFirstOrThrow();
      head = { seq: Number(row.seq), hash: row.hash, first: Number(row.seq) };
    };
    // Events are hashed as they come and inserted together at the end of the transaction.
    const rows: AuditEventsTable[] = [];
    return {
      lockHead,
      /** Inserts the transaction's events and moves the chain head once (compare-and-swap). */
      flush: async () => {
        if (rows.length === 0 || !head) return;
        for (let i = 0; i < rows.length; i += 200) await tx.insertInto('audit_events').values(rows.slice(i, i + 200)).execute();
        const upd = await tx.updateTable('audit_head').set({ seq: head.seq, hash: head.hash }).where('id', '=', 1).where('seq', '=', head.first).executeTakeFirst();
        if (Number(upd.numUpdatedRows) !== 1) throw new PortcullisError('CONFLICT', 'audit chain head moved; retry');
      },
      insertGrant: async (g) => {
        await tx.insertInto('grants').values({ ...toRow(g), ...owner() }).execute();
      },
      transition: async (id, from, to, patch = {}, expect = {}) => {
        const froms = typeof from === 'string' ? [from] : [...from];
        let q = tx
          .updateTable('grants')
          .set({ state: to, updated_at: this.clock(), ...patchRow(patch), ...owner() })
          .where('id', '=', id)
          .where('state', 'in', froms);
        if (expect.expiresAt !== undefined) q = expect.expiresAt === null ? q.where('expires_at', 'is', null) : q.where('expires_at', '=', expect.expiresAt);
        if (expect.ruleRef !== undefined) q = expect.ruleRef === null ? q.where('rule_ref', 'is', null) : q.where('rule_ref', '=', expect.ruleRef);
        const res = await q.executeTakeFirst();
        const moved = Number(res.numUpdatedRows) === 1;
        // Other replicas arm their expiry timers from this (delivered at commit, not before).
        if (moved && to === 'active' && this.dialect === 'postgres') {
          await sql`select pg_notify(${GRANT_CHANNEL}, ${id} || ' ' || coalesce((select expires_at from grants where id = ${id})::text, ''))`.execute(tx);
        }
        return moved;
      },
      claimDue: async (now, limit) => {
        const lock = this.dialect === 'postgres' ? sql` for update skip locked` : sql``;
        const res = await sql<GrantsTable>`update grants set state = 'closing', close_reason = 'expired', updated_at = ${this.clock()}, claimed_by = ${this.coordinator?.owner ?? null}
          where id in (select id from grants where state = 'active' and expires_at <= ${now} order by expires_at limit ${limit}${lock})
          returning *`.execute(tx);
        return res.rows.map(fromRow).sort((a, b) => (a.expiresAt ?? 0) - (b.expiresAt ?? 0));
      },
      getGrant: (id) => this.getGrant(id, tx),
      lockGrant: async (id) => {
        let q = tx.selectFrom('grants').selectAll().where('id', '=', id);
        if (this.dialect === 'postgres') q = q.forUpdate();
        const row = await q.executeTakeFirst();
        return row ? fromRow(row) : undefined;
      },
      addApproval: async (a) => {
        const exists = await tx.selectFrom('approvals').select('approver').where('grant_id', '=', a.grantId).where('approver', '=', a.approver).executeTakeFirst();
        if (exists) return false;
        await tx.insertInto('approvals').values({ grant_id: a.grantId, approver: a.approver, decision: a.decision, comment: a.comment, policy_ids: JSON.stringify(a.policyIds), created_at: a.createdAt }).execute();
        return true;
      },
      approvals: (id) => this.approvals(id, tx),
      audit: async (input) => {
        // The head is read once per transaction, then carried along.
        await lockHead();
        const prev = head!;
        const seq = Number(prev.seq) + 1;
        const now = this.clock();
        const { hash: _ignored, ...clean } = input as AuditInput & { hash?: unknown };
        const bodyObj = { ...clean, seq, time: new Date(now).toISOString(), prevHash: prev.hash };
        const body = canonicalJson(bodyObj);
        const hash = chainHash(prev.hash, body);
        rows.push({ seq, time: now, type: input.type, grant_id: input.grant ?? null, body, prev_hash: prev.hash, hash });
        head = { seq, hash, first: prev.first };
        const event = { ...(JSON.parse(body) as Omit<AuditEvent, 'hash'>), hash };
        appended.push(event);
        return event;
      },
    };
  }

  async getGrant(id: GrantId, exec: Exec = this.db): Promise<Grant | undefined> {
    const row = await exec.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? fromRow(row) : undefined;
  }

  async listGrants(filter: { requester?: UserId; states?: readonly GrantState[]; targetId?: TargetId; limit?: number } = {}): Promise<Grant[]> {
    let q = this.db.selectFrom('grants').selectAll();
    if (filter.requester) q = q.where('requester', '=', filter.requester);
    if (filter.states) q = q.where('state', 'in', [...filter.states]);
    if (filter.targetId) q = q.where('target_id', '=', filter.targetId);
    const rows = await q.orderBy('created_at', 'desc').orderBy('id').limit(filter.limit ?? 1000).execute();
    return rows.map(fromRow);
  }

  /** Active grants whose expiry is at or before `now`, soonest first. */
  async dueForExpiry(now: number, limit = 5000): Promise<Grant[]> {
    const rows = await this.db
      .selectFrom('grants')
      .selectAll()
      .where('state', '=', 'active')
      .where('expires_at', '<=', now)
      .orderBy('expires_at')
      .limit(limit)
      .execute();
    return rows.map(fromRow);
  }

  async countByState(): Promise<Record<string, number>> {
    const rows = await this.db.selectFrom('grants').select(['state', sql<number>`count(*)`.as('n')]).groupBy('state').execute();
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  }

  /** Live grants of a user; with `atMost`, counting stops there (the quota check needs no more, and stays O(quota)). */
  async countLiveForUser(requester: UserId, atMost?: number): Promise<number> {
    let live = this.db
      .selectFrom('grants')
      .select(sql<number>`1`.as('one'))
      .where('requester', '=', requester)
      .where('state', 'in', ['pending', 'approved', 'opening', 'active', 'extending']);
    if (atMost !== undefined) live = live.limit(atMost);
    const row = await this.db.selectFrom(live.as('live')).select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * The soonest expiry of an active grant (epoch ms), or null when none is active: the reaper arms
   * its one timer for it. One read of the (state, expires_at) index.
   */
  async nextExpiry(): Promise<number | null> {
    const row = await this.db
      .selectFrom('grants')
      .select('expires_at')
      .where('state', '=', 'active')
      .where('expires_at', 'is not', null)
      .orderBy('expires_at')
      .limit(1)
      .executeTakeFirst();
    return row?.expires_at == null ? null : Number(row.expires_at);
  }

  /**
   * Grants in `states`, optionally only those last changed before `updatedBefore`, oldest first.
   * Every matching grant unless `limit` is given, never silently capped: the reconciler takes a
   * rule that no returned grant explains for an orphan and removes it.
   */
  async grantsInStates(states: readonly GrantState[], opts: { targetIds?: string[]; updatedBefore?: number; limit?: number } = {}): Promise<Grant[]> {
    let q = this.db.selectFrom('grants').selectAll().where('state', 'in', [...states]);
    if (opts.targetIds) q = q.where('target_id', 'in', opts.targetIds.length ? opts.targetIds : ['']);
    if (opts.updatedBefore !== undefined) q = q.where('updated_at', '<', opts.updatedBefore);
    q = q.orderBy('created_at').orderBy('id');
    if (opts.limit !== undefined) q = q.limit(opts.limit);
    return (await q.execute()).map(fromRow);
  }

  /** Ids of live grants outside `exclude` that hold one of `refs` (rules shared by identical grants). */
  async refsHeldByOthers(refs: string[], exclude: string[]): Promise<Set<string>> {
    if (refs.length === 0) return new Set();
    const held = new Set<string>();
    const excluded = new Set(exclude);
    for (let i = 0; i < refs.length; i += 500) {
      const rows = await this.db
        .selectFrom('grants')
        .select(['id', 'rule_ref'])
        .where('rule_ref', 'in', refs.slice(i, i + 500))
        .where('state', 'in', ['opening', 'active', 'extending'])
        .execute();
      for (const r of rows) if (!excluded.has(r.id) && r.rule_ref) held.add(r.rule_ref);
    }
    return held;
  }

  async approvals(id: GrantId, exec: Exec = this.db): Promise<Approval[]> {
    const rows = await exec.selectFrom('approvals').selectAll().where('grant_id', '=', id).orderBy('created_at').execute();
    return rows.map((r) => ({ grantId: r.grant_id as GrantId, approver: r.approver as UserId, decision: r.decision as Approval['decision'], comment: r.comment, policyIds: JSON.parse(r.policy_ids) as string[], createdAt: Number(r.created_at) }));
  }

  /** Remembers the newest sign-in of a user (by auth_time): re-checks at approval use it. */
  async rememberUser(p: Principal, now: number): Promise<void> {
    const principal = JSON.stringify({ sub: p.sub, email: p.email, name: p.name, groups: p.groups, mfa: p.mfa, authTime: p.authTime, amr: p.amr, acr: p.acr });
    const authTime = p.authTime ?? null;
    const res = await this.db
      .updateTable('users')
      .set({ principal, auth_time: authTime, updated_at: now })
      .where('sub', '=', p.sub)
      .where((eb) => eb.or([eb('auth_time', 'is', null), eb('auth_time', '<=', authTime ?? 0)]))
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) {
      await this.db.insertInto('users').values({ sub: p.sub, principal, auth_time: authTime, updated_at: now }).onConflict((oc) => oc.column('sub').doNothing()).execute();
    }
  }

  async knownUser(sub: UserId): Promise<Principal | undefined> {
    const row = await this.db.selectFrom('users').select('principal').where('sub', '=', sub).executeTakeFirst();
    return row ? (JSON.parse(row.principal) as Principal) : undefined;
  }

  /** Reads the chain in pages and checks every link. */
  async verifyAudit(): Promise<VerifyResult & { headSeq: number }> {
    const verifier = new ChainVerifier();
    let after = 0;
    for (;;) {
      const rows = await this.db.selectFrom('audit_events').select(['seq', 'body', 'hash', 'prev_hash']).where('seq', '>', after).orderBy('seq').limit(2000).execute();
      if (rows.length === 0) break;
      for (const r of rows) {
        let event: AuditEvent;
        try {
          event = { ...(JSON.parse(r.body) as Omit<AuditEvent, 'hash'>), hash: r.hash };
        } catch {
          verifier.broken = { seq: Number(r.seq), problem: 'event body is not JSON' };
          break;
        }
        if (Number(event.seq) !== Number(r.seq)) {
          verifier.broken = { seq: Number(r.seq), problem: `stored seq ${r.seq} differs from the hashed seq ${event.seq}` };
        }
        if (!verifier.push(event)) break;
      }
      if (verifier.broken) break;
      after = Number(rows[rows.length - 1]!.seq);
    }
    const head = await this.db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirstOrThrow();
    const result = verifier.result();
    if (result.ok && (Number(head.seq) !== result.lastSeq || head.hash !== result.lastHash)) {
      return { ...result, ok: false, broken: { seq: result.lastSeq + 1, problem: `chain ends at seq ${result.lastSeq} but the head says ${head.seq}: events were removed` }, headSeq: Number(head.seq) };
    }
    return { ...result, headSeq: Number(head.seq) };
  }

  /** Events after `afterSeq` in seq order; `type` and `fromTime` (epoch ms, inclusive) are filtered by the database. */
  async auditEvents(filter: { afterSeq?: number; grant?: string | undefined; type?: string | undefined; fromTime?: number | undefined; limit?: number } = {}): Promise<AuditEvent[]> {
    let q = this.db.selectFrom('audit_events').select(['body', 'hash']).where('seq', '>', filter.afterSeq ?? 0);
    if (filter.grant) q = q.where('grant_id', '=', filter.grant);
    if (filter.type) q = q.where('type', '=', filter.type);
    if (filter.fromTime !== undefined) q = q.where('time', '>=', filter.fromTime);
    const rows = await q.orderBy('seq').limit(filter.limit ?? 1000).execute();
    return rows.map((r) => ({ ...(JSON.parse(r.body) as Omit<AuditEvent, 'hash'>), hash: r.hash }));
  }

  /** Liveness of the store for /readyz. */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }
}

function toRow(g: Grant): GrantsTable {
  return {
    id: g.id,
    target_id: g.targetId,
    port: g.port,
    source: g.source,
    requester: g.requester,
    requester_email: g.requesterEmail,
    reason: g.reason,
    duration_seconds: g.durationSeconds,
    channel: g.channel,
    state: g.state,
    close_reason: g.closeReason,
    policy_ids: JSON.stringify(g.policyIds),
    rule_ref: g.ruleRef,
    created_at: g.createdAt,
    updated_at: g.updatedAt,
    activated_at: g.activatedAt,
    expires_at: g.expiresAt,
    closed_at: g.closedAt,
    failure: g.failure,
    required_approvals: g.requiredApprovals,
    caller_ip: g.callerIp ?? null,
  };
}

function patchRow(p: GrantPatch): Partial<GrantsTable> {
  const out: Partial<GrantsTable> = {};
  if (p.closeReason !== undefined) out.close_reason = p.closeReason;
  if (p.policyIds !== undefined) out.policy_ids = JSON.stringify(p.policyIds);
  if (p.ruleRef !== undefined) out.rule_ref = p.ruleRef;
  if (p.activatedAt !== undefined) out.activated_at = p.activatedAt;
  if (p.expiresAt !== undefined) out.expires_at = p.expiresAt;
  if (p.closedAt !== undefined) out.closed_at = p.closedAt;
  if (p.failure !== undefined) out.failure = p.failure;
  if (p.durationSeconds !== undefined) out.duration_seconds = p.durationSeconds;
  return out;
}

function fromRow(r: GrantsTable): Grant {
  const num = (v: number | null) => (v === null ? null : Number(v));
  return {
    id: r.id as GrantId,
    targetId: r.target_id as TargetId,
    port: Number(r.port),
    source: r.source,
    requester: r.requester as UserId,
    requesterEmail: r.requester_email,
    reason: r.reason,
    durationSeconds: Number(r.duration_seconds),
    channel: r.channel as Grant['channel'],
    state: r.state as GrantState,
    closeReason: r.close_reason as CloseReason | null,
    policyIds: JSON.parse(r.policy_ids) as string[],
    ruleRef: r.rule_ref,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    activatedAt: num(r.activated_at),
    expiresAt: num(r.expires_at),
    closedAt: num(r.closed_at),
    failure: r.failure,
    requiredApprovals: Number(r.required_approvals ?? 1),
    ...(r.caller_ip ? { callerIp: r.caller_ip } : {}),
  };
}
