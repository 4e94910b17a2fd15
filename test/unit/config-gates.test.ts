// Config: one grant admits to one target. Targets whose grants would admit to each other (one security
// group, or one nft table and namespace without distinct destinations) are refused, naming both.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { targetDestinations, targetProtocols } from '../../src/config/schema.ts';

const base = { oidc: { issuer: 'https://login.example.test', clients: { web: { id: 'w', secret: 's' } } } };
const sg = (id = 'sg-0abc1234', region = 'eu-west-1') => ({ kind: 'aws-security-group', region, securityGroupId: id });
const nft = (over: Record<string, unknown> = {}) => ({ kind: 'nftables', ...over });

function refusal(targets: unknown[]): string {
  try {
    parseConfig({ ...base, targets });
  } catch (e) {
    assert.equal((e as { code: string }).code, 'CONFIG_INVALID');
    return (e as Error).message;
  }
  assert.fail('config was accepted');
}
const accepted = (targets: unknown[]) => parseConfig({ ...base, targets }).targets;

test('two targets on one security group are refused, naming both', () => {
  const m = refusal([{ id: 'dev-pc', firewall: sg() }, { id: 'prod-dc', firewall: sg() }]);
  assert.match(m, /targets\.1\.firewall\.securityGroupId: targets "dev-pc" and "prod-dc" share security group eu-west-1\/sg-0abc1234/);
  // Another endpoint does not make it another group.
  assert.match(refusal([{ id: 'a', firewall: sg() }, { id: 'b', firewall: { ...sg(), endpoint: 'http://127.0.0.1:9' } }]), /"a" and "b" share security group/);
  assert.equal(accepted([{ id: 'a', firewall: sg() }, { id: 'b', firewall: sg('sg-0abc5678') }, { id: 'c', firewall: sg('sg-0abc1234', 'us-east-1') }]).length, 3);
});

test('two targets on one nft table and namespace are refused without distinct destinations, naming both', () => {
  assert.match(refusal([{ id: 'a', firewall: nft() }, { id: 'b', firewall: nft() }]), /targets\.1\.destination: targets "a" and "b" share nft table portcullis and "a" has no destination/);
  assert.match(
    refusal([{ id: 'a', connect: '203.0.113.10:3389', firewall: nft({ netns: 'lab' }) }, { id: 'b', connect: 'b.example.test', firewall: nft({ netns: 'lab' }) }]),
    /targets "a" and "b" share nft table portcullis in netns lab and "b" has no destination/,
  );
  assert.match(
    refusal([{ id: 'a', destination: ['203.0.113.10', '2001:db8::10'], firewall: nft() }, { id: 'b', destination: '2001:DB8:0::10', firewall: nft() }]),
    /targets "a" and "b" share nft table portcullis and both name destination 2001:db8::10/,
  );
  // connect's IP literal is the destination when none is given.
  assert.match(refusal([{ id: 'a', connect: '203.0.113.10:3389', firewall: nft() }, { id: 'b', destination: '203.0.113.10', firewall: nft() }]), /both name destination 203\.0\.113\.10/);
});

test('targets on one nft table with distinct destinations, or on other tables or namespaces, are accepted', () => {
  assert.equal(accepted([{ id: 'a', connect: '203.0.113.10:3389', firewall: nft() }, { id: 'b', connect: '[2001:db8::20]:3389', firewall: nft() }]).length, 2);
  assert.equal(accepted([{ id: 'a', firewall: nft() }, { id: 'b', firewall: nft({ table: 'other' }) }, { id: 'c', firewall: nft({ netns: 'lab' }) }]).length, 3);
});

test('destination and protocols: derived from connect, refused when not addresses, defaulting to TCP and UDP for 3389', () => {
  const [a, b, c, d] = accepted([
    { id: 'a', connect: '203.0.113.10:3389', firewall: { kind: 'simulated' } },
    { id: 'b', connect: '[2001:db8::1]:3389', destination: ['203.0.113.11', '2001:db8::1'], ports: [22], firewall: { kind: 'simulated' } },
    { id: 'c', connect: 'host.example.test:3389', firewall: { kind: 'simulated' } },
    { id: 'd', protocols: ['tcp'], firewall: { kind: 'simulated' } },
  ]);
  assert.deepEqual(targetDestinations(a!), ['203.0.113.10']);
  assert.deepEqual(targetDestinations(b!), ['203.0.113.11', '2001:db8::1']);
  assert.deepEqual(targetDestinations(c!), []);
  assert.deepEqual([targetProtocols(a!), targetProtocols(b!), targetProtocols(d!)], [['tcp', 'udp'], ['tcp'], ['tcp']]);
  assert.match(refusal([{ id: 'a', destination: 'dc01.example.test', firewall: nft() }]), /targets\.0\.destination/);
  assert.match(refusal([{ id: 'a', destination: '::ffff:203.0.113.10', firewall: nft() }]), /targets\.0\.destination/);
  assert.match(refusal([{ id: 'a', protocols: ['icmp'], firewall: nft() }]), /targets\.0\.protocols/);
  assert.match(refusal([{ id: 'a', firewall: nft({ destination: '203.0.113.10' }) }]), /unknown key "targets\.0\.firewall\.destination"/);
});
