// idleTimeout in real namespaces: the whole broker in process, one connection through a grant; while
// data flows the grant stays open across sweeps spanning more than the timeout; once it stops, the
// grant closes as `idle` at the first sweep past the timeout. The test runs every sweep itself.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { requireOrSkip } from '../helpers/env.ts';
import { createLab, LAB_ADDR, netnsUnavailable } from '../helpers/netns.ts';
import { api, startBroker, tempDir, testConfig } from '../helpers/broker.ts';
import { startTestIdp, type TestIdp } from '../helpers/idp.ts';
import type { GrantId } from '../../src/domain/index.ts';

const unavailable = netnsUnavailable();
const PORT = 3390;
const SWEEP_MS = 1000;
const IDLE_MS = 5000;

describe('idleTimeout', { concurrency: false }, () => {
  let idp: TestIdp | undefined;
  let token: string;
  before(async () => {
    if (unavailable) return;
    idp = await startTestIdp({ mfa: 'amr-otp', users: { alice: { email: 'alice@example.test', groups: ['engineers', 'network-admins'] } } });
    token = await idp.getIdToken('alice');
  });
  after(async () => idp?.close());

  it('a grant with idleTimeout 5s stays open while data flows and closes as idle within one sweep after it stops', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    const lab = await createLab([]);
    const tmp = tempDir();
    const b = await startBroker(
      testConfig(tmp.dir, {
        oidc: { issuer: idp!.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp!.clients.web.id, secret: idp!.clients.web.secret }, cli: { id: idp!.clients.cli.id } } },
        reaper: { sweep: '0 0 0 1 1 *' },
        targets: [{ id: 'lab-gw', connect: `lab-gw.example.test:${PORT}`, ports: [PORT], protocols: ['tcp'], idleTimeout: '5s', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'nftables', netns: lab.gw } }],
      }),
    );
    try {
      await lab.echo(PORT);
      const g = await api(b.url, '/api/v1/grants', { token, body: { target: 'lab-gw', duration: '10m', reason: 'idle test', sourceIp: LAB_ADDR.client4 } });
      assert.equal(g.status, 201, JSON.stringify(g.body));
      const id = (g.body as { grant: { id: string } }).grant.id as GrantId;
      const state = async () => (await b.app.store.getGrant(id))!;
      const session = await lab.session(LAB_ADDR.gw4, PORT);

      // Data for longer than the timeout, a sweep every second: never idle.
      const flowingUntil = Date.now() + IDLE_MS + 2000;
      let n = 0;
      while (Date.now() < flowingUntil) {
        assert.equal(await session.send(`data-${n++}`), true);
        await b.app.gate.sweep();
        assert.equal((await state()).state, 'active', 'closed while data was flowing');
        await delay(SWEEP_MS);
      }
      assert.equal(await session.send('last'), true);
      const lastData = Date.now();

      // Silence: sweeps until it closes.
      let closedAt: number | undefined;
      while (closedAt === undefined) {
        await delay(SWEEP_MS);
        await b.app.gate.sweep();
        const s = await state();
        if (s.state !== 'active') closedAt = Date.now();
        assert.ok(Date.now() - lastData < IDLE_MS + 4 * SWEEP_MS, 'still open long after the idle timeout');
      }
      const s = await state();
      assert.equal(s.state, 'closed');
      assert.equal(s.closeReason, 'idle');
      // Never before the timeout (less the delayed ACK after the last echo); at most two sweep intervals after it
      // (one for the counter's last move to be seen, one for the sweep that finds it still).
      assert.ok(closedAt - lastData >= IDLE_MS - 200, `closed ${closedAt - lastData} ms after the last data`);
      assert.ok(closedAt - lastData <= IDLE_MS + 3 * SWEEP_MS, `closed ${closedAt - lastData} ms after the last data`);
      const events = (await b.app.store.auditEvents({ grant: id, limit: 100 })).map((e) => e.type);
      assert.ok(events.includes('grant.idle'), events.join(', '));
      assert.ok(events.includes('grant.closed'), events.join(', '));
      assert.equal(await session.send('after', 1000), false, 'the connection is cut (onExpiry defaults to cut)');
      session.close();
    } finally {
      await b.stop();
      await lab.destroy();
      tmp.cleanup();
    }
  });
});
