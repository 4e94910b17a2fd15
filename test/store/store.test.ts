// The store contract, run on SQLite and on a real PostgreSQL server: CAS transitions, queries, the audit chain.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { newGrantId } from '../../src/broker/broker.ts';
import type { Grant, GrantId, TargetId, UserId } from '../../src/domain/index.ts';
import { openDb, type Db } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { tempDir } from '../helpers/broker.ts';
import { postgresUnavailable, startPostgres, type Postgres } from '../helpers/postgres.ts';

function grant(over: Partial<Grant> = {}): Grant {
  const now = Date.now();
  return {
    id: newGrantId(),
    targetId: 'lab-pc' as TargetId,
    port: 3389,
    source: '198.51.100.7/32',
    requester: 'alice' as UserId,
    requesterEmail: 'alice@example.test',
    reason: 'T-1',
    durationSeconds: 600,
    channel: 'api',
    state: 'approved',
    closeReason: null,
    policyIds: ['p1'],
    ruleRef: null,
    createdAt: now,
    updatedAt: now,
    activatedAt: null,
    expiresAt: null,
    closedAt: null,
    failure: null,
    requiredApprovals: 1,
    ...over,
  };
}

function storeSuite(name: string, open: () => Promise<{ db: Db; cleanup: () => Promise<void> }>, unavailable?: () => string | undefined) {
  describe(`store on ${name}`, () => {
    let db: Db;
    let store: Store;
    let cleanup: (() => Promise<void>) | undefined;
    let skipped: string | undefined;

    before(async () => {
      skipped = unavailable?.();
      if (skipped) return;
      const o = await open();
      db = o.db;
      cleanup = o.cleanup;
      store = new Store(db);
    });
    after(async () => {
      await cleanup?.();
    });
    const it = (title: string, fn: () => Promise<void>) =>
      test(title, async (t) => {
        if (!requireOrSkip(t, !skipped, skipped ?? '')) return;
        await fn();
      });

    it('migrations are idempotent: opening an existing store again changes nothing', async () => {
      const tables = await db.kysely.introspection.getTables();
      assert.ok(tables.some((t) => t.name === 'grants'));
      assert.ok(tables.some((t) => t.name === 'audit_events'));
    });

    it('inserts and reads a grant with every field intact', async () => {
      const g = grant({ source: '2001:db8::1/128', policyIds: ['a', 'b'], expiresAt: Date.now() + 1234 });
      await store.write((w) => w.insertGrant(g));
      assert.deepEqual(await store.getGrant(g.id), g);
    });

    it('a compare-and-swap transition succeeds once; a racing one loses', async () => {
      const g = grant();
      await store.write((w) => w.insertGrant(g));
      const results = await Promise.all(
        Array.from({ length: 8 }, () => store.write((w) => w.transition(g.id, 'approved', 'opening', { expiresAt: 42 }))),
      );
      assert.equal(results.filter(Boolean).length, 1);
      const after = await store.getGrant(g.id);
      assert.equal(after!.state, 'opening');
      assert.equal(after!.expiresAt, 42);
      assert.equal(await store.write((w) => w.transition(g.id, 'approved', 'failed')), false);
    });

    it('a failed transaction leaves neither the state change nor its audit event', async () => {
      const g = grant();
      await store.write((w) => w.insertGrant(g));
      const head = (await store.verifyAudit()).lastSeq;
      await assert.rejects(
        store.write(async (w) => {
          await w.transition(g.id, 'approved', 'opening');
          await w.audit({ type: 'rule.opening', actor: 'x', grant: g.id });
          throw new Error('boom');
        }),
        (e: { code?: string }) => e.code === 'STORE_UNAVAILABLE',
      );
      assert.equal((await store.getGrant(g.id))!.state, 'approved');
      assert.equal((await store.verifyAudit()).lastSeq, head);
    });

    it('concurrent writes commit together, and one failing write fails alone', async () => {
      const gs = Array.from({ length: 20 }, () => grant());
      const results = await Promise.allSettled(
        gs.map((g, i) =>
          store.write(async (w) => {
            await w.insertGrant(g);
            await w.audit({ type: 'grant.requested', actor: 'alice', grant: g.id });
            if (i === 7) throw new Error('this one fails');
            return g.id;
          }),
        ),
      );
      assert.deepEqual(results.map((r) => r.status), gs.map((_, i) => (i === 7 ? 'rejected' : 'fulfilled')));
      assert.equal(await store.getGrant(gs[7]!.id), undefined, 'the failed write left nothing');
      for (const [i, g] of gs.entries()) if (i !== 7) assert.ok(await store.getGrant(g.id));
      assert.equal((await store.auditEvents({ grant: gs[7]!.id })).length, 0);
      assert.equal((await store.verifyAudit()).ok, true);
    });

    it('finds due, live and shared grants', async () => {
      const now = Date.now();
      const due = grant({ state: 'active', expiresAt: now - 1, ruleRef: 'r-shared' });
      const later = grant({ state: 'active', expiresAt: now + 60_000, ruleRef: 'r-shared' });
      const closed = grant({ state: 'closed', expiresAt: now - 1, ruleRef: 'r-old' });
      await store.write(async (w) => {
        for (const g of [due, later, closed]) await w.insertGrant(g);
      });
      const dueIds = (await store.dueForExpiry(now)).map((g) => g.id);
      assert.ok(dueIds.includes(due.id));
      assert.ok(!dueIds.includes(later.id) && !dueIds.includes(closed.id));
      assert.deepEqual([...(await store.refsHeldByOthers(['r-shared', 'r-old'], [due.id]))], ['r-shared']);
      assert.deepEqual([...(await store.refsHeldByOthers(['r-shared'], [due.id, later.id]))], []);
      const live = await store.grantsInStates(['active'], { targetIds: ['lab-pc'] });
      assert.ok(live.some((g) => g.id === later.id));
      assert.ok((await store.countLiveForUser('alice' as UserId)) >= 2);
      assert.equal(await store.countLiveForUser('alice' as UserId, 1), 1, 'the quota check counts no further than the quota');
    });

    it('claimDue moves the due active grants to closing in one statement, re-checking the expiry, and only those', async () => {
      const now = Date.now();
      const due = grant({ state: 'active', expiresAt: now });
      const notYet = grant({ state: 'active', expiresAt: now + 1 });
      const extending = grant({ state: 'extending', expiresAt: now - 1 });
      await store.write(async (w) => {
        for (const g of [due, notYet, extending]) await w.insertGrant(g);
      });
      const claimed = await store.write((w) => w.claimDue(now, 10_000));
      const ids = new Set(claimed.map((g) => g.id));
      assert.ok(ids.has(due.id), 'due at its exact expiry');
      assert.ok(!ids.has(notYet.id), 'never before its expiry');
      assert.ok(!ids.has(extending.id), 'an extend in flight is left alone');
      const after = await store.getGrant(due.id);
      assert.equal(after?.state, 'closing');
      assert.equal(after?.closeReason, 'expired');
      assert.equal((await store.getGrant(notYet.id))?.state, 'active');
      assert.deepEqual(await store.write((w) => w.claimDue(now, 10_000)), [], 'a second claim finds nothing');
    });

    it('nextExpiry is the soonest expiry of an active grant only', async () => {
      const soonest = grant({ state: 'active', expiresAt: 1 });
      const closedEarlier = grant({ state: 'closed', expiresAt: 0 });
      await store.write(async (w) => {
        for (const g of [soonest, closedEarlier]) await w.insertGrant(g);
      });
      assert.equal(await store.nextExpiry(), 1);
      await store.write((w) => w.transition(soonest.id, 'active', 'closed', { closeReason: 'revoked', closedAt: Date.now() }));
      assert.ok(((await store.nextExpiry()) ?? Infinity) > 1, 'a closed grant is not waited for');
    });

    it('migration 0007 indexes grants by (target_id, state) and (rule_ref, state); (state, expires_at) serves the reaper', async () => {
      const columns = async (index: string): Promise<string> => {
        if (db.dialect === 'sqlite') {
          const r = await sql<{ name: string }>`select name from pragma_index_info(${index}) order by seqno`.execute(db.kysely);
          return r.rows.map((x) => x.name).join(',');
        }
        const r = await sql<{ indexdef: string }>`select indexdef from pg_indexes where tablename = 'grants' and indexname = ${index}`.execute(db.kysely);
        return /\((.*)\)/.exec(r.rows[0]?.indexdef ?? '')?.[1]?.replace(/\s/g, '') ?? '';
      };
      assert.equal(await columns('grants_target_state'), 'target_id,state');
      assert.equal(await columns('grants_rule_ref_state'), 'rule_ref,state');
      assert.equal(await columns('grants_state_expires'), 'state,expires_at');
      if (db.dialect === 'sqlite') {
        // With many refs SQLite's planner took (state) over (rule_ref) and read every active grant per close.
        const refs = Array.from({ length: 60 }, (_, i) => `r${i}`);
        const held = db.kysely.selectFrom('grants').select(['id', 'rule_ref']).where('rule_ref', 'in', refs).where('state', 'in', ['opening', 'active', 'extending']).compile();
        const heldPlan = await sql<{ detail: string }>`explain query plan ${sql.raw(held.sql.replace(/\?/g, "'x'"))}`.execute(db.kysely);
        assert.match(heldPlan.rows.map((r) => r.detail).join(' '), /grants_rule_ref_state/);
        const plan = await sql<{ detail: string }>`explain query plan select * from grants where target_id in ('lab-pc') and state in ('active', 'closing')`.execute(db.kysely);
        assert.match(plan.rows.map((r) => r.detail).join(' '), /grants_target_state/);
      }
    });

    it('appends audit events as a hash chain that verifies, also under concurrent writers', async () => {
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.audit({ type: 'test.event', actor: `u${i}`, detail: { i } })));
      const v = await store.verifyAudit();
      assert.equal(v.ok, true, JSON.stringify(v.broken));
      assert.equal(v.lastSeq, v.headSeq);
      const seqs = (await store.auditEvents({ limit: 10_000 })).map((e) => e.seq);
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
    });

    it('names the first broken link when an event is altered, and notices removed tail events', async () => {
      const a = await store.audit({ type: 'test.a', actor: 'x', reason: 'original' });
      await store.audit({ type: 'test.b', actor: 'x' });
      const original = (await db.kysely.selectFrom('audit_events').select('body').where('seq', '=', a.seq).executeTakeFirstOrThrow()).body;
      await db.kysely.updateTable('audit_events').set({ body: original.replace('original', 'forged') }).where('seq', '=', a.seq).execute();
      let v = await store.verifyAudit();
      assert.equal(v.ok, false);
      assert.equal(v.broken!.seq, a.seq);
      assert.match(v.broken!.problem, /hash/);
      await db.kysely.updateTable('audit_events').set({ body: original }).where('seq', '=', a.seq).execute();
      assert.equal((await store.verifyAudit()).ok, true);

      const last = (await store.verifyAudit()).lastSeq;
      await db.kysely.deleteFrom('audit_events').where('seq', '=', last).execute();
      v = await store.verifyAudit();
      assert.equal(v.ok, false);
      assert.match(v.broken!.problem, /removed/);
      await sql`select 1`.execute(db.kysely);
    });

    it('lists a requester\'s grants newest first', async () => {
      const bob = 'bob' as UserId;
      const g1 = grant({ requester: bob, createdAt: 1000 });
      const g2 = grant({ requester: bob, createdAt: 2000 });
      await store.write(async (w) => {
        await w.insertGrant(g1);
        await w.insertGrant(g2);
      });
      assert.deepEqual((await store.listGrants({ requester: bob })).map((g) => g.id), [g2.id, g1.id]);
      assert.equal(await store.getGrant('g_nope' as GrantId), undefined);
    });
  });
}

storeSuite('SQLite', async () => {
  const tmp = tempDir();
  const url = `sqlite:${join(tmp.dir, 'store.db')}`;
  (await openDb(url)).close();
  const db = await openDb(url);
  return { db, cleanup: async () => { await db.close(); tmp.cleanup(); } };
});

let pg: Postgres | undefined;
storeSuite(
  'PostgreSQL',
  async () => {
    pg = await startPostgres();
    (await openDb(pg.url)).close();
    const db = await openDb(pg.url);
    return { db, cleanup: async () => { await db.close(); await pg!.stop(); } };
  },
  postgresUnavailable,
);
