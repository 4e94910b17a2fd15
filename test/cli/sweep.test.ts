// `portcullis sweep --once --tags-only` against the EC2 stand-in with the database unreachable: it closes the managed
// rules whose expiry tag has passed and nothing else, from the tags alone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuthorizeSecurityGroupIngressCommand, EC2Client } from '@aws-sdk/client-ec2';
import { stringify } from 'yaml';
import type { GrantId } from '../../src/domain/index.ts';
import { harness, GROUP, OTHER_GROUP, REGION, type Harness } from '../ec2-endpoint/harness.ts';
import { ROOT, tempDir, testConfig } from '../helpers/broker.ts';

function sweep(config: string, args = ['--once', '--tags-only', '--json']): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'sweep', ...args, '--config', config], {
    cwd: ROOT,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const lines = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);

describe('sweep --once --tags-only', () => {
  let h: Harness;
  let db: Server;
  let dbConnections = 0;
  const tmp = tempDir();
  let config: string;

  before(async () => {
    h = await harness({ groups: [GROUP, OTHER_GROUP] });
    // Where store.url points: a listener that only counts, so "the database was never contacted" is observed, not assumed.
    db = createServer((s) => {
      dbConnections++;
      s.destroy();
    });
    await new Promise<void>((r) => db.listen(0, '127.0.0.1', r));
    const port = (db.address() as { port: number }).port;
    config = join(tmp.dir, 'config.yaml');
    writeFileSync(
      config,
      stringify(
        testConfig(tmp.dir, {
          dev: { embeddedIdp: true },
          store: { url: `postgres://portcullis@127.0.0.1:${port}/portcullis` },
          audit: {},
          targets: [{ id: 'acme-dc01', connect: '10.0.0.5:3389', firewall: { kind: 'aws-security-group', region: REGION, securityGroupId: GROUP, endpoint: h.ep.url } }],
        }),
      ),
    );
  });
  after(async () => {
    await h.close();
    await new Promise<void>((r) => db.close(() => r()));
    tmp.cleanup();
  });

  it('revokes exactly the managed rules whose expiry tag has passed, leaves the rest, and never contacts the database', async () => {
    const now = Date.now();
    const open = (grantId: string, source: string, expiresAt: number, groupId = GROUP) =>
      h.make(groupId).open({ grantId: grantId as GrantId, targetId: 'acme-dc01', source, port: 3389, protocol: 'tcp', expiresAt });
    const expired = await open('g_expired', '198.51.100.1/32', now - 60_000);
    const expired6 = await open('g_expired6', '2001:db8::7/128', now - 1_000);
    const live = await open('g_live', '198.51.100.2/32', now + 3_600_000);
    // Two grants on one rule: the rule's expiry tag is the later one, so it stays.
    const shared = await open('g_shared_a', '198.51.100.3/32', now - 60_000);
    await open('g_shared_b', '198.51.100.3/32', now + 3_600_000);
    // A group no target of the config names: not this sweep's to touch, however overdue.
    const elsewhere = await open('g_elsewhere', '198.51.100.4/32', now - 60_000, OTHER_GROUP);
    // Someone's own rule, and a managed rule whose expiry tag is unreadable.
    const ec2 = new EC2Client({ region: REGION, endpoint: h.ep.url, maxAttempts: 1 });
    const raw = async (cidr: string, tags: { Key: string; Value: string }[]) => {
      const out = await ec2.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: GROUP,
          IpPermissions: [{ IpProtocol: 'tcp', FromPort: 3389, ToPort: 3389, IpRanges: [{ CidrIp: cidr }] }],
          ...(tags.length ? { TagSpecifications: [{ ResourceType: 'security-group-rule', Tags: tags }] } : {}),
        }),
      );
      return `${GROUP}/${out.SecurityGroupRules![0]!.SecurityGroupRuleId!}`;
    };
    const foreign = await raw('203.0.113.0/24', []);
    const undated = await raw('198.51.100.5/32', [
      { Key: 'portcullis:managed', Value: 'true' },
      { Key: 'portcullis:grant', Value: 'g_undated' },
      { Key: 'portcullis:expires', Value: 'soon' },
    ]);
    ec2.destroy();
    h.ep.resetLog();

    const r = await sweep(config);
    assert.equal(r.code, 0, r.stderr);
    const out = lines(r.stdout);
    const closed = out.filter((l) => l.type === 'rule.closed_by_tag');
    assert.deepEqual(closed.map((c) => c.ruleRef).sort(), [expired, expired6].sort());
    assert.deepEqual(closed.find((c) => c.ruleRef === expired)!.grants, ['g_expired']);
    const summary = out.find((l) => l.type === 'sweep.backend')!;
    assert.deepEqual(summary, { type: 'sweep.backend', backend: `aws:${REGION}/${GROUP}`, closed: 2, kept: 2, undated: [undated] });

    const left = (g: string) => h.ep.model.ingressRules(g).map((x) => `${g}/${x.id}`).sort();
    assert.deepEqual(left(GROUP), [live, shared, foreign, undated].sort());
    assert.deepEqual(left(OTHER_GROUP), [elsewhere]);
    // One revoke for the group, naming only the overdue rules; nothing was asked of the other group.
    assert.equal(h.ep.calls('RevokeSecurityGroupIngress'), 1);
    assert.ok(h.ep.log.every((c) => c.params.get('GroupId') !== OTHER_GROUP));
    assert.equal(dbConnections, 0, 'the database was never contacted');

    // Nothing left to do: a second run closes nothing.
    const again = await sweep(config);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(lines(again.stdout).filter((l) => l.type === 'rule.closed_by_tag').length, 0);
  });

  it('reports a backend it may not read (exit 1, the EC2 code named) and closes nothing there', async () => {
    const ref = await h.make().open({ grantId: 'g_denied' as GrantId, targetId: 'acme-dc01', source: '198.51.100.8/32', port: 3389, protocol: 'tcp', expiresAt: Date.now() - 1000 });
    h.ep.failNext(1, { code: 'UnauthorizedOperation', status: 403, message: 'You are not authorized to perform this operation.' }, 'DescribeSecurityGroupRules');
    const r = await sweep(config);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const summary = lines(r.stdout).find((l) => l.type === 'sweep.backend')!;
    assert.equal(summary.closed, 0);
    assert.match(summary.error.message, /UnauthorizedOperation|not authorized/);
    assert.ok(h.ep.model.ingressRules(GROUP).some((x) => `${GROUP}/${x.id}` === ref));
    h.ep.resetInjections();
  });
});

describe('sweep --once (through the store)', () => {
  it('expires what is due and reconciles, once, then exits; without --once it refuses (exit 2)', async () => {
    const tmp = tempDir();
    try {
      const config = join(tmp.dir, 'config.yaml');
      writeFileSync(config, stringify(testConfig(tmp.dir, { dev: { embeddedIdp: true }, targets: [{ id: 'demo-pc', firewall: { kind: 'simulated' } }] })));
      const r = await sweep(config, ['--once', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(lines(r.stdout), [{ type: 'sweep.store', expired: 0, pendingExpired: 0, orphansRemoved: 0, reopened: 0, settled: 0, failedBackends: 0 }]);
      const no = await sweep(config, []);
      assert.equal(no.code, 2);
      assert.match(no.stderr, /sweep needs --once/);
    } finally {
      tmp.cleanup();
    }
  });
});
