// Exposure scan over AWS security groups: what counts as exposed, --fix with audit, partial failures, and the CLI.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { AuditInput } from '../../src/audit/chain.ts';
import type { GrantId } from '../../src/domain/index.ts';
import { exposureScopes, runExposureScan } from '../../src/broker/exposure.ts';
import { EXIT_EXPOSED, EXIT_INCOMPLETE, exposureScanCommand } from '../../src/cli/exposure.ts';
import { TAG_GRANT, TAG_MANAGED } from '../../src/firewall/aws-sg.ts';
import { openDb } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { parseCidr } from '../ec2-endpoint/cidr.ts';
import { GROUP, harness, OTHER_GROUP, REGION, type Harness } from '../ec2-endpoint/harness.ts';
import type { PermissionInput } from '../ec2-endpoint/model.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SCOPE = `aws:${REGION}/${GROUP}`;

function perm(protocol: string, from: number, to: number, source: string, description?: string): PermissionInput {
  if (source.startsWith('sg-')) return { protocol, fromPort: from, toPort: to, source: { kind: 'group', groupId: source }, description };
  const parsed = parseCidr(source)!;
  return { protocol, fromPort: from, toPort: to, source: { kind: parsed.family === 4 ? 'v4' : 'v6', cidr: source, parsed }, description };
}

/** A group as one finds them in the wild: one Portcullis grant and a mix of hand-made rules. */
async function seed(h: Harness): Promise<void> {
  await h.adapter.open({ grantId: 'g-live' as GrantId, targetId: 'acme-dc01', source: '198.51.100.7/32', port: 3389, protocol: 'tcp', expiresAt: Date.now() + 3_600_000 });
  const m = h.ep.model;
  const none = new Map<string, string>();
  m.authorizeIngress(GROUP, [perm('tcp', 3389, 3389, '0.0.0.0/0', 'temporary - remove me')], none);
  m.authorizeIngress(GROUP, [perm('tcp', 3380, 3400, '::/0')], none);
  m.authorizeIngress(GROUP, [perm('tcp', 3389, 3389, '10.0.0.0/8', 'office VPN')], none);
  m.authorizeIngress(GROUP, [perm('-1', -1, -1, '192.0.2.0/24')], none);
  m.authorizeIngress(GROUP, [perm('udp', 3389, 3389, '0.0.0.0/0')], none);
  m.authorizeIngress(GROUP, [perm('tcp', 3389, 3389, OTHER_GROUP)], none);
  // A managed tag does not launder a rule open to everyone.
  m.authorizeIngress(GROUP, [perm('tcp', 3389, 3389, '203.0.113.0/24')], new Map([[TAG_MANAGED, 'true'], [TAG_GRANT, 'g-fake']]));
  m.authorizeIngress(GROUP, [perm('tcp', 3389, 3389, '0.0.0.0/1')], new Map([[TAG_MANAGED, 'true'], [TAG_GRANT, 'g-wide']]));
  // Not exposures: another port, ICMP.
  m.authorizeIngress(GROUP, [perm('tcp', 22, 22, '0.0.0.0/0')], none);
  m.authorizeIngress(GROUP, [perm('icmp', -1, -1, '0.0.0.0/0')], none);
}

describe('AWS exposure scan', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(async () => {
    await h.close();
  });
  beforeEach(() => {
    for (const g of [GROUP, OTHER_GROUP]) {
      const group = h.ep.model.groups.get(g)!;
      for (const r of [...group.rules.values()]) if (!r.isEgress) group.rules.delete(r.id);
    }
    h.ep.resetLog();
    h.ep.resetInjections();
  });

  it('reports world-open and unmanaged rules on a managed port, and nothing else', async () => {
    await seed(h);
    const found = await h.adapter.scanExposure([3389]);
    const summary = found.map((e) => `${e.why} ${e.protocol} ${e.fromPort}-${e.toPort} ${e.source}`).sort();
    assert.deepEqual(summary, [
      'unmanaged all 0-65535 192.0.2.0/24',
      'unmanaged tcp 3389-3389 10.0.0.0/8',
      `unmanaged tcp 3389-3389 ${OTHER_GROUP}`,
      'world tcp 3380-3400 ::/0',
      'world tcp 3389-3389 0.0.0.0/0',
      'world udp 3389-3389 0.0.0.0/0',
    ]);
    assert.ok(found.every((e) => e.scope === SCOPE && /^sg-[0-9a-f]+\/sgr-[0-9a-f]+$/.test(e.ref)));
    assert.equal(found.find((e) => e.source === '10.0.0.0/8')?.description, 'office VPN');
    // The managed /32 of a live grant is not an exposure; the egress allow-all is not inbound.
    assert.ok(!found.some((e) => e.source === '198.51.100.7/32'));
  });

  it('counts a managed-tagged rule open to the world as exposed', async () => {
    h.ep.model.authorizeIngress(GROUP, [perm('tcp', 3389, 3389, '0.0.0.0/0')], new Map([[TAG_MANAGED, 'true'], [TAG_GRANT, 'g-x']]));
    const found = await h.adapter.scanExposure([3389]);
    assert.deepEqual(found.map((e) => e.why), ['world']);
  });

  it('--fix removes every exposure in one batched revoke and audits each as exposure.fixed', async () => {
    await seed(h);
    const events: AuditInput[] = [];
    const { scopes } = exposureScopes(new Map([['acme-dc01', h.adapter]]), [target('acme-dc01')]);
    h.ep.resetLog();
    const report = await runExposureScan({ scopes, fix: true, actor: 'cli:alice', audit: (e) => void events.push(e) });
    assert.equal(report.exposures.length, 6);
    assert.equal(report.fixed.length, 6);
    assert.deepEqual(report.failures, []);
    assert.equal(h.ep.calls('RevokeSecurityGroupIngress'), 1);
    assert.deepEqual(new Set(events.map((e) => e.type)), new Set(['exposure.fixed']));
    assert.deepEqual(events.map((e) => e.ruleRef).sort(), report.fixed.map((f) => f.ref).sort());
    const world = events.find((e) => e.sourceIp === '0.0.0.0/0' && e.detail?.protocol === 'tcp');
    assert.deepEqual(world?.detail, { scope: SCOPE, why: 'world', protocol: 'tcp', fromPort: 3389, toPort: 3389, description: 'temporary - remove me' });
    assert.equal(world?.actor, 'cli:alice');
    assert.deepEqual(await h.adapter.scanExposure([3389]), []);
    // Managed rules (the live grant's and the tagged ones, which are the reconciler's business) and harmless rules stay.
    const left = h.ep.model.ingressRules(GROUP).map((r) => `${r.protocol}:${r.fromPort}:${r.cidrIpv4 ?? r.cidrIpv6}`).sort();
    assert.deepEqual(left, ['icmp:-1:0.0.0.0/0', 'tcp:22:0.0.0.0/0', 'tcp:3389:0.0.0.0/1', 'tcp:3389:198.51.100.7/32', 'tcp:3389:203.0.113.0/24']);
  });

  it('reports a failed fix and a failed scan without stopping the other backends', async () => {
    await seed(h);
    h.ep.model.authorizeIngress(OTHER_GROUP, [perm('tcp', 3389, 3389, '0.0.0.0/0')], new Map());
    const other = h.make(OTHER_GROUP);
    const missing = h.make('sg-0123456789abcdef0');
    const fws = new Map([['a', missing], ['b', h.adapter], ['c', other]]);
    const { scopes } = exposureScopes(fws, [target('a'), target('b'), target('c')]);
    h.ep.failNext(1, { code: 'UnauthorizedOperation', status: 403 }, 'RevokeSecurityGroupIngress');
    const events: AuditInput[] = [];
    const report = await runExposureScan({ scopes, fix: true, actor: 't', audit: (e) => void events.push(e) });
    assert.deepEqual(report.failures.map((f) => `${f.stage} ${f.scope} ${f.code}`), [
      `scan aws:${REGION}/sg-0123456789abcdef0 FIREWALL_ERROR`,
      `fix ${SCOPE} FIREWALL_ERROR`,
    ]);
    assert.equal(report.fixed.length, 1, 'the other group was still fixed');
    assert.equal(report.fixed[0]!.scope, `aws:${REGION}/${OTHER_GROUP}`);
    assert.equal(events.filter((e) => e.type === 'exposure.fix_failed').length, 6);
    assert.equal(events.filter((e) => e.type === 'exposure.fixed').length, 1);
  });

  it('scans each backend once, on the union of its targets ports, and skips backends that cannot see foreign rules', () => {
    const memoryLike = { kind: 'memory', scope: 'memory:x', simulated: true, open: async () => '', close: async () => {}, list: async () => [], check: async () => ({ ok: true, detail: '' }) };
    const fws = new Map<string, typeof h.adapter | typeof memoryLike>([['a', h.adapter], ['b', h.adapter], ['m', memoryLike]]);
    const { scopes, skipped } = exposureScopes(fws, [target('a', [3389]), target('b', [22, 3389]), target('m')]);
    assert.deepEqual(scopes.map((s) => [s.scope, s.ports, s.targets]), [[SCOPE, [22, 3389], ['a', 'b']]]);
    assert.deepEqual(skipped.map((s) => s.scope), ['memory:x']);
  });

  describe('portcullis exposure scan', () => {
    let dir: string;
    let configPath: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'portcullis-exposure-'));
      configPath = join(dir, 'portcullis.yaml');
      writeFileSync(
        configPath,
        [
          'dev: { embeddedIdp: true }',
          `store: { url: "sqlite:${join(dir, 'portcullis.db')}" }`,
          `audit: { jsonl: "${join(dir, 'audit.jsonl')}" }`,
          'targets:',
          // One target per security group (two on one group would admit to each other; the config refuses that).
          `  - { id: acme-dc01, ports: [3389, 3390], firewall: { kind: aws-security-group, region: ${REGION}, securityGroupId: ${GROUP}, endpoint: "${h.ep.url}" } }`,
          '  - { id: demo-pc, firewall: { kind: simulated } }',
          '',
        ].join('\n'),
      );
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('--json lists the exposures and exits 1 while they remain', async () => {
      await seed(h);
      const out = capture();
      const code = await exposureScanCommand({ config: configPath, json: true }, { out, err: capture() });
      assert.equal(code, EXIT_EXPOSED);
      const report = JSON.parse(out.text) as { exposures: { why: string }[]; scanned: { scope: string; ports: number[] }[]; skipped: { scope: string }[] };
      assert.equal(report.exposures.length, 6);
      assert.deepEqual(report.scanned, [{ scope: SCOPE, ports: [3389, 3390], targets: ['acme-dc01'] }]);
      assert.equal(report.skipped.length, 1);
    });

    it('prints a table, and with --fix removes them, records exposure.fixed in the audit chain and the JSONL file, then exits 0', async () => {
      await seed(h);
      const out = capture();
      assert.equal(await exposureScanCommand({ config: configPath }, { out, err: capture() }), EXIT_EXPOSED);
      assert.match(out.text, /^SCOPE\s+RULE\s+SOURCE\s+PORTS\s+PROTO\s+WHY\s+STATUS\s+DESCRIPTION$/m);
      assert.match(out.text, /0\.0\.0\.0\/0\s+3389\s+tcp\s+world\s+open\s+temporary - remove me/);
      assert.match(out.text, /6 exposure\(s\) found \(run with --fix to remove them\)/);

      const fixedOut = capture();
      assert.equal(await exposureScanCommand({ config: configPath, fix: true }, { out: fixedOut, err: capture(), actor: 'cli:test' }), 0);
      assert.match(fixedOut.text, /6 fixed, 0 remaining/);
      const db = await openDb(`sqlite:${join(dir, 'portcullis.db')}`);
      try {
        const store = new Store(db);
        const fixed = (await store.auditEvents()).filter((e) => e.type === 'exposure.fixed');
        assert.equal(fixed.length, 6);
        assert.ok(fixed.every((e) => e.actor === 'cli:test' && e.ruleRef?.startsWith(`${GROUP}/sgr-`)));
        assert.equal((await store.verifyAudit()).ok, true);
      } finally {
        await db.close();
      }
      const jsonl = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string });
      assert.equal(jsonl.filter((e) => e.type === 'exposure.fixed').length, 6);
      assert.equal(await exposureScanCommand({ config: configPath }, { out: capture(), err: capture() }), 0);
    });

    it('exits 3 when a backend could not be scanned', async () => {
      h.ep.failNext(10, { code: 'UnauthorizedOperation', status: 403 }, 'DescribeSecurityGroups');
      const err = capture();
      assert.equal(await exposureScanCommand({ config: configPath }, { out: capture(), err }), EXIT_INCOMPLETE);
      assert.match(err.text, /exposure scan failed on aws:eu-west-1\/sg-0aaaa1111bbbb2222: FIREWALL_ERROR/);
    });

    it('runs as the spawned binary with credentials from the environment', async () => {
      await seed(h);
      const r = await run(process.execPath, [join(ROOT, 'bin', 'portcullis.js'), 'exposure', 'scan', '--config', configPath, '--json', '--port', '3389'], { ...process.env, CI: process.env.CI ?? '' });
      assert.equal(r.code, EXIT_EXPOSED, r.stderr);
      const report = JSON.parse(r.stdout) as { exposures: unknown[] };
      assert.equal(report.exposures.length, 6);
      const bad = await run(process.execPath, [join(ROOT, 'bin', 'portcullis.js'), 'exposure', 'scan', '--config', configPath, '--port', '70000'], process.env);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /not a port between 1 and 65535/);
    });
  });
});

function target(id: string, ports: number[] = [3389]) {
  return { id, ports, tags: {}, firewall: { kind: 'memory' as const } };
}

function capture() {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
}

/** Asynchronous on purpose: the stand-in endpoint answers from this very process. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
