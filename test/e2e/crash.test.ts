// Crash safety: SIGKILL the broker at each step of opening and closing, restart it, and find no
// orphan rule and no lost or stuck grant.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { GrantId } from '../../src/domain/index.ts';
import { createSimulatedAdapter } from '../../src/firewall/simulated.ts';
import { openDb } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { api, spawnBroker, tempDir, testConfig, waitFor } from '../helpers/broker.ts';
import { startTestIdp, type TestIdp } from '../helpers/idp.ts';

describe('crash safety (SIGKILL, then restart)', () => {
  let idp: TestIdp;
  let token: string;
  let bobToken: string;
  before(async () => {
    idp = await startTestIdp({ mfa: 'amr-otp', users: { alice: { email: 'alice@example.test', groups: ['engineers'] }, bob: { email: 'bob@example.test', groups: ['approvers'] } } });
    token = await idp.getIdToken('alice');
    bobToken = await idp.getIdToken('bob');
  });
  after(async () => {
    await idp?.close();
  });

  function config(dir: string) {
    return testConfig(dir, {
      oidc: { issuer: idp.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } } },
      targets: [
        { id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'simulated' } },
        { id: 'prod-pc', tags: { env: 'prod', customer: 'internal' }, firewall: { kind: 'simulated' } },
      ],
    });
  }

  /** What the backend holds and what the store says, read from outside the broker. */
  async function inspect(dir: string, id?: string, target = 'lab-pc') {
    const fw = createSimulatedAdapter(join(dir, 'simulated-firewall.db'), target);
    const db = await openDb(`sqlite:${join(dir, 'portcullis.db')}`);
    const store = new Store(db);
    try {
      const rules = await fw.list();
      const grant = id ? await store.getGrant(id as GrantId) : undefined;
      const all = await store.listGrants();
      const chain = await store.verifyAudit();
      const events = id ? (await store.auditEvents({ grant: id })).map((e) => e.type) : [];
      return { rules, grant, all, chain, events };
    } finally {
      await fw.shutdown!();
      await db.close();
    }
  }

  async function crashDuringRequest(dir: string, failpoint: string, duration: string): Promise<string> {
    const b = await spawnBroker(config(dir), dir, { PORTCULLIS_FAILPOINTS: failpoint });
    const exited = new Promise((r) => b.child.once('exit', r));
    await assert.rejects(api(b.url, '/api/v1/grants', { token, body: { target: 'lab-pc', duration, reason: 'crash test' } }));
    await exited;
    assert.equal(b.child.signalCode, 'SIGKILL', b.output());
    const s = await inspect(dir);
    assert.equal(s.all.length, 1);
    return s.all[0]!.id;
  }

  test('killed after the intent is stored, before the firewall call: the grant fails, no rule', async () => {
    const tmp = tempDir();
    try {
      const id = await crashDuringRequest(tmp.dir, 'after-open-intent', '30s');
      const before = await inspect(tmp.dir, id);
      assert.equal(before.grant!.state, 'opening', 'the intent was durable before the firewall call');
      assert.equal(before.rules.length, 0);

      const b = await spawnBroker(config(tmp.dir), tmp.dir);
      try {
        const g = (await api(b.url, `/api/v1/grants/${id}`, { token })).body.grant;
        assert.equal(g.state, 'failed');
        assert.equal(g.failure, 'INTERRUPTED');
      } finally {
        await b.kill('SIGTERM');
      }
      const s = await inspect(tmp.dir, id);
      assert.equal(s.rules.length, 0);
      assert.equal(s.chain.ok, true);
      assert.deepEqual(s.events, ['grant.requested', 'grant.approved', 'rule.opening', 'grant.failed']);
    } finally {
      tmp.cleanup();
    }
  });

  test('killed right after the firewall opened the rule: the restarted broker adopts it, then closes it', async () => {
    const tmp = tempDir();
    try {
      const id = await crashDuringRequest(tmp.dir, 'after-firewall-open', '60s');
      const before = await inspect(tmp.dir, id);
      assert.equal(before.grant!.state, 'opening');
      assert.equal(before.rules.length, 1, 'the rule exists, unknown to the store');
      assert.deepEqual(before.rules[0]!.grantIds, [id]);

      const b = await spawnBroker(config(tmp.dir), tmp.dir);
      try {
        const g = (await api(b.url, `/api/v1/grants/${id}`, { token })).body.grant;
        assert.equal(g.state, 'active', 'the rule was adopted');
        const revoked = await api(b.url, `/api/v1/grants/${id}/revoke`, { token, body: {} });
        assert.equal(revoked.body.grant.state, 'closed');
      } finally {
        await b.kill('SIGTERM');
      }
      const s = await inspect(tmp.dir, id);
      assert.equal(s.rules.length, 0, 'no orphan rule');
      assert.equal(s.grant!.closeReason, 'revoked');
      assert.equal(s.chain.ok, true);
      assert.deepEqual(s.events, ['grant.requested', 'grant.approved', 'rule.opening', 'rule.opened', 'grant.revoked', 'rule.closed', 'grant.closed']);
    } finally {
      tmp.cleanup();
    }
  });

  test('killed after the extend intent, before the firewall call: the restarted broker keeps the old expiry, the grant active', async () => {
    const tmp = tempDir();
    try {
      const b1 = await spawnBroker(config(tmp.dir), tmp.dir, { PORTCULLIS_FAILPOINTS: 'after-extend-intent' });
      const exited = new Promise((r) => b1.child.once('exit', r));
      const res = await api(b1.url, '/api/v1/grants', { token, body: { target: 'lab-pc', duration: '10m', reason: 'crash test' } });
      assert.equal(res.status, 201);
      const id = res.body.grant.id as string;
      await assert.rejects(api(b1.url, `/api/v1/grants/${id}/extend`, { token, body: { duration: '5m' } }));
      await exited;
      assert.equal(b1.child.signalCode, 'SIGKILL');
      const mid = await inspect(tmp.dir, id);
      assert.equal(mid.grant!.state, 'extending', 'the intent was durable before the firewall call');

      const b2 = await spawnBroker(config(tmp.dir), tmp.dir);
      try {
        const g = (await api(b2.url, `/api/v1/grants/${id}`, { token })).body.grant;
        assert.equal(g.state, 'active');
        assert.equal(g.expiresAt, res.body.grant.expiresAt, 'the expiry the user was told');
        const again = await api(b2.url, `/api/v1/grants/${id}/extend`, { token, body: { duration: '5m' } });
        assert.equal(again.status, 200, JSON.stringify(again.body));
        const revoked = await api(b2.url, `/api/v1/grants/${id}/revoke`, { token, body: {} });
        assert.equal(revoked.body.grant.state, 'closed');
      } finally {
        await b2.kill('SIGTERM');
      }
      const s = await inspect(tmp.dir, id);
      assert.equal(s.rules.length, 0);
      assert.equal(s.chain.ok, true);
      assert.deepEqual(s.events.slice(3), ['rule.opened', 'grant.extending', 'grant.extend_failed', 'grant.extending', 'grant.extended', 'grant.revoked', 'rule.closed', 'grant.closed']);
    } finally {
      tmp.cleanup();
    }
  });

  test('killed after the last approval, before the opening intent: the restarted broker activates the grant', async () => {
    const tmp = tempDir();
    try {
      const b1 = await spawnBroker(config(tmp.dir), tmp.dir, { PORTCULLIS_FAILPOINTS: 'after-approval' });
      const exited = new Promise((r) => b1.child.once('exit', r));
      const res = await api(b1.url, '/api/v1/grants', { token, body: { target: 'prod-pc', duration: '10m', reason: 'crash test' } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const id = res.body.grant.id as string;
      await assert.rejects(api(b1.url, `/api/v1/grants/${id}/approve`, { token: bobToken, body: {} }));
      await exited;
      assert.equal(b1.child.signalCode, 'SIGKILL');
      const mid = await inspect(tmp.dir, id, 'prod-pc');
      assert.equal(mid.grant!.state, 'approved');
      assert.equal(mid.rules.length, 0);

      const b2 = await spawnBroker(config(tmp.dir), tmp.dir);
      try {
        // Recovery ran before the server listened: the first answer already shows it.
        const g = (await api(b2.url, `/api/v1/grants/${id}`, { token })).body.grant;
        assert.equal(g.state, 'active');
        const live = await inspect(tmp.dir, id, 'prod-pc');
        assert.deepEqual(live.rules.map((r) => r.grantIds), [[id]]);
        const revoked = await api(b2.url, `/api/v1/grants/${id}/revoke`, { token, body: {} });
        assert.equal(revoked.body.grant.state, 'closed');
      } finally {
        await b2.kill('SIGTERM');
      }
      const s = await inspect(tmp.dir, id, 'prod-pc');
      assert.equal(s.rules.length, 0);
      assert.equal(s.chain.ok, true);
      assert.deepEqual(s.events, ['grant.requested', 'grant.pending', 'grant.approval_recorded', 'grant.approved', 'rule.opening', 'rule.opened', 'grant.revoked', 'rule.closed', 'grant.closed']);
    } finally {
      tmp.cleanup();
    }
  });

  for (const point of ['after-close-intent', 'after-firewall-close'] as const) {
    test(`killed at ${point} during expiry: the restarted broker finishes the close`, async () => {
      const tmp = tempDir();
      try {
        const b1 = await spawnBroker(config(tmp.dir), tmp.dir, { PORTCULLIS_FAILPOINTS: point });
        const exited = new Promise((r) => b1.child.once('exit', r));
        const res = await api(b1.url, '/api/v1/grants', { token, body: { target: 'lab-pc', duration: '1s', reason: 'crash test' } });
        assert.equal(res.status, 201);
        const id = res.body.grant.id as string;
        await exited;
        assert.equal(b1.child.signalCode, 'SIGKILL');

        const mid = await inspect(tmp.dir, id);
        assert.equal(mid.grant!.state, 'closing', 'never marked closed while the rule may exist');
        assert.equal(mid.rules.length, point === 'after-close-intent' ? 1 : 0);

        const b2 = await spawnBroker(config(tmp.dir), tmp.dir);
        try {
          await waitFor('grant closed', async () => (await api(b2.url, `/api/v1/grants/${id}`, { token })).body.grant.state === 'closed');
        } finally {
          await b2.kill('SIGTERM');
        }
        const s = await inspect(tmp.dir, id);
        assert.equal(s.rules.length, 0);
        assert.equal(s.grant!.closeReason, 'expired');
        assert.equal(s.chain.ok, true);
        assert.deepEqual(s.events.slice(-3), ['grant.expired', 'rule.closed', 'grant.closed']);
      } finally {
        tmp.cleanup();
      }
    });
  }
});
