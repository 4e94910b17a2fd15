// The whole access loop: a real OIDC sign-in → a grant → one rule → expiry → an audit chain that verifies.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { verifyJsonl } from '../../src/audit/jsonl.ts';
import type { TableFirewall } from '../../src/firewall/memory.ts';
import { api, startBroker, tempDir, testConfig, waitFor, type RunningBroker } from '../helpers/broker.ts';
import { startTestIdp, type TestIdp } from '../helpers/idp.ts';

describe('access loop end to end', () => {
  let idp: TestIdp;
  let broker: RunningBroker;
  const tmp = tempDir();

  before(async () => {
    idp = await startTestIdp({ mfa: 'amr-mfa', users: { alice: { email: 'alice@example.test', groups: ['engineers'] } } });
    broker = await startBroker(
      testConfig(tmp.dir, {
        oidc: {
          issuer: idp.issuer,
          dangerouslyAllowHttpIssuer: true,
          clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } },
        },
      }),
    );
  });
  after(async () => {
    await broker?.stop();
    await idp?.close();
    tmp.cleanup();
  });

  test('a grant opens exactly one /32 rule on 3389, expires within 1 s, and the audit chain verifies in order', async () => {
    const token = await idp.getIdToken('alice');
    const fw = broker.app.firewalls.get('lab-pc') as TableFirewall;
    assert.deepEqual(await fw.list(), []);

    const res = await api(broker.url, '/api/v1/grants', { token, body: { target: 'lab-pc', duration: '2s', reason: 'T-4411 patch' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const grant = res.body.grant;
    assert.equal(grant.state, 'active');
    assert.equal(grant.source, '127.0.0.1/32');
    assert.equal(grant.port, 3389);

    const rules = await fw.list();
    assert.equal(rules.length, 1);
    assert.deepEqual(rules[0]!.grantIds, [grant.id]);
    assert.equal(rules[0]!.source, '127.0.0.1/32');
    assert.equal(rules[0]!.port, 3389);

    const expiresAt = Date.parse(grant.expiresAt);
    const activatedAt = Date.parse(grant.activatedAt);
    assert.ok(Math.abs(expiresAt - activatedAt - 2000) < 1000, 'the clock starts when the rule is in place');

    const goneAt = await waitFor('rule removed', async () => ((await fw.list()).length === 0 ? Date.now() : undefined), 5000, 5);
    assert.ok(goneAt - expiresAt < 1000, `rule removed ${goneAt - expiresAt} ms after expiry`);
    assert.ok(goneAt >= expiresAt - 50, 'not removed before expiry');

    const closed = await waitFor('grant closed', async () => {
      const r = await api(broker.url, `/api/v1/grants/${grant.id}`, { token });
      return r.body.grant.state === 'closed' ? r.body.grant : undefined;
    });
    assert.equal(closed.closeReason, 'expired');

    const verify = await api(broker.url, '/api/v1/audit/verify', { token });
    assert.equal(verify.status, 200);
    assert.equal(verify.body.ok, true);

    const events = (await broker.app.store.auditEvents({ grant: grant.id })).map((e) => e.type);
    assert.deepEqual(events, ['grant.requested', 'grant.approved', 'rule.opening', 'rule.opened', 'grant.expired', 'rule.closed', 'grant.closed']);
    const approved = (await broker.app.store.auditEvents({ grant: grant.id })).find((e) => e.type === 'grant.approved')!;
    assert.deepEqual(approved.policyIds, ['it-team/engineers-self-serve-nonprod']);

    const file = await verifyJsonl(`${tmp.dir}/audit.jsonl`);
    assert.equal(file.ok, true);
    assert.equal(file.count, verify.body.count);
  });
});
