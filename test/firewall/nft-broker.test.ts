// The whole broker (spawned `portcullis serve`) with an nftables target in the test's namespace:
// SIGKILL it during a grant, and access still ends at expiry; the restarted broker reconciles.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createNftablesAdapter } from '../../src/firewall/nftables.ts';
import { openDb } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { closesAtExpiry, createLab, LAB_ADDR, netnsUnavailable, nftIn, type Lab } from '../helpers/netns.ts';
import { api, spawnBroker, tempDir, testConfig, waitFor } from '../helpers/broker.ts';
import { startTestIdp, type TestIdp } from '../helpers/idp.ts';

const unavailable = netnsUnavailable();

describe('broker with an nftables target, killed during a grant', { concurrency: false }, () => {
  let idp: TestIdp | undefined;
  let lab: Lab | undefined;
  let token: string;
  before(async () => {
    if (unavailable) return;
    lab = await createLab();
    // network-admins: the grants name the client namespace's address, not the caller's (loopback): global/source-is-caller.
    idp = await startTestIdp({ mfa: 'amr-otp', users: { alice: { email: 'alice@example.test', groups: ['engineers', 'network-admins'] } } });
    token = await idp.getIdToken('alice');
  });
  after(async () => {
    await idp?.close();
    await lab?.destroy();
  });

  const config = (dir: string) =>
    testConfig(dir, {
      oidc: { issuer: idp!.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp!.clients.web.id, secret: idp!.clients.web.secret }, cli: { id: idp!.clients.cli.id } } },
      targets: [{ id: 'lab-gw', connect: `${LAB_ADDR.gw4}:3389`, ports: [3389], tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'nftables', table: 'portcullis', netns: lab!.gw } }],
    });

  it('access ends at the kernel timeout with no broker running; the restarted broker closes the grant and removes orphans', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    const tmp = tempDir();
    try {
      const b1 = await spawnBroker(config(tmp.dir), tmp.dir);
      assert.equal(await lab!.connect(LAB_ADDR.gw4), false, 'the broker raised the gate at start');
      const res = await api(b1.url, '/api/v1/grants', { token, body: { target: 'lab-gw', duration: '10s', reason: 'nft crash test', sourceIp: LAB_ADDR.client4 } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const grant = res.body.grant as { id: string; expiresAt: number | string };
      const expiresAt = typeof grant.expiresAt === 'number' ? grant.expiresAt : Date.parse(grant.expiresAt);
      const probe = createNftablesAdapter({ kind: 'nftables', table: 'portcullis', netns: lab!.gw });
      const held = await probe.list();
      assert.deepEqual(held.map((r) => [r.grantIds, r.source, r.port, r.expiresAt]), [[[grant.id], `${LAB_ADDR.client4}/32`, 3389, expiresAt]]);
      assert.equal(await lab!.connect(LAB_ADDR.gw4), true, 'open during the grant');

      await b1.kill('SIGKILL');
      // (10 s leaves room for a slow broker start on a loaded machine; the point is what happens next.)
      assert.ok(Date.now() < expiresAt - 1000, 'the grant outlived the kill (test timing)');
      assert.equal(await lab!.connect(LAB_ADDR.gw4), true, 'still open with the broker dead (until expiry)');
      await closesAtExpiry(lab!, LAB_ADDR.gw4, expiresAt);
      assert.deepEqual(await probe.list(), [], 'the kernel removed the element');

      // An element no grant explains, as a crashed second broker or a hand edit might leave.
      nftIn(lab!.gw, ['-f', '-'], `add element inet portcullis g4_3 { 192.0.2.77 . ${LAB_ADDR.gw4} . tcp . 3389 timeout 60s comment "portcullis grant=ghost-1 exp=${Date.now() + 60_000}" }\n`);
      const b2 = await spawnBroker(config(tmp.dir), tmp.dir);
      try {
        const g = await waitFor('grant closed by the restarted broker', async () => {
          const r = (await api(b2.url, `/api/v1/grants/${grant.id}`, { token })).body.grant as { state: string; closeReason: string };
          return r.state === 'closed' ? r : undefined;
        });
        assert.equal(g.closeReason, 'expired');
        await waitFor('orphan removed', async () => (await probe.list()).length === 0);
      } finally {
        await b2.kill('SIGTERM');
      }
      const db = await openDb(`sqlite:${join(tmp.dir, 'portcullis.db')}`);
      try {
        const store = new Store(db);
        assert.equal((await store.verifyAudit()).ok, true, 'the audit chain verifies');
        const orphan = (await store.auditEvents({ grant: 'ghost-1' })).map((e) => e.type);
        assert.deepEqual(orphan, ['reconcile.orphan_removed']);
        const types = (await store.auditEvents({ grant: grant.id })).map((e) => e.type);
        assert.ok(types.includes('rule.opened') && types.includes('grant.expired'), types.join(', '));
      } finally {
        await db.close();
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('restarted during the grant, the broker keeps the live element and a revoke closes it', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    const tmp = tempDir();
    try {
      const b1 = await spawnBroker(config(tmp.dir), tmp.dir);
      const res = await api(b1.url, '/api/v1/grants', { token, body: { target: 'lab-gw', duration: '60s', reason: 'nft restart test', sourceIp: LAB_ADDR.client4 } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const id = res.body.grant.id as string;
      await b1.kill('SIGKILL');
      const b2 = await spawnBroker(config(tmp.dir), tmp.dir);
      try {
        const g = (await api(b2.url, `/api/v1/grants/${id}`, { token })).body.grant as { state: string; ruleRef: string };
        assert.equal(g.state, 'active');
        assert.equal(await lab!.connect(LAB_ADDR.gw4), true, 'the reconciler kept the live grant open');
        const revoked = await api(b2.url, `/api/v1/grants/${id}/revoke`, { token, body: {} });
        assert.equal(revoked.body.grant.state, 'closed');
        assert.equal(await lab!.connect(LAB_ADDR.gw4), false, 'revoke closed it before expiry');
      } finally {
        await b2.kill('SIGTERM');
      }
    } finally {
      tmp.cleanup();
    }
  });
});
