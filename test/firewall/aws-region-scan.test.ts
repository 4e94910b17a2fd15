// The region-wide exposure scan with the real AWS SDK against the EC2 stand-in: every group of the
// region, world-open and unmanaged rules on the managed port, with the network interfaces and
// instances each group is attached to; the fix revokes only groups on the allow-list (or all with `all`).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AuthorizeSecurityGroupIngressCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GROUP, OTHER_GROUP, REGION, harness, type Harness } from '../ec2-endpoint/harness.ts';
import { fixRegion, scanRegion } from '../../src/firewall/aws-region-scan.ts';
import type { GrantId } from '../../src/domain/index.ts';

const LAUNCH_WIZARD = 'sg-0eeee5555ffff6666';

describe('region-wide exposure scan', () => {
  let h: Harness;
  let ec2: EC2Client;
  before(async () => {
    h = await harness({ groups: [GROUP, OTHER_GROUP, LAUNCH_WIZARD] });
    ec2 = new EC2Client({ region: REGION, endpoint: h.ep.url, maxAttempts: 1 });
  });
  after(async () => {
    ec2.destroy();
    await h.close();
  });
  const allow = (groupId: string, protocol: string, cidr: string, from = 3389, to = from) =>
    ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: [{ IpProtocol: protocol, FromPort: from, ToPort: to, ...(cidr.includes(':') ? { Ipv6Ranges: [{ CidrIpv6: cidr }] } : { IpRanges: [{ CidrIp: cidr }] }) }] }));

  it('finds world-open rules on a group no target names, with its attachments; managed rules are not findings; the fix honours the allow-list', async () => {
    // What a default Windows launch leaves behind, on a group no target names, attached to an instance.
    await allow(LAUNCH_WIZARD, 'tcp', '0.0.0.0/0');
    await allow(LAUNCH_WIZARD, 'udp', '::/0');
    await allow(LAUNCH_WIZARD, 'tcp', '0.0.0.0/0', 443); // not a managed port
    h.ep.model.addNetworkInterface({ id: 'eni-0aaaa1111bbbb2222', groups: [LAUNCH_WIZARD], instanceId: 'i-0123456789abcdef0', description: 'Primary network interface' });
    h.ep.model.addNetworkInterface({ id: 'eni-0cccc3333dddd4444', groups: [LAUNCH_WIZARD, OTHER_GROUP] });
    // A grant's rule (managed) and someone's own rule on a group a target names.
    await h.adapter.open({ grantId: 'g_region' as GrantId, targetId: 't', source: '198.51.100.7/32', port: 3389, protocol: 'tcp', expiresAt: Date.now() + 600_000 });
    await allow(GROUP, 'tcp', '203.0.113.0/24', 3000, 4000);

    const found = await scanRegion({ region: REGION, endpoint: h.ep.url, ports: [3389] });
    const summary = found.map((f) => [f.groupId, f.protocol, f.source, f.why]).sort();
    assert.deepEqual(summary, [
      [GROUP, 'tcp', '203.0.113.0/24', 'unmanaged'],
      [LAUNCH_WIZARD, 'tcp', '0.0.0.0/0', 'world'],
      [LAUNCH_WIZARD, 'udp', '::/0', 'world'],
    ].sort());
    const wizard = found.find((f) => f.groupId === LAUNCH_WIZARD)!;
    assert.deepEqual(wizard.attachments.map((a) => [a.networkInterfaceId, a.instanceId]), [['eni-0aaaa1111bbbb2222', 'i-0123456789abcdef0'], ['eni-0cccc3333dddd4444', undefined]]);
    assert.deepEqual(found.find((f) => f.groupId === GROUP)!.attachments, []);

    // Not on the allow-list: nothing changes.
    const none = await fixRegion({ region: REGION, endpoint: h.ep.url, findings: found, allowGroups: [], all: false });
    assert.equal(none.fixed.length, 0);
    assert.equal(none.refused.length, 3);
    assert.equal((await scanRegion({ region: REGION, endpoint: h.ep.url, ports: [3389] })).length, 3);

    const some = await fixRegion({ region: REGION, endpoint: h.ep.url, findings: found, allowGroups: [LAUNCH_WIZARD], all: false });
    assert.deepEqual(some.fixed.map((f) => f.groupId), [LAUNCH_WIZARD, LAUNCH_WIZARD]);
    assert.deepEqual(some.refused.map((f) => f.groupId), [GROUP]);
    const after = await scanRegion({ region: REGION, endpoint: h.ep.url, ports: [3389] });
    assert.deepEqual(after.map((f) => f.groupId), [GROUP]);
    // The 443 rule and the grant's rule are still there.
    assert.deepEqual(h.ep.model.ingressRules(LAUNCH_WIZARD).map((r) => [r.protocol, r.fromPort, r.cidrIpv4]), [['tcp', 443, '0.0.0.0/0']]);
    assert.equal((await h.adapter.list()).length, 1, 'the managed rule is untouched');
  });
});
