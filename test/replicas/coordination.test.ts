// The replicas' coordination on a real PostgreSQL: an activation on one replica wakes another's timer
// (LISTEN/NOTIFY), a replica whose connection is gone is known dead (its intents settle at once), a
// live one is not, and only one replica reconciles at a time (advisory lock).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newGrantId } from '../../src/broker/broker.ts';
import type { Grant, GrantId, TargetId, UserId } from '../../src/domain/index.ts';
import { createLogger } from '../../src/log.ts';
import { openCoordination, type Coordination } from '../../src/store/coordination.ts';
import { openDb, type Db } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { staleThresholds } from '../../src/broker/reconcile.ts';
import { createMemoryAdapter } from '../../src/firewall/memory.ts';
import { AwsSecurityGroupAdapter } from '../../src/firewall/aws-sg.ts';
import { Broker } from '../../src/broker/broker.ts';
import { parseConfig } from '../../src/config/load.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { join } from 'node:path';
import { ROOT } from '../helpers/broker.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { postgresUnavailable, startPostgres, type Postgres } from '../helpers/postgres.ts';

const unavailable = postgresUnavailable();
let pg: Postgres | undefined;
const log = createLogger('silent');

function grant(over: Partial<Grant> = {}): Grant {
  const now = Date.now();
  return { id: newGrantId(), targetId: 'lab-pc' as TargetId, port: 3389, source: '198.51.100.7/32', requester: 'alice' as UserId, requesterEmail: null, reason: 'T-1', durationSeconds: 600, channel: 'api', state: 'opening', closeReason: null, policyIds: [], ruleRef: null, createdAt: now, updatedAt: now, activatedAt: null, expiresAt: now + 600_000, closedAt: null, failure: null, requiredApprovals: 1, ...over };
}

/** One replica's store side: its own pool and coordination connection. */
async function replica(): Promise<{ db: Db; store: Store; coord: Coordination }> {
  const db = await openDb(pg!.url);
  const coord = await openCoordination(pg!.url, log);
  const store = new Store(db);
  store.coordinate(coord);
  return { db, store, coord };
}

before(async () => {
  if (!unavailable) pg = await startPostgres();
});
after(async () => {
  await pg?.stop();
});

test('an activation on one replica reaches the others with its expiry (NOTIFY), delivered at commit', async (t) => {
  if (!requireOrSkip(t, !unavailable, unavailable ?? '')) return;
  const [one, two] = [await replica(), await replica()];
  t.after(async () => {
    for (const r of [one, two]) await r.coord.close().then(() => r.db.close());
  });
  const heard = new Promise<[GrantId, number]>((resolve) => two.coord.onGrantActive((id, exp) => resolve([id, exp])));
  const g = grant();
  await one.store.write((w) => w.insertGrant(g));
  await one.store.write(async (w) => {
    assert.equal(await w.transition(g.id, 'opening', 'active', { ruleRef: 'r1', activatedAt: Date.now() }), true);
  });
  assert.deepEqual(await heard, [g.id, g.expiresAt]);
});

test("a replica that is gone is known dead (its intents settle now); a live one's are left alone", async (t) => {
  if (!requireOrSkip(t, !unavailable, unavailable ?? '')) return;
  const [live, doomed, watcher] = [await replica(), await replica(), await replica()];
  t.after(async () => {
    for (const r of [live, watcher]) await r.coord.close().then(() => r.db.close());
    await doomed.db.close();
  });
  const mine = grant();
  const theirs = grant();
  const unknown = grant();
  await live.store.write((w) => w.insertGrant(mine));
  await doomed.store.write((w) => w.insertGrant(theirs));
  // Written with no coordination (a CLI command): nobody can say, so only the thresholds apply.
  await new Store(watcher.db).write((w) => w.insertGrant(unknown));
  assert.deepEqual([...(await watcher.store.ownedByDeadReplicas([mine.id, theirs.id, unknown.id]))], []);
  await doomed.coord.close();
  assert.deepEqual([...(await watcher.store.ownedByDeadReplicas([mine.id, theirs.id, unknown.id]))], [theirs.id]);
});

test('one reconciler at a time: while one replica holds the lock the others skip, and then may take it', async (t) => {
  if (!requireOrSkip(t, !unavailable, unavailable ?? '')) return;
  const [one, two] = [await replica(), await replica()];
  t.after(async () => {
    for (const r of [one, two]) await r.coord.close().then(() => r.db.close());
  });
  let release!: () => void;
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const holding = one.store.exclusive('reconcile', () => {
    entered();
    return new Promise<string>((r) => (release = () => r('one ran')));
  });
  await inside;
  assert.equal(await two.store.exclusive('reconcile', async () => 'two ran'), undefined, 'skipped while the other reconciles');
  release();
  assert.equal(await holding, 'one ran');
  assert.equal(await two.store.exclusive('reconcile', async () => 'two ran'), 'two ran');
});

test("stale thresholds come from the slowest adapter's worst call (AWS with retries ~133 s), never below the old floors", () => {
  const memory = createMemoryAdapter();
  assert.deepEqual(staleThresholds([memory]), { openingMs: 60_000, closingMs: 10_000 });
  const aws = new AwsSecurityGroupAdapter({ kind: 'aws-security-group', region: 'eu-west-1', securityGroupId: 'sg-0abc' } as never);
  assert.equal(aws.maxCallSeconds, 133);
  assert.deepEqual(staleThresholds([memory, aws]), { openingMs: 163_000, closingMs: 138_000 });
});

test("reconcile at start leaves another live replica's in-flight open alone, and fails it once that replica is gone", async (t) => {
  if (!requireOrSkip(t, !unavailable, unavailable ?? '')) return;
  const [other, starting] = [await replica(), await replica()];
  t.after(async () => {
    await starting.coord.close().then(() => starting.db.close());
    await other.db.close();
  });
  const targets = parseConfig({ oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } }, targets: [{ id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } }] }).targets;
  const broker = new Broker({
    store: starting.store,
    policy: () => loadPolicyEngine({ dir: join(ROOT, 'policies') }),
    firewalls: new Map([['lab-pc', createMemoryAdapter()]]),
    targets,
    log,
    limits: { minDurationSeconds: 60, maxDurationSeconds: 8 * 3600, pendingTimeoutSeconds: 3600, maxActivePerUser: 100, maxSource: { ipv4: 32, ipv6: 128 }, mfaMaxAgeSeconds: 12 * 3600, timeZone: 'UTC' },
  });
  // The other replica has made its opening intent durable and is calling its backend right now.
  const g = grant({ state: 'opening' });
  await other.store.write((w) => w.insertGrant(g));
  const first = await broker.reconcile({ atStart: true });
  assert.equal(first.skipped, undefined);
  assert.equal((await starting.store.getGrant(g.id))!.state, 'opening', 'a live replica\'s intent is not settled at start');
  await other.coord.close();
  await broker.reconcile();
  const after = (await starting.store.getGrant(g.id))!;
  assert.equal(after.state, 'failed', 'the intent of a replica that is gone is settled at once');
  assert.equal(after.failure, 'INTERRUPTED');
});
