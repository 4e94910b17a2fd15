// RDP listens on TCP and UDP 3389: a grant on an AWS target admits its source on each declared protocol,
// one tagged ingress rule each, opened in one call and closed together (real SDK against the EC2 stand-in).
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { GrantId } from '../../src/domain/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { TAG_GRANT, type AwsSecurityGroupAdapter } from '../../src/firewall/aws-sg.ts';
import type { RuleSpec } from '../../src/firewall/port.ts';
import { buildFirewalls } from '../../src/firewall/registry.ts';
import { GROUP, harness, REGION, type Harness } from '../ec2-endpoint/harness.ts';

const spec = (grantId: string, over: Partial<RuleSpec> = {}): RuleSpec => ({
  grantId: grantId as GrantId,
  targetId: 'acme-dc01',
  source: '198.51.100.7/32',
  port: 3389,
  protocol: 'tcp',
  expiresAt: Date.parse('2030-01-02T04:00:00.000Z'),
  ...over,
});

describe('AWS adapter: one rule per declared protocol', () => {
  let h: Harness;
  let fw: AwsSecurityGroupAdapter;
  before(async () => {
    h = await harness();
    fw = h.make(GROUP, { protocols: ['tcp', 'udp'] });
  });
  after(async () => h.close());
  beforeEach(() => {
    const group = h.ep.model.groups.get(GROUP)!;
    for (const r of [...group.rules.values()]) if (!r.isEgress) group.rules.delete(r.id);
    h.ep.resetLog();
  });
  const rules = () => h.ep.model.ingressRules(GROUP).map((r) => [r.protocol, r.fromPort, r.toPort, r.cidrIpv4 ?? r.cidrIpv6, r.tags.get(TAG_GRANT)]).sort();

  it('opens a TCP and a UDP rule in one call; list() shows them as the grant\'s one rule; close revokes both in one call', async () => {
    const ref = await fw.open(spec('g-1'));
    assert.deepEqual(h.ep.log.map((c) => c.action), ['AuthorizeSecurityGroupIngress']);
    assert.deepEqual(rules(), [['tcp', 3389, 3389, '198.51.100.7/32', 'g-1'], ['udp', 3389, 3389, '198.51.100.7/32', 'g-1']]);
    const [tcp, udp] = ['tcp', 'udp'].map((p) => h.ep.model.ingressRules(GROUP).find((r) => r.protocol === p)!.id);
    assert.equal(ref, `${GROUP}/${tcp}+${udp}`);
    const listed = await fw.list();
    assert.deepEqual(listed.map((r) => [r.ref, r.grantIds, r.source, r.port]), [[ref, ['g-1'], '198.51.100.7/32', 3389]]);
    h.ep.resetLog();
    await fw.close([ref]);
    assert.deepEqual(h.ep.log.map((c) => c.action), ['RevokeSecurityGroupIngress']);
    assert.deepEqual(rules(), []);
  });

  it('a retry of the same open returns the same ref and adds nothing; a second grant of the same source shares both rules', async () => {
    const ref = await fw.open(spec('g-2'));
    assert.equal(await fw.open(spec('g-2')), ref);
    assert.equal(await fw.open(spec('g-3')), ref);
    assert.equal(h.ep.model.ingressRules(GROUP).length, 2);
    assert.deepEqual((await fw.list()).map((r) => [r.ref, [...r.grantIds].sort()]), [[ref, ['g-2', 'g-3']]]);
  });

  it('a rule of one protocol already there (another grant\'s, or left by a crash) is joined, the missing one added', async () => {
    await h.make(GROUP).open(spec('g-tcp-only'));
    const ref = await fw.open(spec('g-4'));
    assert.deepEqual(rules(), [['tcp', 3389, 3389, '198.51.100.7/32', 'g-tcp-only'], ['udp', 3389, 3389, '198.51.100.7/32', 'g-4']]);
    assert.match(ref, /^sg-[0-9a-f]+\/sgr-[0-9a-f]+\+sgr-[0-9a-f]+$/);
  });

  it('the registry gives an AWS target its protocols: [tcp, udp] by default for 3389, [tcp] when declared', async () => {
    const targets = parseConfig({
      oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } },
      targets: [
        { id: 'rdp', firewall: { kind: 'aws-security-group', region: REGION, securityGroupId: GROUP, endpoint: h.ep.url } },
        { id: 'ssh', ports: [22], firewall: { kind: 'aws-security-group', region: REGION, securityGroupId: 'sg-0cccc3333dddd4444', endpoint: h.ep.url } },
      ],
    }).targets;
    const fws = await buildFirewalls(targets, { simulatedPath: ':memory:' });
    try {
      await fws.get('rdp')!.open(spec('g-5', { targetId: 'rdp' }));
      await fws.get('ssh')!.open(spec('g-6', { targetId: 'ssh', port: 22 }));
      assert.deepEqual(rules(), [['tcp', 3389, 3389, '198.51.100.7/32', 'g-5'], ['udp', 3389, 3389, '198.51.100.7/32', 'g-5']]);
      assert.deepEqual(h.ep.model.ingressRules('sg-0cccc3333dddd4444').map((r) => [r.protocol, r.fromPort]), [['tcp', 22]]);
    } finally {
      for (const f of new Set(fws.values())) await f.shutdown?.();
      const other = h.ep.model.groups.get('sg-0cccc3333dddd4444')!;
      for (const r of [...other.rules.values()]) if (!r.isEgress) other.rules.delete(r.id);
    }
  });
});
