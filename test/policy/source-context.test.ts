// Policies see the source through the real HTTP path: callerIp after trustProxy, sourceIsCaller, sourceIp as the
// whole prefix; X-Forwarded-For values that are not one plain address are refused rather than trimmed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TableFirewall } from '../../src/firewall/memory.ts';
import { ROOT, startBroker, tempDir, testConfig, type RunningBroker } from '../helpers/broker.ts';
import { startTestIdp, type TestIdp } from '../helpers/idp.ts';
import { tempPolicyDir } from './helpers/policy-dir.ts';

const users = {
  alice: { email: 'alice@example.test', groups: ['engineers'] },
  nina: { email: 'nina@example.test', groups: ['network-admins'] },
  bob: { email: 'bob@example.test', groups: ['approvers', 'engineers'] },
};

async function post(url: string, path: string, token: string, body: unknown, xff?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(xff === undefined ? {} : { 'x-forwarded-for': xff }) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

function oidcFor(idp: TestIdp) {
  return { issuer: idp.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } } };
}

describe('a policy allowing only 10.213.0.0/24, with policy.maxSourcePrefix /16', () => {
  let idp: TestIdp;
  let broker: RunningBroker;
  let token: string;
  const tmp = tempDir();
  // Only this rule: no single-host guard, so the prefix comparison alone must hold the line.
  const policies = tempPolicyDir(
    {
      'lab.cedar': `// Engineers open the lab only for the lab network.
@id("lab-network-only")
permit (principal in Portcullis::Group::"engineers", action == Portcullis::Action::"OpenPort", resource)
when { context.sourceIp.isInRange(ip("10.213.0.0/24")) };
`,
    },
    { examples: false },
  );
  before(async () => {
    idp = await startTestIdp({ users });
    broker = await startBroker(testConfig(tmp.dir, { oidc: oidcFor(idp), policy: { dir: policies.dir, maxSourcePrefix: { ipv4: 16, ipv6: 64 } }, server: { listen: '127.0.0.1:0', trustProxy: ['127.0.0.1/32'] } }));
    token = await idp.getIdToken('alice');
  });
  after(async () => {
    await broker?.stop();
    await idp?.close();
    policies.cleanup();
    tmp.cleanup();
  });
  const body = { target: 'lab-pc', duration: '10m', reason: 'T-1' };

  test('10.213.0.0/16 does not open: the context carries the whole prefix', async () => {
    const r = await post(broker.url, '/api/v1/grants', token, { ...body, sourceIp: '10.213.0.0/16' });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'POLICY_DENIED');
  });

  test('10.213.0.0/24 and a /25 inside it open', async () => {
    for (const sourceIp of ['10.213.0.0/24', '10.213.0.128/25']) {
      const r = await post(broker.url, '/api/v1/grants', token, { ...body, sourceIp });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.grant.source, sourceIp);
    }
  });

  test('X-Forwarded-For with CIDR text is refused with 400 naming the header, not read as a /16 source', async () => {
    for (const xff of ['10.213.0.0/16', '10.213.0.0/24', '10.213.0.5/32']) {
      const r = await post(broker.url, '/api/v1/grants', token, body, xff);
      assert.equal(r.status, 400, xff);
      assert.deepEqual([r.body.error.code, r.body.error.field], ['INVALID_SOURCE_IP', 'X-Forwarded-For'], xff);
    }
  });

  test('X-Forwarded-For with a zone id on IPv4 is refused, not trimmed', async () => {
    const r = await post(broker.url, '/api/v1/grants', token, body, '10.213.0.5%eth0');
    assert.equal(r.status, 400);
    assert.deepEqual([r.body.error.code, r.body.error.field], ['INVALID_SOURCE_IP', 'X-Forwarded-For']);
  });

  test('a forwarded multicast, broadcast or unspecified address is no source', async () => {
    for (const xff of ['224.0.0.1', '255.255.255.255', '0.0.0.0', '::', 'ff02::1']) {
      const r = await post(broker.url, '/api/v1/grants', token, body, xff);
      assert.equal(r.status, 400, xff);
      assert.deepEqual([r.body.error.code, r.body.error.field], ['INVALID_SOURCE_IP', 'callerIp'], xff);
    }
  });

  test('a plain forwarded address in the lab network is the source', async () => {
    const r = await post(broker.url, '/api/v1/grants', token, body, '10.213.0.9');
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.grant.source, '10.213.0.9/32');
    const fw = broker.app.firewalls.get('lab-pc') as TableFirewall;
    assert.ok((await fw.list()).some((rule) => rule.source === '10.213.0.9/32'));
    assert.ok((await fw.list()).every((rule) => ['10.213.0.0/24', '10.213.0.128/25', '10.213.0.9/32'].includes(rule.source)), 'nothing wider was opened');
  });
});

describe('the shipped policies: a source other than the caller', () => {
  let idp: TestIdp;
  let broker: RunningBroker;
  const tmp = tempDir();
  before(async () => {
    idp = await startTestIdp({ users });
    broker = await startBroker(
      testConfig(tmp.dir, {
        oidc: oidcFor(idp),
        policy: { dir: `${ROOT}/policies`, maxSourcePrefix: { ipv4: 24, ipv6: 64 } },
        server: { listen: '127.0.0.1:0', trustProxy: ['127.0.0.1/32'] },
        targets: [
          { id: 'lab-pc', connect: 'lab-pc.example.test:3389', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } },
          { id: 'prod-db', connect: 'prod-db.example.test:3389', tags: { env: 'prod', customer: 'internal' }, firewall: { kind: 'memory' } },
        ],
      }),
    );
  });
  after(async () => {
    await broker?.stop();
    await idp?.close();
    tmp.cleanup();
  });
  const body = { target: 'lab-pc', duration: '10m', reason: 'T-1' };

  test('an engineer naming another address is refused by global/source-is-caller; their own opens', async () => {
    const token = await idp.getIdToken('alice');
    const other = await post(broker.url, '/api/v1/grants', token, { ...body, sourceIp: '203.0.113.50' }, '192.0.2.10');
    assert.equal(other.status, 403);
    assert.equal(other.body.error.code, 'POLICY_DENIED');
    const denied = (await broker.app.store.listGrants()).find((g) => g.source === '203.0.113.50/32');
    assert.deepEqual(denied?.policyIds, ['global/source-is-caller']);
    const own = await post(broker.url, '/api/v1/grants', token, { ...body, sourceIp: '192.0.2.10' }, '192.0.2.10');
    assert.equal(own.status, 201, JSON.stringify(own.body));
    const implied = await post(broker.url, '/api/v1/grants', token, body, '192.0.2.10');
    assert.equal(implied.status, 201, JSON.stringify(implied.body));
  });

  test('a network admin may name another address', async () => {
    const r = await post(broker.url, '/api/v1/grants', await idp.getIdToken('nina'), { ...body, sourceIp: '203.0.113.60' }, '192.0.2.20');
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.grant.source, '203.0.113.60/32');
  });

  test('the caller is kept with the grant: the re-check at approval sees the same caller and opens', async () => {
    const r = await post(broker.url, '/api/v1/grants', await idp.getIdToken('alice'), { target: 'prod-db', duration: '30m', reason: 'T-2' }, '192.0.2.30');
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const stored = await broker.app.store.getGrant(r.body.grant.id);
    assert.equal(stored?.callerIp, '192.0.2.30');
    const a = await post(broker.url, `/api/v1/grants/${r.body.grant.id}/approve`, await idp.getIdToken('bob'), {}, '192.0.2.99');
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.body.grant.state, 'active');
  });
});
