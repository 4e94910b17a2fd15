// Races on one grant: extend, revoke, expiry and reconcile started together, hundreds of times,
// over a slow in-memory backend, on SQLite and on PostgreSQL. After each trial no rule exists
// without an active grant, no closed grant has a rule, and every loser got a 409 with a code.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Broker } from '../../src/broker/broker.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Principal, UserId } from '../../src/domain/index.ts';
import { errorBody } from '../../src/http/errors.ts';
import { createMemoryAdapter, type TableFirewall } from '../../src/firewall/memory.ts';
import { createLogger } from '../../src/log.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { openDb, type Db } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { ROOT, tempDir } from '../helpers/broker.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { postgresUnavailable, startPostgres, type Postgres } from '../helpers/postgres.ts';

const TRIALS = 200;
const alice: Principal = { sub: 'alice' as UserId, email: 'alice@example.test', groups: ['engineers'], mfa: true, authTime: Math.floor(Date.now() / 1000), amr: ['pwd', 'otp'] };
const ctx = { channel: 'api' as const, callerIp: '198.51.100.7' };
const jitter = (max: number) => () => Math.random() * max;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function raceSuite(name: string, url: () => Promise<{ url: string; cleanup: () => Promise<void> }>, unavailable?: () => string | undefined) {
  describe(`races on one grant (${name})`, () => {
    const engine = loadPolicyEngine({ dir: join(ROOT, 'policies') });
    const targets = parseConfig({
      oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } },
      targets: [{ id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } }],
    }).targets;
    let skipped: string | undefined;
    let db: Db;
    let store: Store;
    let fw: TableFirewall;
    let broker: Broker;
    let cleanup: (() => Promise<void>) | undefined;

    before(async () => {
      skipped = unavailable?.();
      if (skipped) return;
      const o = await url();
      cleanup = o.cleanup;
      db = await openDb(o.url);
      store = new Store(db);
      fw = createMemoryAdapter();
      broker = new Broker({
        store,
        policy: () => engine,
        firewalls: new Map([['lab-pc', fw]]),
        targets,
        log: createLogger('silent'),
        limits: { minDurationSeconds: 60, maxDurationSeconds: 8 * 3600, pendingTimeoutSeconds: 3600, maxActivePerUser: 5, maxSource: { ipv4: 32, ipv6: 128 }, mfaMaxAgeSeconds: 12 * 3600, timeZone: 'UTC' },
      });
    });
    after(async () => {
      await db?.close();
      await cleanup?.();
    });

    test(`extend, revoke, expiry and reconcile ${TRIALS} times: no rule outlives its grant, no 5xx`, async (t) => {
      if (!requireOrSkip(t, !skipped, skipped ?? '')) return;
      const counts = {
        trials: 0,
        ruleVanishedFirst: 0,
        ruleWithoutActiveGrant: 0,
        closedWithRule: 0,
        fiveHundreds: 0,
        otherRefusals: 0,
        wins: { extend: 0, revoke: 0, expire: 0, reopen: 0 },
        losers409: {} as Record<string, number>,
        endStates: {} as Record<string, number>,
      };
      const problems: string[] = [];
      for (let i = 0; i < TRIALS; i++) {
        fw.slow({ open: 0, close: 0, list: 0 });
        const { grant } = await broker.requestAccess(alice, { target: 'lab-pc', duration: '10m', reason: 'T-1' }, ctx);
        assert.equal(grant.state, 'active');
        // Every other trial the rule has vanished (a flushed backend), so the reconciler's reopen races too.
        if (i % 2 === 1) {
          await fw.close([grant.ruleRef!]);
          counts.ruleVanishedFirst += 1;
        }
        // A backend that takes a few milliseconds a call, each call its own.
        fw.slow({ open: jitter(6), close: jitter(6), list: jitter(3) });
        const ops: [string, () => Promise<unknown>][] = [
          ['extend', () => broker.extend(alice, grant.id, { duration: '5m' }, 'api')],
          ['revoke', () => broker.revoke(alice, grant.id)],
          // Due as far as the reaper is concerned, still running for the extend's own check.
          ['expire', () => broker.expireDue(grant.expiresAt!)],
          ['reconcile', () => broker.reconcile()],
        ];
        const results = await Promise.allSettled(ops.map(async ([what, op]) => {
          // With the rule gone, the reconciler starts first half the time, so that its reopen wins some.
          if (!(what === 'reconcile' && i % 4 === 1)) await sleep(Math.random() * 4);
          return op();
        }));
        results.forEach((r, k) => {
          const op = ops[k]![0];
          if (r.status === 'fulfilled') {
            if (op === 'extend') counts.wins.extend += 1;
            if (op === 'revoke') counts.wins.revoke += 1;
            if (op === 'expire' && r.value === 1) counts.wins.expire += 1;
            if (op === 'reconcile' && (r.value as { reopened: number }).reopened) counts.wins.reopen += 1;
            return;
          }
          const { status, body } = errorBody(r.reason);
          if (status >= 500) {
            counts.fiveHundreds += 1;
            problems.push(`trial ${i}: ${op} answered ${status} ${body.error.code}: ${(r.reason as Error).message}`);
          } else if (status === 409) {
            const key = `${op}:${body.error.code}`;
            counts.losers409[key] = (counts.losers409[key] ?? 0) + 1;
          } else {
            counts.otherRefusals += 1;
            problems.push(`trial ${i}: ${op} answered ${status} ${body.error.code}`);
          }
        });

        // The invariants, checked before anything cleans up.
        fw.slow({ open: 0, close: 0, list: 0 });
        const g = (await store.getGrant(grant.id))!;
        counts.endStates[g.state] = (counts.endStates[g.state] ?? 0) + 1;
        for (const rule of await fw.list()) {
          const owner = await store.getGrant(rule.grantIds[0] as typeof grant.id);
          if (owner?.state !== 'active') {
            counts.ruleWithoutActiveGrant += 1;
            problems.push(`trial ${i}: rule ${rule.ref} of ${rule.grantIds[0]} is open, its grant is ${owner?.state}`);
          }
          if (owner?.state === 'closed') counts.closedWithRule += 1;
        }
        counts.trials += 1;
        if (g.state === 'active') await broker.revoke(alice, grant.id).catch((e) => problems.push(`trial ${i}: clean-up revoke: ${(e as Error).message}`));
        const left = await fw.list();
        if (left.length) {
          problems.push(`trial ${i}: ${left.length} rule(s) left after the clean-up`);
          await fw.close(left.map((r) => r.ref));
        }
      }
      t.diagnostic(`race counts (${name}): ${JSON.stringify(counts)}`);
      console.log(`race counts (${name}):`, JSON.stringify(counts, null, 1));
      assert.deepEqual(problems, []);
      assert.equal(counts.ruleWithoutActiveGrant, 0);
      assert.equal(counts.closedWithRule, 0);
      assert.equal(counts.fiveHundreds, 0);
      assert.equal(counts.trials, TRIALS);
      // The race was real: each competitor won some trials.
      assert.ok(counts.wins.revoke > 0 && counts.wins.extend > 0 && counts.wins.expire > 0, JSON.stringify(counts.wins));
      assert.equal((await store.verifyAudit()).ok, true);
    });
  });
}

raceSuite('SQLite', async () => {
  const tmp = tempDir();
  return { url: `sqlite:${join(tmp.dir, 'race.db')}`, cleanup: async () => tmp.cleanup() };
});

let pg: Postgres | undefined;
raceSuite(
  'PostgreSQL',
  async () => {
    pg = await startPostgres();
    return { url: pg.url, cleanup: () => pg!.stop() };
  },
  postgresUnavailable,
);
