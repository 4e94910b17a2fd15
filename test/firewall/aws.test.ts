// The AWS security-group adapter through the real @aws-sdk/client-ec2 over HTTP against the EC2 stand-in.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { AuthorizeSecurityGroupIngressCommand, EC2Client } from '@aws-sdk/client-ec2';
import type { GrantId } from '../../src/domain/index.ts';
import { PortcullisError } from '../../src/errors.ts';
import { AwsSecurityGroupAdapter, createAwsAdapter, parseRuleRef, TAG_EXPIRES, TAG_GRANT, TAG_MANAGED } from '../../src/firewall/aws-sg.ts';
import type { RuleSpec } from '../../src/firewall/port.ts';
import { DUMMY_KEY_ID, DUMMY_SECRET, GROUP, harness, OTHER_GROUP, REGION, type Harness } from '../ec2-endpoint/harness.ts';
import { startEc2Endpoint } from '../ec2-endpoint/server.ts';

const HOUR = 3_600_000;
const T0 = Date.parse('2030-01-02T03:04:05.000Z');

function spec(n: number | string, over: Partial<RuleSpec> = {}): RuleSpec {
  const i = typeof n === 'number' ? n : 1;
  return {
    grantId: `g-${n}` as GrantId,
    targetId: 'acme-dc01',
    source: `198.51.${Math.floor(i / 250)}.${(i % 250) + 1}/32`,
    port: 3389,
    protocol: 'tcp',
    expiresAt: T0 + HOUR,
    ...over,
  };
}

function ruleIdOf(ref: string): string {
  const p = parseRuleRef(ref);
  assert.ok(p, `ref ${ref} parses`);
  return p.ruleId;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<PortcullisError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PortcullisError, `expected PortcullisError, got ${inspect(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

describe('AWS security-group adapter against the EC2 stand-in', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(async () => {
    await h.close();
  });
  beforeEach(async () => {
    // Each test starts from empty groups and a clean call log.
    for (const g of [GROUP, OTHER_GROUP]) {
      const group = h.ep.model.groups.get(g)!;
      for (const r of [...group.rules.values()]) if (!r.isEgress) group.rules.delete(r.id);
    }
    h.ep.model.ruleLimit = 60;
    h.ep.resetLog();
    h.sleeps.length = 0;
  });

  it('opens one ingress rule with the exact /32, the port, a description and the three tags in a single call', async () => {
    const ref = await h.adapter.open(spec(1));
    const rules = h.ep.model.ingressRules(GROUP);
    assert.equal(rules.length, 1);
    const r = rules[0]!;
    assert.equal(ref, `${GROUP}/${r.id}`);
    assert.match(r.id, /^sgr-[0-9a-f]{17}$/);
    assert.deepEqual([r.protocol, r.fromPort, r.toPort, r.cidrIpv4, r.cidrIpv6], ['tcp', 3389, 3389, '198.51.0.2/32', undefined]);
    assert.equal(r.description, 'portcullis grant g-1 until 2030-01-02T04:04:05.000Z');
    assert.deepEqual(Object.fromEntries(r.tags), { [TAG_MANAGED]: 'true', [TAG_GRANT]: 'g-1', [TAG_EXPIRES]: '2030-01-02T04:04:05.000Z' });
    // Tags ride on the authorize call itself, so there is no window with an untagged (unfindable) rule.
    assert.deepEqual(h.ep.log.map((c) => c.action), ['AuthorizeSecurityGroupIngress']);
  });

  it('an extend moves the expiry tag of the grant\'s rule; a plain retry changes nothing', async () => {
    const ref = await h.adapter.open(spec(7));
    assert.equal(await h.adapter.open(spec(7)), ref);
    const extended = await h.adapter.open(spec(7, { expiresAt: T0 + 2 * HOUR, extend: true }));
    assert.equal(extended, ref);
    const r = h.ep.model.ingressRules(GROUP)[0]!;
    assert.equal(r.tags.get(TAG_EXPIRES), '2030-01-02T05:04:05.000Z');
    assert.equal((await h.adapter.list())[0]!.expiresAt, T0 + 2 * HOUR);
    assert.equal(h.ep.model.ingressRules(GROUP).length, 1);
  });

  it('signs with credentials from the SDK default provider chain, for the region of the target', async () => {
    await h.adapter.open(spec(2));
    assert.deepEqual([...h.ep.accessKeyIds], [DUMMY_KEY_ID]);
    assert.ok(h.ep.regions.has(REGION));
  });

  it('opens an IPv6 source as a /128 through Ipv6Ranges', async () => {
    await h.adapter.open(spec('v6', { source: '2001:db8::7/128' }));
    const r = h.ep.model.ingressRules(GROUP)[0]!;
    assert.equal(r.cidrIpv6, '2001:db8::7/128');
    assert.equal(r.cidrIpv4, undefined);
    const params = h.ep.log[0]!.params;
    assert.equal(params.get('IpPermissions.1.Ipv6Ranges.1.CidrIpv6'), '2001:db8::7/128');
    assert.equal(params.list('IpPermissions.1.IpRanges').length, 0);
  });

  it('treats a bare address as the single-host CIDR', async () => {
    await h.adapter.open(spec('bare', { source: '203.0.113.9' }));
    assert.equal(h.ep.model.ingressRules(GROUP)[0]!.cidrIpv4, '203.0.113.9/32');
  });

  it('is idempotent per grant id: a retried open returns the same rule and adds nothing', async () => {
    const first = await h.adapter.open(spec(3));
    const again = await h.adapter.open(spec(3));
    assert.equal(again, first);
    assert.equal(h.ep.model.ingressRules(GROUP).length, 1);
    assert.equal(h.ep.calls('CreateTags'), 0, 'the rule already names this grant');
  });

  it('shares one rule between two grants for the same source, port and group, naming both and keeping the later expiry', async () => {
    const a = await h.adapter.open(spec(4));
    const b = await h.adapter.open({ ...spec(4), grantId: 'g-4b' as GrantId, expiresAt: T0 + 3 * HOUR });
    assert.equal(b, a, 'the broker compares refs by string equality to keep the rule until the last grant ends');
    assert.equal(h.ep.model.ingressRules(GROUP).length, 1);
    const [listed] = await h.adapter.list();
    assert.deepEqual(listed!.grantIds.sort(), ['g-4', 'g-4b']);
    assert.equal(listed!.expiresAt, T0 + 3 * HOUR);
    // A third, shorter grant joins without shortening the expiry.
    await h.adapter.open({ ...spec(4), grantId: 'g-4c' as GrantId, expiresAt: T0 + 2 * HOUR });
    const [again] = await h.adapter.list();
    assert.deepEqual(again!.grantIds.sort(), ['g-4', 'g-4b', 'g-4c']);
    assert.equal(again!.expiresAt, T0 + 3 * HOUR);
  });

  it('refuses to adopt an unmanaged rule that already admits the same source and port', async () => {
    const raw = new EC2Client({ region: REGION, endpoint: h.ep.url, maxAttempts: 1 });
    await raw.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: GROUP,
        IpPermissions: [{ IpProtocol: 'tcp', FromPort: 3389, ToPort: 3389, IpRanges: [{ CidrIp: '198.51.0.6/32', Description: 'admin laptop' }] }],
      }),
    );
    raw.destroy();
    const err = await rejectsWith(h.adapter.open(spec(5)), 'CONFLICT');
    assert.match(err.message, /not managed by Portcullis/);
    const rules = h.ep.model.ingressRules(GROUP);
    assert.equal(rules.length, 1);
    assert.equal(rules[0]!.tags.size, 0, 'the admin rule is left untouched');
  });

  it('refuses the 61st inbound IPv4 rule clearly, with nothing half-opened', async () => {
    for (let i = 0; i < 60; i++) await h.adapter.open(spec(100 + i));
    const err = await rejectsWith(h.adapter.open(spec(200)), 'RULE_LIMIT_EXCEEDED');
    assert.match(err.message, new RegExp(`${GROUP}.*${REGION}.*60`));
    assert.match(err.message, /nothing was opened/);
    const rules = h.ep.model.ingressRules(GROUP);
    assert.equal(rules.length, 60);
    assert.ok(!rules.some((r) => r.tags.get(TAG_GRANT) === 'g-200' || r.cidrIpv4 === spec(200).source));
    assert.equal((await h.adapter.list()).length, 60);
    // EC2 counts IPv6 rules against a separate quota of 60.
    await h.adapter.open(spec('v6-61', { source: '2001:db8::61/128' }));
  });

  it('closes rules by SecurityGroupRuleId, batched per group: 250 rules in 3 revoke calls, 2 groups in separate calls', async () => {
    h.ep.model.ruleLimit = 300;
    const other = h.make(OTHER_GROUP);
    const refs: string[] = [];
    for (let i = 0; i < 250; i++) refs.push(await h.adapter.open(spec(1000 + i)));
    const otherRefs = [await other.open(spec(5000)), await other.open(spec(5001))];
    h.ep.resetLog();
    await h.adapter.close([...refs, ...otherRefs]);
    const revokes = h.ep.log.filter((c) => c.action === 'RevokeSecurityGroupIngress');
    assert.equal(revokes.length, 4, 'ceil(250/100) for the first group, 1 for the other');
    assert.deepEqual(revokes.map((c) => c.params.values('SecurityGroupRuleId').length), [100, 100, 50, 2]);
    assert.deepEqual(revokes.map((c) => c.params.get('GroupId')), [GROUP, GROUP, GROUP, OTHER_GROUP]);
    assert.equal(h.ep.calls(), 4, 'no other calls');
    assert.equal(h.ep.model.ingressRules().length, 0);
  });

  it('treats a rule that is already gone as closed, and still removes the others of its batch', async () => {
    const gone = await h.adapter.open(spec(10));
    const live1 = await h.adapter.open(spec(11));
    const live2 = await h.adapter.open(spec(12));
    await h.adapter.close([gone]);
    h.ep.resetLog();
    await h.adapter.close([gone]);
    assert.equal(h.ep.log[0]!.errorCode, 'InvalidSecurityGroupRuleId.NotFound', 'the stand-in answers as EC2 does');
    h.ep.resetLog();
    await h.adapter.close([gone, live1, live2]);
    assert.deepEqual(
      h.ep.log.map((c) => `${c.action}:${c.errorCode ?? 'ok'}`),
      ['RevokeSecurityGroupIngress:InvalidSecurityGroupRuleId.NotFound', 'DescribeSecurityGroupRules:ok', 'RevokeSecurityGroupIngress:ok'],
    );
    assert.deepEqual(h.ep.log[2]!.params.values('SecurityGroupRuleId').sort(), [ruleIdOf(live1), ruleIdOf(live2)].sort());
    assert.equal(h.ep.model.ingressRules(GROUP).length, 0);
  });

  it('retries throttled calls with exponential backoff and jitter, counting the calls', async () => {
    const a = h.make(GROUP, { retry: { random: () => 0.5, baseDelayMs: 100, maxDelayMs: 350, maxAttempts: 6 } });
    h.sleeps.length = 0;
    h.ep.throttle(4, 'AuthorizeSecurityGroupIngress');
    await a.open(spec(20));
    assert.equal(h.ep.calls('AuthorizeSecurityGroupIngress'), 5, '4 throttled + 1 accepted');
    assert.deepEqual(h.ep.log.map((c) => c.errorCode ?? 'ok'), ['RequestLimitExceeded', 'RequestLimitExceeded', 'RequestLimitExceeded', 'RequestLimitExceeded', 'ok']);
    // Ceilings 100, 200, 400→capped 350, 350; half of each with random() = 0.5.
    assert.deepEqual(h.sleeps, [50, 100, 175, 175]);
    assert.equal(h.ep.model.ingressRules(GROUP).length, 1);
  });

  it('spreads retries with jitter: different random draws give different waits under the same ceiling', async () => {
    const draws = [0.1, 0.9, 0.3];
    const a = h.make(GROUP, { retry: { random: () => draws.shift()!, baseDelayMs: 1000, maxDelayMs: 10_000 } });
    h.sleeps.length = 0;
    h.ep.throttle(3, 'DescribeSecurityGroupRules');
    await a.list();
    assert.deepEqual(h.sleeps, [100, 1800, 1200]);
  });

  it('gives up after the attempt budget with FIREWALL_UNAVAILABLE and opens nothing', async () => {
    const a = h.make(GROUP, { retry: { maxAttempts: 3 } });
    h.ep.throttle(10, 'AuthorizeSecurityGroupIngress');
    const err = await rejectsWith(a.open(spec(21)), 'FIREWALL_UNAVAILABLE');
    assert.match(err.message, /throttl/i);
    assert.equal(h.ep.calls('AuthorizeSecurityGroupIngress'), 3);
    assert.equal(h.ep.model.ingressRules(GROUP).length, 0);
    h.ep.resetInjections();
  });

  it('retries throttled revokes too', async () => {
    const ref = await h.adapter.open(spec(22));
    h.ep.resetLog();
    h.ep.throttle(2, 'RevokeSecurityGroupIngress');
    await h.adapter.close([ref]);
    assert.equal(h.ep.calls('RevokeSecurityGroupIngress'), 3);
    assert.equal(h.ep.model.ingressRules(GROUP).length, 0);
  });

  it('lists managed rules only, with grant ids and expiry from tags — including an orphan whose grant nobody knows', async () => {
    await h.adapter.open(spec(30));
    // An orphan: a managed rule left behind (crash, lost database write); its grant is unknown to any store.
    h.ep.model.authorizeIngress(
      GROUP,
      [{ protocol: 'tcp', fromPort: 3389, toPort: 3389, source: { kind: 'v4', cidr: '192.0.2.50/32', parsed: { family: 4, network: 0xc0000232n, prefix: 32 } } }],
      new Map([[TAG_MANAGED, 'true'], [TAG_GRANT, 'g-orphan'], [TAG_EXPIRES, '2029-12-31T00:00:00.000Z']]),
    );
    // Unmanaged rules are not the broker's to reconcile.
    h.ep.model.authorizeIngress(GROUP, [{ protocol: 'tcp', fromPort: 22, toPort: 22, source: { kind: 'v4', cidr: '10.0.0.0/8', parsed: { family: 4, network: 0x0a000000n, prefix: 8 } } }], new Map());
    const listed = await h.adapter.list();
    assert.equal(listed.length, 2);
    const orphan = listed.find((r) => r.grantIds.includes('g-orphan'));
    assert.ok(orphan, 'the orphan shows up for the reconciler');
    assert.deepEqual(orphan, { ref: orphan.ref, grantIds: ['g-orphan'], source: '192.0.2.50/32', port: 3389, expiresAt: Date.parse('2029-12-31T00:00:00.000Z') });
    assert.equal(parseRuleRef(orphan.ref)?.groupId, GROUP);
    // The reconciler removes it through the same close path.
    await h.adapter.close([orphan.ref]);
    assert.deepEqual((await h.adapter.list()).map((r) => r.grantIds[0]), ['g-30']);
  });

  it('follows NextToken pages when listing', async () => {
    const a = h.make(GROUP, { pageSize: 5 });
    for (let i = 0; i < 12; i++) await a.open(spec(40 + i));
    h.ep.resetLog();
    const listed = await a.list();
    assert.equal(listed.length, 12);
    assert.equal(h.ep.calls('DescribeSecurityGroupRules'), 3);
    assert.deepEqual(h.ep.log.map((c) => c.params.get('MaxResults')), ['5', '5', '5']);
  });

  it('refuses sources that are malformed, have host bits set or admit everyone, before any API call', async () => {
    await rejectsWith(h.adapter.open(spec(50, { source: '0.0.0.0/0' })), 'SOURCE_TOO_WIDE');
    await rejectsWith(h.adapter.open(spec(51, { source: '::/0' })), 'SOURCE_TOO_WIDE');
    await rejectsWith(h.adapter.open(spec(52, { source: '198.51.100.7/24' })), 'INVALID_SOURCE_IP');
    await rejectsWith(h.adapter.open(spec(53, { source: 'not-an-ip/32' })), 'INVALID_SOURCE_IP');
    await rejectsWith(h.adapter.open(spec(54, { port: 0 })), 'INVALID_PORT');
    assert.equal(h.ep.calls(), 0);
  });

  it('refuses malformed refs on close before any API call', async () => {
    await rejectsWith(h.adapter.close(['nft:portcullis/42']), 'INVALID_REQUEST');
    assert.equal(h.ep.calls(), 0);
  });

  it('names a missing security group instead of pretending', async () => {
    const a = h.make('sg-0deadbeefdeadbeef');
    const err = await rejectsWith(a.open(spec(60)), 'FIREWALL_ERROR');
    assert.match(err.message, /sg-0deadbeefdeadbeef does not exist in eu-west-1/);
    const health = await a.check();
    assert.equal(health.ok, false);
    assert.match(health.detail, /sg-0deadbeefdeadbeef/);
    assert.deepEqual(await h.adapter.check(), { ok: true, detail: `aws:${REGION}/${GROUP} reachable (0 inbound permissions)` });
  });

  it('reports an unreachable endpoint as FIREWALL_UNAVAILABLE after retrying', async () => {
    const dead = await startEc2Endpoint();
    const url = dead.url;
    await dead.close();
    const sleeps: number[] = [];
    const a = createAwsAdapter(
      { kind: 'aws-security-group', region: REGION, securityGroupId: GROUP, endpoint: url },
      { retry: { maxAttempts: 3, sleep: async (ms) => void sleeps.push(ms) } },
    );
    const err = await rejectsWith(a.open(spec(70)), 'FIREWALL_UNAVAILABLE');
    assert.equal(sleeps.length, 2, 'connection refusals are retried');
    assert.doesNotMatch(inspect(err, { depth: 10 }), new RegExp(`${DUMMY_KEY_ID}|${escapeRe(DUMMY_SECRET)}`));
    assert.equal((await a.check()).ok, false);
    await a.shutdown();
  });

  it('never puts credentials in errors, even when the AWS message echoes a key id', async () => {
    h.ep.failNext(1, { code: 'UnauthorizedOperation', status: 403, message: `You are not authorized to perform this operation. User: ${DUMMY_KEY_ID}` }, 'AuthorizeSecurityGroupIngress');
    const err = await rejectsWith(h.adapter.open(spec(80)), 'FIREWALL_ERROR');
    h.ep.failNext(1, { code: 'InvalidParameterValue', status: 400, message: `bad value near ${DUMMY_KEY_ID}` }, 'AuthorizeSecurityGroupIngress');
    const err2 = await rejectsWith(h.adapter.open(spec(81)), 'FIREWALL_ERROR');
    assert.match(err2.message, /\[redacted\]/);
    for (const e of [err, err2]) {
      const everything = `${inspect(e, { depth: 10, showHidden: true })} ${JSON.stringify(e.details)} ${e.message}`;
      assert.ok(!everything.includes(DUMMY_KEY_ID), everything);
      assert.ok(!everything.includes(DUMMY_SECRET));
      assert.ok(!/AWS4-HMAC-SHA256|Signature=/.test(everything), 'no signed request in the error');
    }
  });

  it('aggregates partial failures on close: every batch is tried and the failed refs are reported', async () => {
    h.ep.model.ruleLimit = 300;
    const refs: string[] = [];
    for (let i = 0; i < 150; i++) refs.push(await h.adapter.open(spec(2000 + i)));
    h.ep.resetLog();
    h.ep.failNext(1, { code: 'UnauthorizedOperation', status: 403 }, 'RevokeSecurityGroupIngress');
    const err = await rejectsWith(h.adapter.close(refs), 'FIREWALL_ERROR');
    assert.match(err.message, /could not close 100 of 150/);
    assert.equal((err.details?.failedRefs as string[]).length, 100);
    assert.equal(h.ep.calls('RevokeSecurityGroupIngress'), 2, 'the second batch still ran');
    assert.equal(h.ep.model.ingressRules(GROUP).length, 100);
  });

  it('exposes what the composition root needs', () => {
    const a = createAwsAdapter({ kind: 'aws-security-group', region: 'us-east-1', securityGroupId: 'sg-0abc12345' });
    assert.ok(a instanceof AwsSecurityGroupAdapter);
    assert.deepEqual([a.kind, a.scope, a.simulated], ['aws-security-group', 'aws:us-east-1/sg-0abc12345', false]);
    void a.shutdown();
  });
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
