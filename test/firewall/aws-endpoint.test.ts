// The EC2 stand-in itself, driven by the raw SDK and raw HTTP: it must behave as the EC2 API reference says, not as the adapter hopes.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  AuthorizeSecurityGroupIngressCommand,
  DescribeSecurityGroupRulesCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  RevokeSecurityGroupIngressCommand,
} from '@aws-sdk/client-ec2';
import { GROUP, REGION, useDummyAwsCredentials } from '../ec2-endpoint/harness.ts';
import { startEc2Endpoint, type Ec2Endpoint } from '../ec2-endpoint/server.ts';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { name: string }).name;
  }
  return 'ok';
}

const rdp = (cidrs: string[], description?: string) => ({
  IpProtocol: 'tcp',
  FromPort: 3389,
  ToPort: 3389,
  IpRanges: cidrs.map((CidrIp) => ({ CidrIp, ...(description ? { Description: description } : {}) })),
});

describe('EC2 stand-in endpoint', () => {
  let ep: Ec2Endpoint;
  let ec2: EC2Client;
  before(async () => {
    useDummyAwsCredentials();
    ep = await startEc2Endpoint({ groups: [GROUP] });
    ec2 = new EC2Client({ region: REGION, endpoint: ep.url, maxAttempts: 1 });
  });
  after(async () => {
    ec2.destroy();
    await ep.close();
  });
  beforeEach(() => {
    const g = ep.model.groups.get(GROUP)!;
    for (const r of [...g.rules.values()]) if (!r.isEgress) g.rules.delete(r.id);
    ep.resetLog();
  });

  it('refuses an unsigned request with EC2 error XML', async () => {
    const res = await fetch(ep.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=DescribeSecurityGroups&Version=2016-11-15' });
    assert.equal(res.status, 401);
    assert.match(await res.text(), /^<\?xml[^>]*>\s*<Response><Errors><Error><Code>AuthFailure<\/Code><Message>[^<]+<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/);
  });

  it('answers AuthorizeSecurityGroupIngress with sgr- ids, tags applied, and rejects duplicates atomically', async () => {
    const out = await ec2.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: GROUP,
        IpPermissions: [rdp(['192.0.2.1/32'], 'a')],
        TagSpecifications: [{ ResourceType: 'security-group-rule', Tags: [{ Key: 'k', Value: 'v' }] }],
      }),
    );
    assert.equal(out.Return, true);
    assert.match(out.SecurityGroupRules?.[0]?.SecurityGroupRuleId ?? '', /^sgr-[0-9a-f]{17}$/);
    assert.deepEqual(out.SecurityGroupRules?.[0]?.Tags, [{ Key: 'k', Value: 'v' }]);
    // One new range plus one that exists: the whole call fails and the new one is not added.
    assert.equal(await code(ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: GROUP, IpPermissions: [rdp(['192.0.2.2/32', '192.0.2.1/32'], 'other text')] }))), 'InvalidPermission.Duplicate');
    assert.equal(ep.model.ingressRules(GROUP).length, 1);
  });

  it('enforces 60 inbound rules per group and family, all or nothing', async () => {
    const cidrs = Array.from({ length: 61 }, (_, i) => `10.0.0.${i}/32`);
    assert.equal(await code(ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: GROUP, IpPermissions: [rdp(cidrs)] }))), 'RulesPerSecurityGroupLimitExceeded');
    assert.equal(ep.model.ingressRules(GROUP).length, 0);
    await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: GROUP, IpPermissions: [rdp(cidrs.slice(0, 60))] }));
    assert.equal(ep.model.ingressRules(GROUP).length, 60);
  });

  it('revokes by rule ids only when all exist, and by properties with InvalidPermission.NotFound on a miss', async () => {
    const out = await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: GROUP, IpPermissions: [rdp(['192.0.2.1/32', '192.0.2.2/32'])] }));
    const ids = out.SecurityGroupRules!.map((r) => r.SecurityGroupRuleId!);
    assert.equal(await code(ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: GROUP, SecurityGroupRuleIds: [ids[0]!, 'sgr-00000000000000000'] }))), 'InvalidSecurityGroupRuleId.NotFound');
    assert.equal(ep.model.ingressRules(GROUP).length, 2, 'nothing revoked');
    assert.equal(await code(ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: GROUP, IpPermissions: [rdp(['192.0.2.9/32'])] }))), 'InvalidPermission.NotFound');
    const revoked = await ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: GROUP, IpPermissions: [rdp(['192.0.2.2/32'])] }));
    assert.deepEqual(revoked.RevokedSecurityGroupRules?.map((r) => r.SecurityGroupRuleId), [ids[1]]);
    await ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: GROUP, SecurityGroupRuleIds: [ids[0]!] }));
    assert.equal(ep.model.ingressRules(GROUP).length, 0);
  });

  it('validates groups, CIDRs, descriptions and page sizes as EC2 does', async () => {
    assert.equal(await code(ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: 'sg-0000000000000000f', IpPermissions: [rdp(['192.0.2.1/32'])] }))), 'InvalidGroup.NotFound');
    assert.equal(await code(ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: GROUP, IpPermissions: [rdp(['192.0.2.1/24'])] }))), 'InvalidParameterValue');
    assert.equal(await code(ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: GROUP, IpPermissions: [rdp(['192.0.2.1/32'], 'bad <chars> "here"')] }))), 'InvalidParameterValue');
    assert.equal(await code(ec2.send(new DescribeSecurityGroupRulesCommand({ MaxResults: 4 }))), 'InvalidParameterValue');
    assert.equal(await code(ec2.send(new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'cidr', Values: ['x'] }] }))), 'InvalidParameterValue');
  });

  it('filters rules by group and tag (with wildcards) and folds DescribeSecurityGroups permissions', async () => {
    await ec2.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: GROUP,
        IpPermissions: [rdp(['192.0.2.1/32', '192.0.2.2/32'])],
        TagSpecifications: [{ ResourceType: 'security-group-rule', Tags: [{ Key: 'owner', Value: 'team-a' }] }],
      }),
    );
    const tagged = await ec2.send(new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [GROUP] }, { Name: 'tag:owner', Values: ['team-*'] }] }));
    assert.equal(tagged.SecurityGroupRules?.length, 2);
    const byKey = await ec2.send(new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'tag-key', Values: ['nope'] }] }));
    assert.equal(byKey.SecurityGroupRules?.length, 0);
    const groups = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [GROUP] }));
    const perms = groups.SecurityGroups?.[0]?.IpPermissions;
    assert.equal(perms?.length, 1);
    assert.deepEqual(perms?.[0]?.IpRanges?.map((r) => r.CidrIp), ['192.0.2.1/32', '192.0.2.2/32']);
    assert.equal(groups.SecurityGroups?.[0]?.IpPermissionsEgress?.[0]?.IpProtocol, '-1');
  });

  it('throttles on demand with RequestLimitExceeded (HTTP 503) and counts every call', async () => {
    ep.throttle(1, 'DescribeSecurityGroups');
    assert.equal(await code(ec2.send(new DescribeSecurityGroupsCommand({}))), 'RequestLimitExceeded');
    await ec2.send(new DescribeSecurityGroupsCommand({}));
    assert.deepEqual(ep.log.map((c) => [c.action, c.status]), [['DescribeSecurityGroups', 503], ['DescribeSecurityGroups', 200]]);
    assert.equal(ep.calls('DescribeSecurityGroups'), 2);
  });
});
