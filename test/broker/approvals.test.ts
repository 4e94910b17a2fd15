// The approval workflow with the example policies: approve, deny, N-of-M, timeout, self-approval,
// re-checks at approval, and extend re-checked against policy.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, beforeEach, describe, test } from 'node:test';
import { Broker } from '../../src/broker/broker.ts';
import type { Principal, UserId } from '../../src/domain/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createMemoryAdapter, type TableFirewall } from '../../src/firewall/memory.ts';
import { createLogger } from '../../src/log.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { openDb, type Db } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { ROOT, tempDir } from '../helpers/broker.ts';

const now = () => Math.floor(Date.now() / 1000);
const user = (sub: string, groups: string[], extra: Partial<Principal> = {}): Principal => ({ sub: sub as UserId, email: `${sub}@example.test`, groups, mfa: true, authTime: now(), amr: ['pwd', 'otp'], ...extra });
const alice = user('alice', ['engineers']);
const bob = user('bob', ['approvers', 'engineers']);
const carol = user('carol', ['approvers']);
const ctx = { channel: 'api' as const, callerIp: '198.51.100.7' };

describe('approval workflow', () => {
  const tmp = tempDir();
  const engine = loadPolicyEngine({ dir: join(ROOT, 'policies') });
  const targets = parseConfig({
    oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } },
    targets: [
      { id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } },
      { id: 'prod-app', tags: { env: 'prod', customer: 'internal' }, firewall: { kind: 'memory' } },
      { id: 'dc01', tags: { env: 'prod', customer: 'internal', role: 'domain-controller' }, firewall: { kind: 'memory' } },
    ],
  }).targets;
  let db: Db;
  let store: Store;
  let fw: TableFirewall;
  let broker: Broker;
  let n = 0;

  beforeEach(async () => {
    await db?.close();
    db = await openDb(`sqlite:${join(tmp.dir, `a${n++}.db`)}`);
    store = new Store(db);
    fw = createMemoryAdapter();
    broker = new Broker({
      store,
      policy: () => engine,
      firewalls: new Map(targets.map((t) => [t.id, fw])),
      targets,
      log: createLogger('silent'),
      limits: { minDurationSeconds: 60, maxDurationSeconds: 8 * 3600, pendingTimeoutSeconds: 3600, maxActivePerUser: 10, maxSource: { ipv4: 32, ipv6: 128 }, mfaMaxAgeSeconds: 12 * 3600, timeZone: 'UTC' },
    });
    for (const p of [alice, bob, carol]) await broker.noteSignIn(p);
  });
  after(async () => {
    await db?.close();
    tmp.cleanup();
  });

  const events = async (id: string) => (await store.auditEvents({ grant: id })).map((e) => e.type);
  const pending = async (target = 'prod-app', who = alice) => {
    const r = await broker.requestAccess(who, { target, duration: '1h', reason: 'CHG-1' }, ctx);
    assert.equal(r.outcome, 'pending');
    return r.grant;
  };

  test('an approver approves: the grant opens, and the audit names who and which policies', async () => {
    const g = await pending();
    const opened = await broker.approve(bob, g.id, { comment: 'looks fine' }, 'web');
    assert.equal(opened.state, 'active');
    assert.equal((await fw.list()).length, 1);
    const all = await store.auditEvents({ grant: g.id });
    assert.deepEqual(all.map((e) => e.type), ['grant.requested', 'grant.pending', 'grant.approval_recorded', 'grant.approved', 'rule.opening', 'rule.opened']);
    const approved = all.find((e) => e.type === 'grant.approved')!;
    assert.equal(approved.actor, 'bob');
    assert.deepEqual(approved.policyIds, ['it-team/approvers-approve-internal']);
    assert.equal(all.find((e) => e.type === 'grant.approval_recorded')!.reason, 'looks fine');
  });

  test('an approver denies with a comment: nothing opens', async () => {
    const g = await pending();
    const denied = await broker.deny(carol, g.id, { comment: 'no change ticket' }, 'web');
    assert.equal(denied.state, 'denied');
    assert.deepEqual(await fw.list(), []);
    await assert.rejects(broker.approve(bob, g.id, {}, 'web'), { code: 'INVALID_STATE' });
    const d = (await store.auditEvents({ grant: g.id })).find((e) => e.type === 'grant.denied')!;
    assert.equal(d.actor, 'carol');
    assert.equal(d.reason, 'no change ticket');
  });

  test('a domain controller needs two different approvers (N-of-M from @approvals)', async () => {
    const g = await pending('dc01');
    assert.equal(g.requiredApprovals, 2);
    const first = await broker.approve(bob, g.id, {}, 'web');
    assert.equal(first.state, 'pending', 'one approval is not enough');
    assert.deepEqual(await fw.list(), []);
    await assert.rejects(broker.approve(bob, g.id, {}, 'web'), { code: 'CONFLICT' });
    const second = await broker.approve(carol, g.id, {}, 'web');
    assert.equal(second.state, 'active');
    const approved = (await store.auditEvents({ grant: g.id })).find((e) => e.type === 'grant.approved')!;
    assert.deepEqual(approved.detail!.approvers, ['bob', 'carol']);
  });

  test('self-approval is refused by the broker whatever the policies say', async () => {
    const g = await pending('prod-app', bob);
    await assert.rejects(broker.approve(bob, g.id, {}, 'web'), { code: 'SELF_APPROVAL' });
    await assert.rejects(broker.deny(bob, g.id, {}, 'web'), { code: 'SELF_APPROVAL' });
    assert.equal((await store.getGrant(g.id))!.state, 'pending');
  });

  test('someone without ApprovePort, or without MFA, cannot approve', async () => {
    const g = await pending();
    await assert.rejects(broker.approve(user('dave', ['engineers']), g.id, {}, 'web'), { code: 'FORBIDDEN' });
    await assert.rejects(broker.approve({ ...carol, mfa: false }, g.id, {}, 'web'), { code: 'MFA_REQUIRED' });
    assert.equal((await store.getGrant(g.id))!.state, 'pending');
    assert.deepEqual(await fw.list(), []);
  });

  test('a requester removed from the group between request and approval is not opened', async () => {
    const g = await pending();
    // Alice signs in again later; the IdP no longer puts her in `engineers`.
    await broker.noteSignIn({ ...alice, groups: [], authTime: now() + 5 });
    const after = await broker.approve(bob, g.id, {}, 'web');
    assert.equal(after.state, 'denied');
    assert.equal(after.failure, 'REQUESTER_NO_LONGER_PERMITTED');
    assert.deepEqual(await fw.list(), []);
    assert.deepEqual(await events(g.id), ['grant.requested', 'grant.pending', 'grant.approval_recorded', 'grant.denied']);
  });

  test('an older sign-in does not overwrite what a newer one said', async () => {
    const g = await pending();
    await broker.noteSignIn({ ...alice, groups: [], authTime: now() + 5 });
    await broker.noteSignIn({ ...alice, groups: ['engineers'], authTime: now() - 600 });
    assert.equal((await broker.approve(bob, g.id, {}, 'web')).state, 'denied');
  });

  test('a pending request times out', async () => {
    const g = await pending();
    assert.equal(await broker.expirePending(Date.now() + 3601_000), 1);
    assert.equal((await store.getGrant(g.id))!.state, 'expired');
    await assert.rejects(broker.approve(bob, g.id, {}, 'web'), { code: 'INVALID_STATE' });
  });

  test('extend is re-checked against policy for the new total, and moves the backend expiry', async () => {
    const { grant } = await broker.requestAccess(alice, { target: 'lab-pc', duration: '1h', reason: 'T-2' }, ctx);
    const longer = await broker.extend(alice, grant.id, { duration: '30m' }, 'api');
    assert.equal(longer.expiresAt, grant.expiresAt! + 30 * 60_000);
    assert.equal(longer.durationSeconds, 90 * 60);
    assert.equal((await fw.list())[0]!.expiresAt, longer.expiresAt, 'the backend carries the new expiry');
    // 90 + 60 = 150 min on a dev machine is past self-service (120): refused, nothing changes.
    await assert.rejects(broker.extend(alice, grant.id, { duration: '1h' }, 'api'), { code: 'POLICY_DENIED' });
    assert.equal((await store.getGrant(grant.id))!.expiresAt, longer.expiresAt);
    await assert.rejects(broker.extend(bob, grant.id, { duration: '5m' }, 'api'), { code: 'GRANT_NOT_FOUND' });
    await assert.rejects(broker.extend(alice, grant.id, { duration: 'soon' }, 'api'), { code: 'INVALID_DURATION' });
    assert.ok((await events(grant.id)).includes('grant.extend_denied'));
  });

  test('approvers see what they may approve, never their own', async () => {
    const mine = await pending('prod-app', bob);
    const hers = await pending('prod-app', alice);
    const forBob = (await broker.approvable(bob, 'web')).map((g) => g.id);
    assert.deepEqual(forBob, [hers.id]);
    const forCarol = (await broker.approvable(carol, 'web')).map((g) => g.id).sort();
    assert.deepEqual(forCarol, [mine.id, hers.id].sort());
    assert.deepEqual(await broker.approvable(alice, 'web'), []);
  });
});
