// Who knocks on the gate: real nft in the test's namespaces counts dropped attempts per source; the
// broker reads them on a sweep the test runs, and /metrics, the `gate.attempts` summary, the
// `portcullis attempts` CLI and the open-window alert (through the real webhook notifier to a local
// receiver) all show the same exact counts. The set's bound holds under 1,000 distinct sources.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { requireOrSkip } from '../helpers/env.ts';
import { createLab, LAB_ADDR, netnsUnavailable, nftIn, type Lab } from '../helpers/netns.ts';
import { api, startBroker, tempDir, testConfig } from '../helpers/broker.ts';
import { startTestIdp, type TestIdp } from '../helpers/idp.ts';
import { NftablesAdapter } from '../../src/firewall/nftables.ts';
import { Outbox } from '../../src/notify/outbox.ts';
import { webhookSink } from '../../src/notify/webhook.ts';
import { openDb } from '../../src/store/db.ts';
import { createLogger } from '../../src/log.ts';
import { Store } from '../../src/store/store.ts';
import { AttemptWatcher } from '../../src/broker/attempts.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const unavailable = netnsUnavailable();
const NEVER = '0 0 0 1 1 *';
const THIRD = '10.77.0.33';

/** `n` TCP connection attempts from `from`, all at once; each gives up before the first SYN retransmit (1 s), so one attempt is one packet. */
async function knock(lab: Lab, from: string, n: number, port = 3389): Promise<void> {
  const results = await Promise.all(Array.from({ length: n }, () => lab.probe(LAB_ADDR.gw4, { from, port, timeoutMs: 300 })));
  assert.ok(results.every((ok) => !ok), `an attempt from ${from} got through the closed gate`);
}

function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const m = /^[^{]+\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const have = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[2]);
  }
  return undefined;
}

describe('blocked attempts per source', { concurrency: false }, () => {
  let idp: TestIdp | undefined;
  let token: string;
  before(async () => {
    if (unavailable) return;
    // A network admin may name a source other than the caller (the lab's client is not 127.0.0.1).
    idp = await startTestIdp({ mfa: 'amr-otp', users: { alice: { email: 'alice@example.test', groups: ['engineers', 'network-admins'] } } });
    token = await idp.getIdToken('alice');
  });
  after(async () => idp?.close());
  const ready = (t: Parameters<typeof requireOrSkip>[0]) => requireOrSkip(t, unavailable === undefined, unavailable ?? '');

  it('200 attempts from 3 sources: exact per-source counts in /metrics, gate.attempts and `portcullis attempts --json`; a knock on the open window alerts through the webhook', async (t) => {
    if (!ready(t)) return;
    const lab = await createLab();
    lab.addClientAddresses([THIRD]);
    const tmp = tempDir();
    const received: { type: string; detail?: Record<string, unknown> }[] = [];
    const hook: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as { type: string });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const raw = testConfig(tmp.dir, {
      oidc: { issuer: idp!.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp!.clients.web.id, secret: idp!.clients.web.secret }, cli: { id: idp!.clients.cli.id } } },
      reaper: { sweep: NEVER },
      // One window for the whole test (flushed by hand) and no rate alert: the counts are the subject here.
      watch: { attempts: { window: '1h', alertPerMinute: 0 } },
      targets: [{ id: 'lab-gw', connect: 'lab-gw.example.test:3389', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'nftables', netns: lab.gw } }],
    });
    const configFile = join(tmp.dir, 'config.yaml');
    writeFileSync(configFile, stringify(raw));
    const b = await startBroker(raw);
    const db = await openDb(String((raw.store as { url: string }).url));
    const outbox = new Outbox({
      db: db.kysely,
      auditAfter: (seq, limit) => b.app.store.auditEvents({ afterSeq: seq, limit }),
      headSeq: async () => (await b.app.store.auditEvents({ limit: 100_000 })).at(-1)?.seq ?? 0,
      sinks: [webhookSink(0, { url: `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`, secret: 'a-webhook-secret-of-16+' })],
      log: createLogger('silent'),
      scanEveryMs: 3_600_000,
    });
    try {
      await outbox.start();
      await outbox.idle();
      // The start sweep read the (empty) counters; everything from here is new.
      await knock(lab, LAB_ADDR.client4, 110);
      await knock(lab, LAB_ADDR.stranger4, 60);
      await knock(lab, THIRD, 30);
      await b.app.gate.sweep();

      const metrics = (await api(b.url, '/metrics')).body as string;
      assert.equal(metric(metrics, 'portcullis_gate_blocked_attempts_total', { target: 'lab-gw', port: '3389', protocol: 'tcp' }), 200);
      assert.equal(metric(metrics, 'portcullis_gate_attempt_sources', { target: 'lab-gw' }), 3);
      for (const [source, n] of [[LAB_ADDR.client4, 110], [LAB_ADDR.stranger4, 60], [THIRD, 30]] as const) {
        assert.equal(metric(metrics, 'portcullis_gate_attempts_by_source', { source, target: 'lab-gw', port: '3389', protocol: 'tcp' }), n, `${source} in /metrics`);
      }

      await b.app.attempts.flush();
      const summaries = (await b.app.store.auditEvents({ limit: 10_000 })).filter((e) => e.type === 'gate.attempts');
      assert.equal(summaries.length, 1);
      const d = summaries[0]!.detail as { total: number; sources: number; overflow: number; top: { source: string; count: number; firstSeen: string; lastSeen: string }[] };
      assert.equal(d.total, 200);
      assert.equal(d.sources, 3);
      assert.equal(d.overflow, 0);
      assert.deepEqual(d.top.map((x) => [x.source, x.count]), [[LAB_ADDR.client4, 110], [LAB_ADDR.stranger4, 60], [THIRD, 30]]);
      assert.ok(d.top.every((x) => x.firstSeen <= x.lastSeen));

      const cli = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'attempts', '--since', '1h', '--target', 'lab-gw', '--json', '--config', configFile], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(cli.status, 0, cli.stderr);
      const out = JSON.parse(cli.stdout) as { total: number; windows: number; sources: { source: string; count: number; target: string; port: number; protocol: string }[] };
      assert.equal(out.total, 200);
      assert.equal(out.windows, 1);
      assert.deepEqual(out.sources.map((s) => [s.source, s.target, s.protocol, s.port, s.count]), [
        [LAB_ADDR.client4, 'lab-gw', 'tcp', 3389, 110],
        [LAB_ADDR.stranger4, 'lab-gw', 'tcp', 3389, 60],
        [THIRD, 'lab-gw', 'tcp', 3389, 30],
      ]);
      const other = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'attempts', '--target', 'nobody', '--json', '--config', configFile], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(JSON.parse(other.stdout).total, 0, other.stderr);

      // No alert yet: nothing is open. Now open the port for the client and knock from the stranger.
      await outbox.idle();
      outbox.kick();
      await outbox.idle();
      assert.deepEqual(received.filter((e) => e.type === 'gate.alert'), []);
      const g = await api(b.url, '/api/v1/grants', { token, body: { target: 'lab-gw', duration: '10m', reason: 'attempts test', sourceIp: LAB_ADDR.client4 } });
      assert.equal(g.status, 201, JSON.stringify(g.body));
      assert.equal(await lab.probe(LAB_ADDR.gw4, {}), true, 'the grant admits its source');
      await knock(lab, LAB_ADDR.stranger4, 5);
      await b.app.gate.sweep();
      outbox.kick();
      await outbox.idle();
      const alerts = received.filter((e) => e.type === 'gate.alert');
      assert.equal(alerts.length, 1, JSON.stringify(received));
      const a = alerts[0]!.detail as { kind: string; source: string; target: string; port: number; count: number; openFor: { grant: string }[] };
      assert.equal(a.kind, 'open-window');
      assert.equal(a.source, LAB_ADDR.stranger4);
      assert.equal(a.target, 'lab-gw');
      assert.equal(a.count, 5);
      assert.deepEqual(a.openFor.map((o) => o.grant), [(g.body as { grant: { id: string } }).grant.id]);
    } finally {
      await outbox.stop();
      await db.close();
      await b.stop();
      await new Promise<void>((r) => hook.close(() => r()));
      await lab.destroy();
      tmp.cleanup();
    }
  });

  it('the set holds at most its bound when 1,000 sources knock: the rest is counted as overflow, and the busiest sources stay exact', async (t) => {
    if (!ready(t)) return;
    const lab = await createLab();
    try {
      const fw = new NftablesAdapter({ kind: 'nftables', netns: lab.gw, table: 'portcullis' }, { attempts: { size: 256, timeoutSeconds: 3600 } });
      await fw.init();
      lab.addClientAddresses([THIRD]);
      const flood = Array.from({ length: 1000 }, (_, i) => `10.78.${Math.floor(i / 250)}.${(i % 250) + 1}`);
      lab.addClientAddresses(flood);
      await knock(lab, LAB_ADDR.client4, 50);
      await knock(lab, LAB_ADDR.stranger4, 30);
      await knock(lab, THIRD, 20);
      // One attempt from each of 1,000 other sources: 253 fit in the set, 747 do not.
      for (let i = 0; i < flood.length; i += 250) await Promise.all(flood.slice(i, i + 250).map((from) => knock(lab, from, 1)));
      const first = await fw.readAttempts();
      assert.equal(first.counts.length, 256, 'the set is full, not larger');
      assert.equal(first.overflow, 1000 - 253);
      // The same flood again: nothing grows but the overflow counter.
      for (let i = 0; i < flood.length; i += 250) await Promise.all(flood.slice(i, i + 250).map((from) => knock(lab, from, 1)));
      await knock(lab, LAB_ADDR.client4, 10);
      await knock(lab, LAB_ADDR.stranger4, 10);
      await knock(lab, THIRD, 10);
      const second = await fw.readAttempts();
      assert.equal(second.counts.length, 256);
      const inSet = JSON.parse(nftIn(lab.gw, ['-j', 'list', 'set', 'inet', 'portcullis', 'attempts4'])).nftables.find((x: { set?: unknown }) => x.set).set;
      assert.equal(inSet.elem.length, 256, 'the kernel holds the bound');
      assert.equal(inSet.size, 256);
      // Of the flood, the 253 in the set were counted per source; the other 747 twice, as overflow.
      assert.equal(second.overflow, 2 * 747);
      const top = [...second.counts].sort((a, b) => b.packets - a.packets).slice(0, 4);
      assert.deepEqual(top.slice(0, 3).map((c) => [c.source, c.packets]), [[LAB_ADDR.client4, 60], [LAB_ADDR.stranger4, 40], [THIRD, 30]]);
      assert.equal(top[3]!.packets, 2, 'a flood source in the set: its two attempts');
      assert.equal(second.counts.reduce((n, c) => n + c.packets, 0) + second.overflow, 130 + 2000);
    } finally {
      await lab.destroy();
    }
  });

  it('a source above watch.attempts.alertPerMinute raises one gate.alert per window', async (t) => {
    if (!ready(t)) return;
    const lab = await createLab();
    const tmp = tempDir();
    const db = await openDb(`sqlite:${join(tmp.dir, 'p.db')}`);
    try {
      const fw = new NftablesAdapter({ kind: 'nftables', netns: lab.gw, table: 'portcullis' });
      await fw.init();
      const store = new Store(db);
      // A controlled clock: one minute between sweeps, so the rate is the count per minute exactly.
      let now = Date.parse('2026-01-01T00:00:00Z');
      const w = new AttemptWatcher({ store, firewalls: new Map([['lab', fw]]), log: createLogger('silent'), now: () => now, settings: { windowMs: 3_600_000, top: 5, alertPerMinute: 40, alertOpenWindow: true } });
      await w.sweep();
      await knock(lab, LAB_ADDR.client4, 41);
      await knock(lab, LAB_ADDR.stranger4, 40);
      now += 60_000;
      await w.sweep();
      const alerts = async () => (await store.auditEvents({ limit: 1000 })).filter((e) => e.type === 'gate.alert').map((e) => e.detail as { kind: string; source: string; count: number; perMinute: number; limit: number });
      assert.deepEqual(await alerts(), [{ kind: 'rate', source: LAB_ADDR.client4, target: '*', port: 3389, protocol: 'tcp', count: 41, perMinute: 41, limit: 40 }], 'only the source above the rate');
      await knock(lab, LAB_ADDR.client4, 50);
      now += 60_000;
      await w.sweep();
      assert.equal((await alerts()).length, 1, 'one alert per source per window');
    } finally {
      await db.close();
      await lab.destroy();
      tmp.cleanup();
    }
  });
});
