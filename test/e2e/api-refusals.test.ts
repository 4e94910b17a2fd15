// Refusals at the API: bad credentials get distinct codes and are audited; bad input gets a 400
// naming its field. None of them opens a rule or leaves a grant behind.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TableFirewall } from '../../src/firewall/memory.ts';
import { createTokenVerifier } from '../../src/identity/tokens.ts';
import { parseConfig } from '../../src/config/load.ts';
import { api, startBroker, tempDir, testConfig, type RunningBroker } from '../helpers/broker.ts';
import { resignWithForeignKey, startTestIdp, tamperPayload, type TestIdp } from '../helpers/idp.ts';

describe('API refusals', () => {
  let idp: TestIdp;
  let foreignIdp: TestIdp;
  let broker: RunningBroker;
  let token: string;
  const tmp = tempDir();
  const users = { alice: { email: 'alice@example.test', groups: ['engineers'] }, bob: { email: 'bob@example.test', groups: ['engineers'] } };

  const oidcFor = (p: TestIdp) => ({
    issuer: p.issuer,
    dangerouslyAllowHttpIssuer: true,
    clients: { web: { id: p.clients.web.id, secret: p.clients.web.secret }, cli: { id: p.clients.cli.id } },
  });

  before(async () => {
    idp = await startTestIdp({ mfa: 'amr-mfa', users });
    foreignIdp = await startTestIdp({ mfa: 'amr-mfa', users });
    broker = await startBroker(testConfig(tmp.dir, { oidc: oidcFor(idp) }));
    token = await idp.getIdToken('alice');
  });
  after(async () => {
    await broker?.stop();
    await idp?.close();
    await foreignIdp?.close();
    tmp.cleanup();
  });

  async function assertNothingOpened() {
    const fw = broker.app.firewalls.get('lab-pc') as TableFirewall;
    assert.deepEqual(await fw.list(), []);
    assert.deepEqual((await broker.app.store.listGrants()).filter((g) => g.state !== 'denied'), []);
  }

  const body = { target: 'lab-pc', duration: '10m', reason: 'T-1' };

  describe('credentials', () => {
    const cases: [string, () => Promise<string | undefined>, number, string][] = [
      ['no Authorization header', async () => undefined, 401, 'AUTH_REQUIRED'],
      ['a token without an MFA method in amr', () => idp.getIdToken('alice', { mfa: 'none' }), 403, 'MFA_REQUIRED'],
      ['a token from another issuer', () => foreignIdp.getIdToken('alice'), 401, 'TOKEN_WRONG_ISSUER'],
      ['a token for another audience', () => idp.getIdToken('alice', { clientId: idp.clients.other.id }), 401, 'TOKEN_WRONG_AUDIENCE'],
      ['a token with a tampered payload', async () => tamperPayload(await idp.getIdToken('alice'), { sub: 'mallory' }), 401, 'TOKEN_BAD_SIGNATURE'],
      ['a token signed by another key', async () => resignWithForeignKey(await idp.getIdToken('alice')), 401, 'TOKEN_BAD_SIGNATURE'],
      ['a string that is not a JWT', async () => 'not-a-jwt', 401, 'TOKEN_MALFORMED'],
    ];
    for (const [name, make, status, code] of cases) {
      test(`${name} → ${status} ${code}, audited, nothing opened`, async () => {
        const t = await make();
        const before = (await broker.app.store.verifyAudit()).lastSeq;
        const res = await api(broker.url, '/api/v1/grants', { ...(t ? { token: t } : {}), body });
        assert.equal(res.status, status, JSON.stringify(res.body));
        assert.equal(res.body.error.code, code);
        const events = await broker.app.store.auditEvents({ afterSeq: before });
        assert.equal(events.length, 1);
        assert.equal(events[0]!.type, code === 'MFA_REQUIRED' ? 'auth.mfa_missing' : 'auth.rejected');
        assert.equal(events[0]!.detail!.code, code);
        if (t) assert.ok(!JSON.stringify(events).includes(t.split('.')[1]!), 'the token never reaches the audit trail');
        await assertNothingOpened();
      });
    }

    test('an expired token → 401 TOKEN_EXPIRED, audited, nothing opened', async () => {
      // The real verifier against the real IdP, with its clock moved two hours on.
      const oidc = parseConfig(testConfig(tmp.dir, { oidc: oidcFor(idp) })).oidc;
      const late = await startBroker(testConfig(tmp.dir, { oidc: oidcFor(idp), audit: {} }), {
        verifier: createTokenVerifier(oidc, { now: () => Date.now() + 2 * 3600_000 }),
      });
      try {
        const res = await api(late.url, '/api/v1/grants', { token, body });
        assert.equal(res.status, 401);
        assert.equal(res.body.error.code, 'TOKEN_EXPIRED');
        const events = await late.app.store.auditEvents({ afterSeq: 0, limit: 10_000 });
        assert.equal(events.at(-1)!.type, 'auth.rejected');
        assert.equal(events.at(-1)!.detail!.code, 'TOKEN_EXPIRED');
        assert.deepEqual(await (late.app.firewalls.get('lab-pc') as TableFirewall).list(), []);
      } finally {
        await late.stop();
      }
    });
  });

  test('a flood of bad tokens from one address is audited up to the budget, then counted', async () => {
    const tmp2 = tempDir();
    const small = await startBroker(testConfig(tmp2.dir, { oidc: oidcFor(idp), audit: {}, server: { listen: '127.0.0.1:0', refusalAuditPerMinute: 5 } }));
    try {
      const codes = [];
      for (let i = 0; i < 12; i++) codes.push((await api(small.url, '/api/v1/me', { token: 'not-a-jwt' })).body.error.code);
      assert.deepEqual(new Set(codes), new Set(['TOKEN_MALFORMED']), 'every request is still refused');
      const events = await small.app.store.auditEvents({ limit: 100 });
      assert.equal(events.filter((e) => e.type === 'auth.rejected').length, 5);
      const metrics = await (await fetch(`${small.url}/metrics`)).text();
      assert.match(metrics, /portcullis_auth_failures_total\{code="TOKEN_MALFORMED"\} 12/);
    } finally {
      await small.stop();
      tmp2.cleanup();
    }
  });

  describe('bad input', () => {
    const cases: [string, Record<string, unknown> | string, string, string | undefined][] = [
      ['unknown target', { ...body, target: 'nope' }, 'INVALID_TARGET', 'target'],
      ['missing target', { duration: '10m', reason: 'x' }, 'INVALID_TARGET', 'target'],
      ['malformed duration', { ...body, duration: 'two hours' }, 'INVALID_DURATION', 'duration'],
      ['negative-looking duration', { ...body, duration: '-5m' }, 'INVALID_DURATION', 'duration'],
      ['numeric duration', { ...body, duration: 600 }, 'INVALID_DURATION', 'duration'],
      ['duration over the cap', { ...body, duration: '9h' }, 'DURATION_TOO_LONG', 'duration'],
      ['duration under the minimum', { ...body, duration: 'PT0S' }, 'INVALID_DURATION', 'duration'],
      ['missing reason', { target: 'lab-pc', duration: '10m' }, 'INVALID_REASON', 'reason'],
      ['blank reason', { ...body, reason: '   ' }, 'INVALID_REASON', 'reason'],
      ['multi-line reason', { ...body, reason: 'a\nb' }, 'INVALID_REASON', 'reason'],
      ['malformed source IP', { ...body, sourceIp: '300.1.2.3' }, 'INVALID_SOURCE_IP', 'sourceIp'],
      ['source IP that is a name', { ...body, sourceIp: 'evil.example' }, 'INVALID_SOURCE_IP', 'sourceIp'],
      ['0.0.0.0/0', { ...body, sourceIp: '0.0.0.0/0' }, 'SOURCE_TOO_WIDE', 'sourceIp'],
      ['::/0', { ...body, sourceIp: '::/0' }, 'SOURCE_TOO_WIDE', 'sourceIp'],
      ['a /8', { ...body, sourceIp: '10.0.0.0/8' }, 'SOURCE_TOO_WIDE', 'sourceIp'],
      ['a CIDR with host bits', { ...body, sourceIp: '198.51.100.7/33' }, 'INVALID_SOURCE_IP', 'sourceIp'],
      ['a port the target does not declare', { ...body, port: 445 }, 'INVALID_PORT', 'port'],
      ['an unknown field', { ...body, cidr: '0.0.0.0/0' }, 'INVALID_REQUEST', 'cidr'],
      ['a body that is not JSON', '{"target":', 'INVALID_REQUEST', undefined],
      ['a lone surrogate in reason (was 503 POLICY_UNAVAILABLE)', '{"target":"lab-pc","duration":"10m","reason":"T-1 \\ud800"}', 'INVALID_ENCODING', 'reason'],
      ['a JSON array', '[{"target":"lab-pc"}]', 'INVALID_REQUEST', undefined],
    ];
    for (const [name, payload, code, field] of cases) {
      test(`${name} → 400 ${code}${field ? ` (field ${field})` : ''}, nothing opened`, async () => {
        const res = await api(broker.url, '/api/v1/grants', { token, body: payload });
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.error.code, code);
        assert.equal(res.body.error.field, field);
        await assertNothingOpened();
      });
    }
  });

  test('invalid percent-encoding in a path → 400 INVALID_ENCODING naming the path (was 500)', async () => {
    for (const path of ['/api/v1/grants/%ff', '/api/v1/grants/%E0%A4%A/revoke']) {
      const res = await api(broker.url, path, { token, ...(path.endsWith('revoke') ? { body: {} } : {}) });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.deepEqual([res.body.error.code, res.body.error.field], ['INVALID_ENCODING', 'path']);
    }
  });

  test('an unknown API route is a JSON 404', async () => {
    const res = await api(broker.url, '/api/v1/nope', { token });
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'NOT_FOUND');
  });

  test('someone else\'s grant answers like a missing one, and its owner can close it', async () => {
    const ok = await api(broker.url, '/api/v1/grants', { token, body });
    assert.equal(ok.status, 201);
    const bob = await idp.getIdToken('bob');
    const peek = await api(broker.url, `/api/v1/grants/${ok.body.grant.id}`, { token: bob });
    assert.equal(peek.status, 404);
    assert.equal(peek.body.error.code, 'GRANT_NOT_FOUND');
    assert.equal((await api(broker.url, `/api/v1/grants/${ok.body.grant.id}/revoke`, { token: bob, body: {} })).status, 404);
    const bad = await api(broker.url, '/api/v1/grants/g_doesnotexist000000', { token });
    assert.equal(bad.status, 404);
    assert.equal(bad.body.error.code, 'GRANT_NOT_FOUND');
    const revoke = await api(broker.url, `/api/v1/grants/${ok.body.grant.id}/revoke`, { token, body: {} });
    assert.equal(revoke.body.grant.state, 'closed');
    assert.deepEqual(await (broker.app.firewalls.get('lab-pc') as TableFirewall).list(), []);
  });
});
