// The region-wide exposure scan with the real AWS SDK against the EC2 stand-in: every group of the
// region, world-open and unmanaged rules on the managed port, with the network interfaces and
// instances each group is attached to; the fix revokes only groups on the allow-list (or all with `all`).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AuthorizeSecurityGroupIngressCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GROUP, OTHER_GROUP, REGION, harness, type Harness } from '../ec2-endpoint/harness.ts';
import { fixRegion, scanRegion } from '../../src/firewall/aws-region-scan.ts';
import type { GrantId } from '../../src/domain/index.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { tempDir, testConfig } from '../helpers/broker.ts';
import { exposureScanCommand } from '../../src/cli/exposure.ts';
import { openDb } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { ExposureWatch } from '../../src/broker/exposure-watch.ts';
import { createLogger } from '../../src/log.ts';

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

  it('`exposure scan --region R --fix` fixes allow-listed groups, audits each removal as exposure.fixed, refuses the rest unless --all', async () => {
    const tmp = tempDir();
    try {
      const STRAY = 'sg-0abcdef0123456789';
      h.ep.model.addGroup(STRAY);
      await allow(STRAY, 'tcp', '0.0.0.0/0');
      await allow(OTHER_GROUP, 'udp', '0.0.0.0/0');
      h.ep.model.addNetworkInterface({ id: 'eni-0eeee5555ffff6666', groups: [STRAY], instanceId: 'i-0fedcba9876543210' });
      const raw = testConfig(tmp.dir, {
        dev: { embeddedIdp: true },
        exposure: { allowGroups: [STRAY] },
        targets: [{ id: 'acme-dc01', connect: '10.0.0.5:3389', firewall: { kind: 'aws-security-group', region: REGION, securityGroupId: OTHER_GROUP, endpoint: h.ep.url } }],
      });
      const config = join(tmp.dir, 'config.yaml');
      writeFileSync(config, stringify(raw));
      const sink = () => {
        const chunks: string[] = [];
        return { chunks, write: (x: string) => chunks.push(x) };
      };
      const scanOut = sink();
      assert.equal(await exposureScanCommand({ config, region: [REGION], json: true }, { out: scanOut, err: sink() }), 1);
      const scanned = JSON.parse(scanOut.chunks.join('')) as { regions: { findings: { groupId: string; attachments: { instanceId?: string }[] }[] }[] };
      const stray = scanned.regions[0]!.findings.find((f) => f.groupId === STRAY)!;
      assert.deepEqual(stray.attachments.map((a) => a.instanceId), ['i-0fedcba9876543210']);

      const err = sink();
      const code = await exposureScanCommand({ config, region: [REGION], fix: true, json: true }, { out: sink(), err, actor: 'cli:test' });
      assert.equal(code, 1, 'OTHER_GROUP is not on the allow-list: its rule remains');
      assert.match(err.chunks.join(''), new RegExp(`${OTHER_GROUP} is not in exposure.allowGroups`));
      assert.deepEqual(h.ep.model.ingressRules(STRAY), []);
      const db = await openDb(String((raw.store as { url: string }).url));
      try {
        const fixed = (await new Store(db).auditEvents({ limit: 1000 })).filter((e) => e.type === 'exposure.fixed');
        assert.deepEqual(fixed.map((e) => [e.actor, (e.detail as { groupId: string }).groupId, (e.detail as { why: string }).why]), [['cli:test', STRAY, 'world']]);
      } finally {
        await db.close();
      }
      assert.equal(await exposureScanCommand({ config, region: [REGION], fix: true, all: true, json: true }, { out: sink(), err: sink(), actor: 'cli:test' }), 0);
      assert.equal(await exposureScanCommand({ config, region: [REGION], json: true }, { out: sink(), err: sink() }), 0, 'nothing exposed in the region any more');
    } finally {
      tmp.cleanup();
    }
  });

  it('the schedule audits each new finding once as exposure.detected, across runs and a restart, and a new one when it appears', async () => {
    const tmp = tempDir();
    const db = await openDb(`sqlite:${join(tmp.dir, 'p.db')}`);
    try {
      const store = new Store(db);
      const LATE = 'sg-0123456789abcdef0';
      h.ep.model.addGroup(LATE);
      await allow(LATE, 'tcp', '0.0.0.0/0');
      h.ep.model.addNetworkInterface({ id: 'eni-0123456789abcdef0', groups: [LATE], instanceId: 'i-0aaaabbbbccccdddd' });
      const make = () => new ExposureWatch({ store, regions: [REGION], log: createLogger('silent'), scan: (region) => scanRegion({ region, ports: [3389], endpoint: h.ep.url }) });
      const first = await make().run();
      assert.ok(first.some((f) => f.groupId === LATE));
      const w = make();
      assert.deepEqual(await w.run(), [], 'a restarted watcher finds the trail already knows it');
      assert.deepEqual(await w.run(), []);
      await allow(LATE, 'udp', '::/0');
      assert.deepEqual((await w.run()).map((f) => [f.groupId, f.protocol]), [[LATE, 'udp']]);
      const detected = (await store.auditEvents({ limit: 1000 })).filter((e) => e.type === 'exposure.detected');
      assert.equal(detected.length, first.length + 1);
      assert.equal(new Set(detected.map((e) => e.ruleRef)).size, detected.length, 'each finding once');
      const late = detected.find((e) => (e.detail as { groupId: string }).groupId === LATE)!;
      assert.deepEqual((late.detail as { attachments: { instanceId: string }[] }).attachments.map((a) => a.instanceId), ['i-0aaaabbbbccccdddd']);
    } finally {
      await db.close();
      tmp.cleanup();
    }
  });
});
