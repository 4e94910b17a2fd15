// The gate is enforced, not assumed: the whole broker (in process, real nft in the test's namespaces)
// against someone flushing its baseline, a namespace that does not exist yet, and two targets behind
// one gateway. Sweeps are run by the test (`reaper.sweep()`), so "within one sweep" is exact, not timed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireOrSkip } from '../helpers/env.ts';
import { createLab, LAB_ADDR, labId, netnsUnavailable, nftIn, type Lab } from '../helpers/netns.ts';
import { api, startBroker, tempDir, testConfig, type RunningBroker } from '../helpers/broker.ts';
import { startTestIdp, type TestIdp } from '../helpers/idp.ts';

const unavailable = netnsUnavailable();
/** A cron that never fires during a test: the test runs each sweep itself. */
const NEVER = '0 0 0 1 1 *';

interface Reach {
  tcp: boolean;
  udp: boolean;
}

describe('the nft gate is verified and restored every sweep', { concurrency: false }, () => {
  let idp: TestIdp | undefined;
  let token: string;
  before(async () => {
    if (unavailable) return;
    idp = await startTestIdp({ mfa: 'amr-otp', users: { alice: { email: 'alice@example.test', groups: ['engineers', 'network-admins'] } } });
    token = await idp.getIdToken('alice');
  });
  after(async () => idp?.close());

  const config = (dir: string, targets: unknown[]) =>
    testConfig(dir, {
      oidc: { issuer: idp!.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp!.clients.web.id, secret: idp!.clients.web.secret }, cli: { id: idp!.clients.cli.id } } },
      reaper: { sweep: NEVER },
      targets,
    });
  const ready = (t: Parameters<typeof requireOrSkip>[0]) => requireOrSkip(t, unavailable === undefined, unavailable ?? '');
  const reach = async (lab: Lab, host: string, from?: string): Promise<Reach> => ({
    tcp: await lab.probe(host, { proto: 'tcp', from }),
    udp: await lab.probe(host, { proto: 'udp', from }),
  });
  const grant = (b: RunningBroker, target: string, sourceIp: string) =>
    api(b.url, '/api/v1/grants', { token, body: { target, duration: '10m', reason: 'gate test', sourceIp } });
  const auditOf = async (b: RunningBroker, type: string) => (await b.app.store.auditEvents({ limit: 10_000 })).filter((e) => e.type === type);

  it('after flush ruleset, delete table, flush gate chain or flush ports set: not ready, refuses, and one sweep closes 3389 again with the live grant put back', async (t) => {
    if (!ready(t)) return;
    const lab = await createLab();
    const tmp = tempDir();
    // No destination (connect is a name): the target's ports are guarded in the `ports` set.
    const b = await startBroker(config(tmp.dir, [{ id: 'lab-gw', connect: 'lab-gw.example.test:3389', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'nftables', netns: lab.gw } }]));
    try {
      const host = LAB_ADDR.gw4;
      assert.deepEqual(await reach(lab, host, LAB_ADDR.stranger4), { tcp: false, udp: false }, 'the gate is up at start');
      assert.equal((await api(b.url, '/readyz')).status, 200);
      const g = await grant(b, 'lab-gw', LAB_ADDR.client4);
      assert.equal(g.status, 201, JSON.stringify(g.body));
      assert.deepEqual(await reach(lab, host), { tcp: true, udp: true }, 'the grant admits its source on TCP and UDP');

      const breakages: [string, string[], string][] = [
        ['flush ruleset', ['flush', 'ruleset'], 'table inet portcullis'],
        ['delete table', ['delete', 'table', 'inet', 'portcullis'], 'table inet portcullis'],
        ['flush gate chain', ['flush', 'chain', 'inet', 'portcullis', 'gate'], 'chain gate rules'],
        ['flush ports set', ['flush', 'set', 'inet', 'portcullis', 'ports'], 'set ports elements'],
      ];
      for (const [what, args, part] of breakages) {
        const restoredBefore = (await auditOf(b, 'gate.restored')).length;
        nftIn(lab.gw, args);
        assert.deepEqual(await reach(lab, host, LAB_ADDR.stranger4), { tcp: true, udp: true }, `${what}: 3389 is open to anyone (what the sweep must repair)`);
        const rz = await api(b.url, '/readyz');
        assert.equal(rz.status, 503, `${what}: /readyz is not ready in between`);
        assert.match(JSON.stringify(rz.body), /gate NOT in place for lab-gw/);
        const refused = await grant(b, 'lab-gw', LAB_ADDR.stranger4);
        assert.equal(refused.status, 503, `${what}: ${JSON.stringify(refused.body)}`);
        assert.equal(refused.body.error.code, 'FIREWALL_UNAVAILABLE');

        await b.app.reaper.sweep();

        assert.deepEqual(await reach(lab, host, LAB_ADDR.stranger4), { tcp: false, udp: false }, `${what}: refused again after one sweep`);
        assert.deepEqual(await reach(lab, host), { tcp: true, udp: true }, `${what}: the live grant still admits its source`);
        const events = await auditOf(b, 'gate.restored');
        assert.equal(events.length, restoredBefore + 1, `${what}: one gate.restored`);
        const detail = events.at(-1)!.detail as { missing: string[]; targets: string[]; backend: string };
        assert.ok(detail.missing.includes(part), `${what}: names ${part} (got ${detail.missing.join(', ')})`);
        assert.deepEqual(detail.targets, ['lab-gw']);
        assert.equal((await api(b.url, '/readyz')).status, 200, `${what}: ready again`);
      }
      const metrics = (await api(b.url, '/metrics')).body as string;
      assert.match(metrics, /portcullis_gate_restored_total\{backend="nftables:[^"]+"\} 5/, 'four restorations and the first install');
      assert.equal((await b.app.store.verifyAudit()).ok, true);
    } finally {
      await b.stop();
      await lab.destroy();
      tmp.cleanup();
    }
  });

  it('a broker started with a missing namespace starts, is not ready, refuses grants for that target, and becomes ready when the namespace appears', async (t) => {
    if (!ready(t)) return;
    const id = labId();
    const tmp = tempDir();
    let lab: Lab | undefined;
    const b = await startBroker(config(tmp.dir, [
      { id: 'later-gw', connect: `${LAB_ADDR.gw4}:3389`, tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'nftables', netns: `${id}-gw` } },
      { id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } },
    ]));
    try {
      assert.equal((await api(b.url, '/healthz')).status, 200, 'it started');
      const rz = await api(b.url, '/readyz');
      assert.equal(rz.status, 503);
      assert.equal(rz.body.checks.gate.ok, false);
      assert.match(rz.body.checks.gate.detail, /gate not in place for later-gw/);
      const refused = await grant(b, 'later-gw', LAB_ADDR.client4);
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'FIREWALL_UNAVAILABLE');
      assert.equal((await grant(b, 'lab-pc', LAB_ADDR.client4)).status, 201, 'other targets are served');
      assert.equal((await auditOf(b, 'gate.unavailable')).length, 1);
      await b.app.reaper.sweep();
      assert.equal((await auditOf(b, 'gate.unavailable')).length, 1, 'one audit event per fall, not per sweep');

      lab = await createLab([3389], { id });
      assert.equal(await lab.connect(LAB_ADDR.gw4), true, 'no gate yet in the new namespace');
      await b.app.reaper.sweep();
      const ok = await api(b.url, '/readyz');
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.deepEqual(await reach(lab, LAB_ADDR.gw4), { tcp: false, udp: false }, 'the sweep raised the gate');
      const g = await grant(b, 'later-gw', LAB_ADDR.client4);
      assert.equal(g.status, 201, JSON.stringify(g.body));
      assert.deepEqual(await reach(lab, LAB_ADDR.gw4), { tcp: true, udp: true });
      assert.deepEqual(await reach(lab, LAB_ADDR.gw4, LAB_ADDR.stranger4), { tcp: false, udp: false });
    } finally {
      await b.stop();
      await lab?.destroy();
      tmp.cleanup();
    }
  });

  it('one grant admits to one target: two targets behind one gateway, a grant on A does not admit to B', async (t) => {
    if (!ready(t)) return;
    const lab = await createLab();
    const tmp = tempDir();
    const b = await startBroker(config(tmp.dir, [
      { id: 'dev-pc', connect: `${LAB_ADDR.gw4}:3389`, destination: [LAB_ADDR.gw4, LAB_ADDR.gw6], tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'nftables', netns: lab.gw } },
      { id: 'prod-dc', connect: `${LAB_ADDR.other4}:3389`, tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'nftables', netns: lab.gw } },
    ]));
    try {
      assert.deepEqual(await reach(lab, LAB_ADDR.gw4), { tcp: false, udp: false });
      assert.deepEqual(await reach(lab, LAB_ADDR.other4), { tcp: false, udp: false });
      const a = await grant(b, 'dev-pc', LAB_ADDR.client4);
      assert.equal(a.status, 201, JSON.stringify(a.body));
      assert.deepEqual(await reach(lab, LAB_ADDR.gw4), { tcp: true, udp: true }, 'A admits its source');
      assert.deepEqual(await reach(lab, LAB_ADDR.other4), { tcp: false, udp: false }, 'the grant on A does not admit to B');
      const a6 = await grant(b, 'dev-pc', LAB_ADDR.client6);
      assert.equal(a6.status, 201, JSON.stringify(a6.body));
      assert.deepEqual(await reach(lab, LAB_ADDR.gw6), { tcp: true, udp: true }, 'A is one machine on two addresses');
      assert.equal(await lab.connect(LAB_ADDR.other6), true, 'an address no target names is not guarded (lab sanity)');

      // B's guard lost: the sweep restores it, and the grant on A still does not reach B.
      nftIn(lab.gw, ['flush', 'set', 'inet', 'portcullis', 'guarded4']);
      assert.equal(await lab.connect(LAB_ADDR.other4), true);
      await b.app.reaper.sweep();
      assert.deepEqual(await reach(lab, LAB_ADDR.other4), { tcp: false, udp: false });
      assert.deepEqual(await reach(lab, LAB_ADDR.gw4), { tcp: true, udp: true });

      const bGrant = await grant(b, 'prod-dc', LAB_ADDR.client4);
      assert.equal(bGrant.status, 201, JSON.stringify(bGrant.body));
      assert.deepEqual(await reach(lab, LAB_ADDR.other4), { tcp: true, udp: true }, 'B opens with its own grant');
    } finally {
      await b.stop();
      await lab.destroy();
      tmp.cleanup();
    }
  });
});
