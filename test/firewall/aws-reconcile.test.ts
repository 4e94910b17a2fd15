// The broker core driving the AWS adapter against the EC2 stand-in: shared rules end with the last grant; reconcile removes orphans and restores vanished rules.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Broker } from '../../src/broker/broker.ts';
import type { GrantId, Principal, UserId } from '../../src/domain/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { TAG_EXPIRES, TAG_GRANT, TAG_MANAGED, type AwsSecurityGroupAdapter } from '../../src/firewall/aws-sg.ts';
import { createLogger } from '../../src/log.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { openDb, type Db } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { parseCidr } from '../ec2-endpoint/cidr.ts';
import { GROUP, harness, type Harness } from '../ec2-endpoint/harness.ts';
import { ROOT, tempDir } from '../helpers/broker.ts';

const alice: Principal = { sub: 'alice' as UserId, email: 'alice@example.test', groups: ['engineers'], mfa: true, authTime: Math.floor(Date.now() / 1000), amr: ['pwd', 'mfa'] };
const bob: Principal = { ...alice, sub: 'bob' as UserId, email: 'bob@example.test' };
const ctx = { channel: 'api' as const, callerIp: '198.51.100.7' };
const req = { target: 'lab-pc', duration: '10m', reason: 'T-1' };

describe('broker core over the AWS adapter', () => {
  const tmp = tempDir();
  const engine = loadPolicyEngine({ dir: join(ROOT, 'policies') });
  let h: Harness;
  let fw: AwsSecurityGroupAdapter;
  let db: Db;
  let store: Store;
  let broker: Broker;
  let n = 0;

  const targets = parseConfig({
    oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } },
    targets: [{ id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'aws-security-group', region: 'eu-west-1', securityGroupId: GROUP } }],
  }).targets;

  before(async () => {
    h = await harness();
    fw = h.adapter;
  });
  after(async () => {
    await db?.close();
    await h.close();
    tmp.cleanup();
  });
  beforeEach(async () => {
    const group = h.ep.model.groups.get(GROUP)!;
    for (const r of [...group.rules.values()]) if (!r.isEgress) group.rules.delete(r.id);
    await db?.close();
    db = await openDb(`sqlite:${join(tmp.dir, `aws${n++}.db`)}`);
    store = new Store(db);
    broker = new Broker({
      store,
      policy: () => engine,
      firewalls: new Map([['lab-pc', fw]]),
      targets,
      limits: { minDurationSeconds: 1, maxDurationSeconds: 8 * 3600, pendingTimeoutSeconds: 3600, maxActivePerUser: 3, maxSource: { ipv4: 32, ipv6: 128 }, mfaMaxAgeSeconds: 12 * 3600, timeZone: 'UTC' },
      log: createLogger('silent'),
    });
  });

  it('opens a tagged rule for the grant; two grants from one address share it until the last one ends', async () => {
    const a = await broker.requestAccess(alice, req, ctx);
    const b = await broker.requestAccess(bob, req, ctx);
    assert.equal(a.grant.state, 'active');
    assert.equal(b.grant.state, 'active');
    assert.equal(b.grant.ruleRef, a.grant.ruleRef);
    const rules = h.ep.model.ingressRules(GROUP);
    assert.equal(rules.length, 1);
    assert.equal(rules[0]!.cidrIpv4, '198.51.100.7/32');
    assert.equal(rules[0]!.tags.get(TAG_GRANT), a.grant.id);
    assert.ok(rules[0]!.tags.has(`portcullis:grant:${b.grant.id}`));

    await broker.revoke(alice, a.grant.id);
    assert.equal(h.ep.model.ingressRules(GROUP).length, 1, 'bob still holds the rule');
    await broker.revoke(bob, b.grant.id);
    assert.equal(h.ep.model.ingressRules(GROUP).length, 0, 'closed with the last grant');
  });

  it('reconcile removes an orphan rule (managed tag, grant unknown) and audits it, keeping live grants', async () => {
    const live = await broker.requestAccess(alice, req, ctx);
    h.ep.model.authorizeIngress(
      GROUP,
      [{ protocol: 'tcp', fromPort: 3389, toPort: 3389, source: { kind: 'v4', cidr: '192.0.2.50/32', parsed: parseCidr('192.0.2.50/32')! } }],
      new Map([[TAG_MANAGED, 'true'], [TAG_GRANT, 'g-from-a-lost-database'], [TAG_EXPIRES, new Date(Date.now() + 60_000).toISOString()]]),
    );
    const result = await broker.reconcile();
    assert.equal(result.orphansRemoved, 1);
    assert.deepEqual(h.ep.model.ingressRules(GROUP).map((r) => r.cidrIpv4), ['198.51.100.7/32']);
    const events = (await store.auditEvents()).filter((e) => e.type === 'reconcile.orphan_removed');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.grant, 'g-from-a-lost-database');
    assert.equal((await store.getGrant(live.grant.id as GrantId))?.state, 'active');
  });

  it('reconcile restores the rule of an active grant that vanished from the security group', async () => {
    const { grant } = await broker.requestAccess(alice, req, ctx);
    const group = h.ep.model.groups.get(GROUP)!;
    for (const r of [...group.rules.values()]) if (!r.isEgress) group.rules.delete(r.id);
    const result = await broker.reconcile();
    assert.equal(result.reopened, 1);
    const rules = h.ep.model.ingressRules(GROUP);
    assert.equal(rules.length, 1);
    assert.equal(rules[0]!.tags.get(TAG_GRANT), grant.id);
    assert.equal((await store.getGrant(grant.id as GrantId))?.ruleRef, `${GROUP}/${rules[0]!.id}`);
  });
});
