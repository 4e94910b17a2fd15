// Lock order on a real PostgreSQL (READ COMMITTED): a batch close racing revokes of its own grants
// never deadlocks, and two approvers approving at once both count (an N-of-N grant opens).
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
import { ROOT } from '../helpers/broker.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { postgresUnavailable, startPostgres, type Postgres } from '../helpers/postgres.ts';

const user = (sub: string, groups: string[]): Principal => ({ sub: sub as UserId, email: `${sub}@example.test`, groups, mfa: true, authTime: Math.floor(Date.now() / 1000), amr: ['pwd', 'otp'] });
const ctx = { channel: 'api' as const, callerIp: '198.51.100.7' };

describe('PostgreSQL lock order', () => {
  const unavailable = postgresUnavailable();
  const engine = loadPolicyEngine({ dir: join(ROOT, 'policies') });
  const targets = parseConfig({
    oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } },
    targets: [
      { id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } },
      { id: 'dc01', tags: { env: 'prod', customer: 'internal', role: 'domain-controller' }, firewall: { kind: 'memory' } },
    ],
  }).targets;
  let pg: Postgres | undefined;
  let db: Db;
  let store: Store;
  let fw: TableFirewall;
  let broker: Broker;

  before(async () => {
    if (unavailable) return;
    pg = await startPostgres();
    db = await openDb(pg.url);
    store = new Store(db);
    fw = createMemoryAdapter();
    broker = new Broker({
      store,
      policy: () => engine,
      firewalls: new Map(targets.map((t) => [t.id, fw])),
      targets,
      log: createLogger('silent'),
      limits: { minDurationSeconds: 60, maxDurationSeconds: 8 * 3600, pendingTimeoutSeconds: 3600, maxActivePerUser: 100, maxSource: { ipv4: 32, ipv6: 128 }, mfaMaxAgeSeconds: 12 * 3600, timeZone: 'UTC' },
    });
  });
  after(async () => {
    await db?.close();
    await pg?.stop();
  });

  test('a batch close and revokes of its grants at once: no deadlock, every grant closed once, no rule left', async (t) => {
    if (!requireOrSkip(t, !unavailable, unavailable ?? '')) return;
    const failures: string[] = [];
    const outcomes: Record<string, number> = {};
    for (let round = 0; round < 5; round++) {
      const grants = [];
      for (let i = 0; i < 30; i++) {
        const u = user(`u${round}-${i}`, ['engineers']);
        grants.push({ u, g: (await broker.requestAccess(u, { target: 'lab-pc', duration: '10m', reason: 'T-1' }, ctx)).grant });
      }
      // The expiry closes all 30 in one transaction while each is revoked in its own, in reverse order.
      const ops = [broker.expireDue(Date.now() + 3600_000), ...grants.reverse().map(({ u, g }) => broker.revoke(u, g.id))];
      for (const r of await Promise.allSettled(ops)) {
        if (r.status === 'fulfilled') {
          outcomes.ok = (outcomes.ok ?? 0) + 1;
          continue;
        }
        const { status, body } = errorBody(r.reason);
        outcomes[body.error.code] = (outcomes[body.error.code] ?? 0) + 1;
        if (status !== 409) failures.push(`${status} ${body.error.code}: ${(r.reason as Error).message} ${String((r.reason as Error).cause ?? '')}`);
      }
      assert.deepEqual(failures, [], `round ${round}`);
      for (const { g } of grants) assert.equal((await store.getGrant(g.id))!.state, 'closed');
      assert.deepEqual(await fw.list(), []);
    }
    t.diagnostic(`outcomes: ${JSON.stringify(outcomes)}`);
    assert.deepEqual(failures, []);
    assert.equal((await store.verifyAudit()).ok, true);
  });

  test('two approvers approving a two-approver grant at the same moment both count: it opens', async (t) => {
    if (!requireOrSkip(t, !unavailable, unavailable ?? '')) return;
    const alice = user('alice', ['engineers']);
    const bob = user('bob', ['approvers']);
    const carol = user('carol', ['approvers']);
    for (const p of [alice, bob, carol]) await broker.noteSignIn(p);
    const states: Record<string, number> = {};
    for (let i = 0; i < 20; i++) {
      const { grant, outcome } = await broker.requestAccess(alice, { target: 'dc01', duration: '1h', reason: 'CHG-1' }, ctx);
      assert.equal(outcome, 'pending');
      assert.equal(grant.requiredApprovals, 2);
      const results = await Promise.allSettled([broker.approve(bob, grant.id, {}, 'api'), broker.approve(carol, grant.id, {}, 'api')]);
      for (const r of results) assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
      const g = (await store.getGrant(grant.id))!;
      states[g.state] = (states[g.state] ?? 0) + 1;
      assert.equal(g.state, 'active', `trial ${i}: both approvals recorded, the grant opened`);
      assert.equal((await store.approvals(grant.id)).length, 2);
      await broker.revoke(alice, grant.id);
    }
    t.diagnostic(`end states: ${JSON.stringify(states)}`);
  });
});
