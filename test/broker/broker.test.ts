// The broker core against the in-memory firewall twin: failure paths, sharing, reconcile, fail-closed.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, beforeEach, describe, test } from 'node:test';
import { Broker, type BrokerLimits } from '../../src/broker/broker.ts';
import type { Grant, GrantId, Principal, UserId } from '../../src/domain/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createMemoryAdapter, type TableFirewall } from '../../src/firewall/memory.ts';
import { createLogger } from '../../src/log.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import type { PolicyEngine } from '../../src/policy/port.ts';
import { openDb, type Db } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { ROOT, tempDir, waitFor } from '../helpers/broker.ts';

const limits: BrokerLimits = {
  minDurationSeconds: 1,
  maxDurationSeconds: 8 * 3600,
  pendingTimeoutSeconds: 3600,
  maxActivePerUser: 3,
  maxSource: { ipv4: 32, ipv6: 128 },
  mfaMaxAgeSeconds: 12 * 3600,
  timeZone: 'UTC',
};

const alice: Principal = { sub: 'alice' as UserId, email: 'alice@example.test', groups: ['engineers'], mfa: true, authTime: Math.floor(Date.now() / 1000), amr: ['pwd', 'mfa'] };
const bob: Principal = { ...alice, sub: 'bob' as UserId, email: 'bob@example.test' };
const ctx = { channel: 'api' as const, callerIp: '198.51.100.7' };
const req = { target: 'lab-pc', duration: '10m', reason: 'T-1' };

describe('broker core', () => {
  const tmp = tempDir();
  const engine = loadPolicyEngine({ dir: join(ROOT, 'policies') });
  let db: Db;
  let store: Store;
  let fw: TableFirewall;
  let broker: Broker;
  let policy: PolicyEngine;
  let n = 0;

  const targets = parseConfig({
    oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } },
    targets: [
      { id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } },
      { id: 'prod-dc', tags: { env: 'prod', customer: 'internal' }, firewall: { kind: 'memory' } },
    ],
  }).targets;

  beforeEach(async () => {
    await db?.close();
    db = await openDb(`sqlite:${join(tmp.dir, `b${n++}.db`)}`);
    store = new Store(db);
    fw = createMemoryAdapter();
    policy = engine;
    broker = new Broker({
      store,
      policy: () => policy,
      firewalls: new Map([['lab-pc', fw], ['prod-dc', fw]]),
      targets,
      limits,
      log: createLogger('silent'),
    });
  });
  after(async () => {
    await db?.close();
    tmp.cleanup();
  });

  const types = async (id: string) => (await store.auditEvents({ grant: id })).map((e) => e.type);

  test('a permitted request opens one rule for the caller\'s /32 and records it', async () => {
    const { grant, outcome } = await broker.requestAccess(alice, req, ctx);
    assert.equal(outcome, 'active');
    assert.equal(grant.source, '198.51.100.7/32');
    const rules = await fw.list();
    assert.deepEqual(rules.map((r) => [r.grantIds, r.source, r.port]), [[[grant.id], '198.51.100.7/32', 3389]]);
    assert.equal(grant.ruleRef, rules[0]!.ref);
  });

  test('production for an engineer waits for approval and opens nothing', async () => {
    const { grant, outcome } = await broker.requestAccess(alice, { ...req, target: 'prod-dc' }, ctx);
    assert.equal(outcome, 'pending');
    assert.equal(grant.state, 'pending');
    assert.deepEqual(await fw.list(), []);
    assert.deepEqual(await types(grant.id), ['grant.requested', 'grant.pending']);
  });

  test('a request no policy permits is refused with the reason, recorded as denied, nothing opened', async () => {
    const outsider: Principal = { ...alice, sub: 'eve' as UserId, groups: [] };
    await assert.rejects(broker.requestAccess(outsider, req, ctx), (e: { code: string; message: string }) => e.code === 'POLICY_DENIED' && /no policy permits/.test(e.message));
    const [g] = await store.listGrants();
    assert.equal(g!.state, 'denied');
    assert.deepEqual(await types(g!.id), ['grant.requested', 'grant.denied']);
    assert.deepEqual(await fw.list(), []);
  });

  test('MFA is re-checked by the core: no MFA or a stale MFA sign-in opens nothing', async () => {
    await assert.rejects(broker.requestAccess({ ...alice, mfa: false }, req, ctx), { code: 'MFA_REQUIRED' });
    await assert.rejects(broker.requestAccess({ ...alice, authTime: Math.floor(Date.now() / 1000) - 13 * 3600 }, req, ctx), { code: 'MFA_TOO_OLD' });
    assert.deepEqual(await fw.list(), []);
    assert.deepEqual(await store.listGrants(), []);
  });

  test('fail closed: a policy engine that throws opens nothing', async () => {
    policy = { decide: () => { throw new Error('wasm trap'); }, describe: () => [] };
    await assert.rejects(broker.requestAccess(alice, req, ctx), { code: 'POLICY_UNAVAILABLE' });
    assert.deepEqual(await fw.list(), []);
    assert.deepEqual(await store.listGrants(), []);
  });

  test('fail closed: with the store down nothing opens', async () => {
    await db.close();
    await assert.rejects(broker.requestAccess(alice, req, ctx));
    assert.deepEqual(await fw.list(), []);
    db = await openDb(`sqlite:${join(tmp.dir, `b${n++}.db`)}`);
  });

  test('a firewall that fails to open leaves a failed grant and no rule', async () => {
    fw.inject('open', 'unavailable');
    await assert.rejects(broker.requestAccess(alice, req, ctx), { code: 'FIREWALL_UNAVAILABLE' });
    const [g] = await store.listGrants();
    assert.equal(g!.state, 'failed');
    assert.equal(g!.failure, 'FIREWALL_UNAVAILABLE');
    assert.deepEqual(await fw.list(), []);
    assert.deepEqual(await types(g!.id), ['grant.requested', 'grant.approved', 'rule.opening', 'rule.open_failed', 'grant.failed']);
  });

  test('when the backend cannot even be asked after a failed open, the grant stays opening until the reconciler settles it', async () => {
    fw.inject('open', 'unavailable');
    fw.inject('list', 'unavailable');
    await assert.rejects(broker.requestAccess(alice, req, ctx), { code: 'FIREWALL_UNAVAILABLE' });
    const [g] = await store.listGrants();
    assert.equal(g!.state, 'opening');
    await broker.reconcile({ atStart: true });
    assert.equal((await store.getGrant(g!.id))!.state, 'failed');
  });

  test('a close that fails keeps the grant closing (never closed with its rule in place); the next sweep finishes', async () => {
    const { grant } = await broker.requestAccess(alice, req, ctx);
    fw.inject('close', 'unavailable');
    await assert.rejects(broker.revoke(alice, grant.id), { code: 'FIREWALL_UNAVAILABLE' });
    assert.equal((await store.getGrant(grant.id))!.state, 'closing');
    assert.equal((await fw.list()).length, 1);
    await broker.reconcile({ atStart: true });
    assert.equal((await store.getGrant(grant.id))!.state, 'closed');
    assert.deepEqual(await fw.list(), []);
    assert.ok((await types(grant.id)).includes('rule.close_failed'));
  });

  test('expiry closes many grants with one firewall call per backend', async () => {
    const users = ['u1', 'u2', 'u3'].map((s) => ({ ...alice, sub: s as UserId }));
    for (const u of users) await broker.requestAccess(u, { ...req, duration: '1s' }, ctx);
    assert.equal((await fw.list()).length, 3);
    const before = fw.calls.close;
    const n = await broker.expireDue(Date.now() + 2000);
    assert.equal(n, 3);
    assert.equal(fw.calls.close - before, 1);
    assert.deepEqual(await fw.list(), []);
    for (const g of await store.listGrants()) {
      assert.equal(g.state, 'closed');
      assert.equal(g.closeReason, 'expired');
    }
  });

  test('a rule shared by two live grants stays until the last one ends', async () => {
    const a = await broker.requestAccess(alice, req, ctx);
    const b = await broker.requestAccess(bob, req, ctx);
    // Make both grants hold one backend rule, as AWS does for identical permissions.
    await db.kysely.updateTable('grants').set({ rule_ref: a.grant.ruleRef }).where('id', '=', b.grant.id).execute();
    await fw.close([b.grant.ruleRef!]);
    await broker.revoke(alice, a.grant.id);
    assert.equal((await fw.list()).length, 1, 'still held by bob');
    const closed = (await store.auditEvents({ grant: a.grant.id })).find((e) => e.type === 'rule.closed')!;
    assert.deepEqual(closed.detail, { sharedRuleKept: true });
    await broker.revoke(bob, b.grant.id);
    assert.deepEqual(await fw.list(), []);
  });

  test('reconcile removes a managed rule no live grant explains, and audits it', async () => {
    await fw.open({ grantId: 'g_orphan000000000000' as GrantId, targetId: 'lab-pc', source: '203.0.113.9/32', port: 3389, protocol: 'tcp', expiresAt: Date.now() + 60_000 });
    const { grant } = await broker.requestAccess(alice, req, ctx);
    const r = await broker.reconcile();
    assert.equal(r.orphansRemoved, 1);
    const left = await fw.list();
    assert.deepEqual(left.map((x) => x.grantIds), [[grant.id]]);
    const ev = (await store.auditEvents({ limit: 1000 })).filter((e) => e.type === 'reconcile.orphan_removed');
    assert.equal(ev.length, 1);
    assert.equal(ev[0]!.sourceIp, '203.0.113.9/32');
  });

  test('reconcile reopens the rule of an active grant that vanished from the backend', async () => {
    const { grant } = await broker.requestAccess(alice, req, ctx);
    await fw.close([grant.ruleRef!]);
    const { updatedAt } = (await store.getGrant(grant.id))!;
    await waitFor('a later millisecond', async () => Date.now() > updatedAt);
    const r = await broker.reconcile();
    assert.equal(r.reopened, 1);
    const rules = await fw.list();
    assert.deepEqual(rules.map((x) => x.grantIds), [[grant.id]]);
    const g = (await store.getGrant(grant.id))!;
    assert.equal(g.ruleRef, rules[0]!.ref);
    assert.ok((await types(grant.id)).includes('reconcile.rule_reopened'));
  });

  test('an extend whose backend call fails keeps the grant active with its old expiry; a revoke then closes it', async () => {
    const { grant } = await broker.requestAccess(alice, req, ctx);
    fw.inject('open', 'unavailable');
    await assert.rejects(broker.extend(alice, grant.id, { duration: '5m' }, 'api'), { code: 'FIREWALL_UNAVAILABLE' });
    const g = (await store.getGrant(grant.id))!;
    assert.equal(g.state, 'active');
    assert.equal(g.expiresAt, grant.expiresAt);
    assert.deepEqual((await types(grant.id)).slice(-2), ['grant.extending', 'grant.extend_failed']);
    await broker.revoke(alice, grant.id);
    assert.deepEqual(await fw.list(), []);
  });

  test('while an extend is in flight the reaper leaves the grant alone; a revoke waits for it, then closes', async () => {
    const { grant } = await broker.requestAccess(alice, req, ctx);
    const release = fw.hold('open');
    const extending = broker.extend(alice, grant.id, { duration: '5m' }, 'api');
    await waitFor('the extend intent', async () => (await store.getGrant(grant.id))!.state === 'extending');
    assert.equal(await broker.expireDue(grant.expiresAt! + 1), 0, 'an extending grant is not expired under the call');
    const revoked = broker.revoke(alice, grant.id);
    release();
    const extended = await extending;
    assert.equal(extended.expiresAt, grant.expiresAt! + 300_000);
    assert.equal((await revoked).state, 'closed');
    assert.deepEqual(await fw.list(), []);
  });

  test('an extend a crash interrupted (stale extending) is settled back to active with the stored expiry at start', async () => {
    const { grant } = await broker.requestAccess(alice, req, ctx);
    await db.kysely.updateTable('grants').set({ state: 'extending' }).where('id', '=', grant.id).execute();
    await assert.rejects(broker.extend(alice, grant.id, { duration: '5m' }, 'api'), { code: 'INVALID_STATE' });
    await assert.rejects(broker.revoke(alice, grant.id), { code: 'INVALID_STATE' });
    await broker.reconcile({ atStart: true });
    const g = (await store.getGrant(grant.id))!;
    assert.equal(g.state, 'active');
    assert.equal(g.expiresAt, grant.expiresAt);
    assert.ok((await types(grant.id)).includes('grant.extend_failed'));
  });

  test('the reconciler reopens behind an opening intent: a revoke during the call waits, and no rule is left', async () => {
    const { grant } = await broker.requestAccess(alice, req, ctx);
    await fw.close([grant.ruleRef!]);
    const release = fw.hold('open');
    // The reconciler reopens only grants last changed before its listing began.
    const { updatedAt } = (await store.getGrant(grant.id))!;
    await waitFor('a later millisecond', async () => Date.now() > updatedAt);
    const reconciling = broker.reconcile();
    await waitFor('the reopen intent', async () => (await store.getGrant(grant.id))!.state === 'opening');
    const revoking = broker.revoke(alice, grant.id);
    release();
    const revoked = await revoking;
    assert.equal((await reconciling).reopened, 1);
    assert.equal(revoked.state, 'closed');
    assert.deepEqual(await fw.list(), []);
  });

  test('per-user limit on live grants', async () => {
    for (let i = 0; i < 3; i++) await broker.requestAccess(alice, req, ctx);
    await assert.rejects(broker.requestAccess(alice, req, ctx), { code: 'QUOTA_EXCEEDED' });
    assert.equal((await fw.list()).length, 3);
  });

  test('a pending request nobody decides expires after the pending timeout', async () => {
    const { grant } = await broker.requestAccess(alice, { ...req, target: 'prod-dc' }, ctx);
    assert.equal(await broker.expirePending(Date.now() + 3601_000), 1);
    const g = (await store.getGrant(grant.id)) as Grant;
    assert.equal(g.state, 'expired');
  });

  test('revoking a closed grant is refused; the audit chain stays valid throughout', async () => {
    const { grant } = await broker.requestAccess(alice, req, ctx);
    await broker.revoke(alice, grant.id);
    await assert.rejects(broker.revoke(alice, grant.id), { code: 'INVALID_STATE' });
    assert.equal((await store.verifyAudit()).ok, true);
  });
});
