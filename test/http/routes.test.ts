// Every web and API route in process with supertest: status codes, security headers, CSRF refusals, own 404/405 pages.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { EMBEDDED_DEFAULT } from '../../src/config/load.ts';
import { startBroker, tempDir, testConfig, type RunningBroker } from '../helpers/broker.ts';
import type { CookieJar } from '../helpers/idp.ts';
import { signInHttp } from '../web/signin.ts';

function assertPageHeaders(res: request.Response): void {
  const csp = String(res.headers['content-security-policy'] ?? '');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /style-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(res.headers['x-frame-options'], 'DENY');
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.equal(res.headers['referrer-policy'], 'same-origin');
  assert.equal(res.headers['cache-control'], 'no-store');
}

describe('HTTP routes (supertest, in process)', () => {
  let broker: RunningBroker;
  let cleanup: () => void;
  let http: RunningBroker['app']['http'];
  const jars: Record<string, CookieJar> = {};
  const cookie = (u: string) => jars[u]!.header(`${broker.url}/`);
  const csrfOf = async (u: string) => (await request(http).get('/auth/session').set('Cookie', cookie(u)).expect(200)).body.csrf as string;

  before(async () => {
    const t = tempDir('portcullis-routes-');
    cleanup = t.cleanup;
    broker = await startBroker(testConfig(t.dir, { dev: { embeddedIdp: true }, targets: EMBEDDED_DEFAULT.targets, grants: { minDuration: '1m', maxDuration: '8h', adminGroups: ['portcullis-admins'] }, audit: { jsonl: `${t.dir}/audit.jsonl`, readerGroups: ['auditors'] } }));
    http = broker.app.http;
    for (const u of ['alice', 'bob', 'carol', 'ada']) jars[u] = await signInHttp(broker.url, u);
  });
  after(async () => {
    await broker?.stop();
    cleanup?.();
  });

  test('signed out: / is the landing page with strict headers; every other page sends the browser to sign in and back', async () => {
    const res = await request(http).get('/').expect(200).expect('content-type', /text\/html/);
    assertPageHeaders(res);
    assert.match(res.text, /id="sign-in"/);
    assert.doesNotMatch(res.text, /<script>|<style>|\son[a-z]+=/i);
    for (const path of ['/approvals', '/audit', '/admin', '/grants/g_0123456789abcdef', '/audit/export.jsonl']) {
      const r = await request(http).get(path).expect(303);
      assert.equal(r.headers.location, `/auth/login?returnTo=${encodeURIComponent(path)}`, path);
    }
    await request(http).get('/api/v1/me').expect(401).expect('cache-control', 'no-store');
  });

  test('unknown paths get the product 404 page, wrong methods its 405 page with Allow; the API answers JSON', async () => {
    const nf = await request(http).get('/no/such/page').set('Accept', 'text/html').expect(404).expect('content-type', /text\/html/);
    assertPageHeaders(nf);
    assert.match(nf.text, /<title>Page not found · Portcullis<\/title>/);
    assert.doesNotMatch(nf.text, /Cannot GET/);
    const nfJson = await request(http).get('/no/such/page').set('Accept', 'application/json').expect(404);
    assert.equal(nfJson.body.error.code, 'NOT_FOUND');
    for (const [method, path] of [['post', '/'], ['delete', '/approvals'], ['put', '/grants/g_0123456789abcdef'], ['post', '/audit']] as const) {
      const r = await request(http)[method](path).set('Accept', 'text/html').expect(405);
      assert.equal(r.headers.allow, 'GET, HEAD', `${method} ${path}`);
      assert.match(r.text, /Not allowed here/);
    }
    const api = await request(http).get('/api/v1/nope').expect(404);
    assert.equal(api.body.error.code, 'NOT_FOUND');
    await request(http).get('/ui/app.js').expect(404);
  });

  test('health, readiness and metrics answer without a session; static files are cached for good', async () => {
    await request(http).get('/healthz').expect(200, { ok: true });
    const ready = await request(http).get('/readyz').expect(200);
    assert.match(ready.body.warning, /SIMULATED FIREWALL/);
    await request(http).get('/metrics').expect(200).expect('content-type', /text\/plain/);
    const html = (await request(http).get('/')).text;
    const js = /src="(\/ui\/app\.[0-9a-f]{12}\.js)"/.exec(html)![1]!;
    await request(http).get(js).expect(200).expect('cache-control', 'public, max-age=31536000, immutable');
  });

  test('signed in, each page answers for whom it is for: 200, or the product 403 page', async () => {
    for (const [user, path, status] of [
      ['alice', '/', 200], ['alice', '/approvals', 200], ['alice', '/audit', 403], ['alice', '/admin', 403], ['alice', '/grants/g_0123456789abcdef', 404],
      ['bob', '/approvals', 200], ['ada', '/audit', 200], ['ada', '/admin', 200], ['ada', '/audit/export.jsonl', 200],
    ] as const) {
      const r = await request(http).get(path).set('Cookie', cookie(user)).set('Accept', 'text/html');
      assert.equal(r.status, status, `${user} ${path}`);
      assert.equal(r.headers['cache-control'], 'no-store', `${user} ${path}`);
      if (path !== '/audit/export.jsonl') assertPageHeaders(r);
    }
  });

  test('CSRF: a cookie post without the token, with another session\'s token, or from another origin is refused; the right one passes', async () => {
    const body = { target: 'demo-pc', duration: '30m', reason: 'T-1 csrf check' };
    const none = await request(http).post('/api/v1/grants').set('Cookie', cookie('alice')).send(body).expect(403);
    assert.equal(none.body.error.code, 'CSRF_FAILED');
    const others = await request(http).post('/api/v1/grants').set('Cookie', cookie('alice')).set('X-CSRF-Token', await csrfOf('bob')).send(body).expect(403);
    assert.equal(others.body.error.code, 'CSRF_FAILED');
    const token = await csrfOf('alice');
    const foreign = await request(http).post('/api/v1/grants').set('Cookie', cookie('alice')).set('X-CSRF-Token', token).set('Origin', 'http://evil.example').send(body).expect(403);
    assert.equal(foreign.body.error.code, 'CSRF_FAILED');
    assert.match(foreign.body.error.message, /another site/);
    const logout = await request(http).post('/auth/logout').set('Cookie', cookie('alice')).type('form').send({ _csrf: 'wrong' });
    assert.equal(logout.status, 403, 'sign-out needs the token too');
    assert.equal((await broker.app.store.listGrants({})).length, 0, 'nothing was requested by a refused post');
    const ok = await request(http).post('/api/v1/grants').set('Cookie', cookie('alice')).set('X-CSRF-Token', token).set('Origin', broker.url).send(body).expect(201);
    assert.equal(ok.body.grant.state, 'active');
    // The .rdp download: the shared generator's file, never cached.
    const rdp = await request(http).get(`/ui/grants/${ok.body.grant.id}/connect.rdp`).set('Cookie', cookie('alice')).expect(200);
    assert.equal(rdp.headers['content-type'], 'application/x-rdp; charset=utf-8');
    assert.equal(rdp.headers['content-disposition'], 'attachment; filename="demo-pc.rdp"');
    assert.equal(rdp.headers['cache-control'], 'no-store');
    assert.match(rdp.text, /^full address:s:demo-pc\.example\.invalid:3389\r\n/);
    assert.equal(rdp.text.trim().split('\r\n').length, 13);
    const page = await request(http).get(`/grants/${ok.body.grant.id}`).set('Cookie', cookie('alice')).expect(200);
    assert.match(page.text, /Close now/);
    assert.match(page.text, /id="extend"/);
    assert.match(page.text, /data-type="rule.opened"/, 'the timeline shows the audit events');
    await request(http).post(`/api/v1/grants/${ok.body.grant.id}/revoke`).set('Cookie', cookie('alice')).set('X-CSRF-Token', token).send({}).expect(200);
  });

  test('inbox: pending requests for approvers, never their own, leaving the inbox of who approved; 1 of 2 shown', async () => {
    const alice = await csrfOf('alice');
    const made = await request(http).post('/api/v1/grants').set('Cookie', cookie('alice')).set('X-CSRF-Token', alice).send({ target: 'demo-dc01', duration: '1h', reason: 'CHG-9 <b>patch</b>' }).expect(202);
    const id = made.body.grant.id as string;
    const bobPage = await request(http).get('/approvals').set('Cookie', cookie('bob')).expect(200);
    assert.match(bobPage.text, new RegExp(`id="req-${id}"`));
    assert.match(bobPage.text, /0 of 2 approvals/);
    assert.match(bobPage.text, /CHG-9 &lt;b&gt;patch&lt;\/b&gt;/, 'escaped by the template engine');
    const alicePage = await request(http).get('/approvals').set('Cookie', cookie('alice')).expect(200);
    assert.doesNotMatch(alicePage.text, new RegExp(id), 'never one\'s own');
    const self = await request(http).post(`/api/v1/grants/${id}/approve`).set('Cookie', cookie('alice')).set('X-CSRF-Token', alice).send({}).expect(403);
    assert.equal(self.body.error.code, 'SELF_APPROVAL');
    await request(http).post(`/api/v1/grants/${id}/approve`).set('Cookie', cookie('bob')).set('X-CSRF-Token', await csrfOf('bob')).send({ comment: 'ok from bob' }).expect(200);
    assert.doesNotMatch((await request(http).get('/approvals').set('Cookie', cookie('bob'))).text, new RegExp(`id="req-${id}"`));
    const carol = await request(http).get('/approvals').set('Cookie', cookie('carol')).expect(200);
    assert.match(carol.text, /1 of 2 approvals/);
    assert.match(carol.text, /class="approved-by">bob</);
    const detail = await request(http).get(`/api/v1/grants/${id}`).set('Cookie', cookie('alice')).expect(200);
    assert.deepEqual(detail.body.grant.approvals.map((a: { approver: string; comment: string }) => [a.approver, a.comment]), [['bob', 'ok from bob']]);
  });

  test('audit view: filters, chain status, JSONL export of what the filter shows; admin view: live grants, health, gates, no scan yet', async () => {
    const page = await request(http).get('/audit?type=grant.pending').set('Cookie', cookie('ada')).expect(200);
    assert.match(page.text, /data-ok="true"/);
    assert.match(page.text, /The hash chain verifies/);
    const types = [...page.text.matchAll(/<tr data-seq="\d+" data-type="([^"]+)"/g)].map((m) => m[1]);
    assert.ok(types.length >= 1);
    assert.deepEqual([...new Set(types)], ['grant.pending']);
    const exp = await request(http).get('/audit/export.jsonl?user=bob').set('Cookie', cookie('ada')).expect(200).expect('content-type', /application\/x-ndjson/);
    const lines = exp.text.trim().split('\n').map((l) => JSON.parse(l) as { actor: string; hash: string });
    assert.ok(lines.length >= 1 && lines.every((e) => e.actor === 'bob' && /^[0-9a-f]{64}$/.test(e.hash)));
    const admin = await request(http).get('/admin').set('Cookie', cookie('ada')).expect(200);
    assert.match(admin.text, /data-revoke="g_/);
    assert.match(admin.text, /data-check="store"/);
    assert.match(admin.text, /<tr data-target="acme-pc01">/);
    assert.match(admin.text, /No exposure scan is recorded yet/);
  });

  test('a web sign-in alone tells the broker of the newest sign-in (groups and auth_time for approval re-checks)', async () => {
    // The demo IdP's subject is the user id.
    assert.equal(await broker.app.store.knownUser('tess' as never), undefined, 'tess had not signed in before');
    const jar = (jars.tess = await signInHttp(broker.url, 'tess'));
    const s = (await request(http).get('/auth/session').set('Cookie', jar.header(`${broker.url}/`)).expect(200)).body as { sub: string; groups: string[]; authTime: number };
    assert.equal(s.sub, 'tess');
    const known = await broker.app.store.knownUser(s.sub as never);
    assert.deepEqual(known?.groups, s.groups);
    assert.equal(known?.authTime, s.authTime);
  });

  test('the target preview does not depend on a reason it does not have: a ticket rule makes it reasonDependent, not closed', async () => {
    jars.tess ??= await signInHttp(broker.url, 'tess');
    const tess = (await request(http).get('/api/v1/targets').set('Cookie', cookie('tess')).set('Accept', 'application/json').expect(200)).body.targets as { id: string; maxDuration: string | null; reasonDependent: boolean }[];
    const acme = tess.find((t) => t.id === 'acme-pc01')!;
    // msp/technicians-cite-ticket forbids a reason without "T-…": the preview used to see its placeholder reason and show nothing.
    assert.notEqual(acme.maxDuration, null, 'a technician may ask for acme-pc01 with a ticket');
    assert.equal(acme.reasonDependent, true);
    const alice = (await request(http).get('/api/v1/targets').set('Cookie', cookie('alice')).set('Accept', 'application/json').expect(200)).body.targets as { id: string; maxDuration: string | null; reasonDependent: boolean }[];
    const pc = alice.find((t) => t.id === 'demo-pc')!;
    assert.notEqual(pc.maxDuration, null);
    assert.equal(pc.reasonDependent, false, 'no policy about the reason applies to alice on demo-pc');
  });

  test('API routes with a session: statuses per role and input, JSON errors with codes, no-store and the same headers', async () => {
    const get = (u: string, path: string) => request(http).get(`/api/v1${path}`).set('Cookie', cookie(u));
    for (const [user, path, status, code] of [
      ['alice', '/me', 200, undefined], ['alice', '/targets', 200, undefined], ['alice', '/grants', 200, undefined], ['alice', '/grants?view=mine', 200, undefined],
      ['bob', '/grants?view=approvable', 200, undefined], ['alice', '/grants?view=all', 403, 'FORBIDDEN'], ['ada', '/grants?view=all', 200, undefined],
      ['alice', '/grants?view=nonsense', 400, 'INVALID_REQUEST'], ['alice', '/grants/g_0123456789abcdef', 404, 'GRANT_NOT_FOUND'],
      ['alice', '/audit', 403, 'FORBIDDEN'], ['ada', '/audit', 200, undefined], ['ada', '/audit/verify', 200, undefined],
    ] as const) {
      const r = await get(user, path);
      assert.equal(r.status, status, `${user} ${path}`);
      assert.equal(r.headers['cache-control'], 'no-store', path);
      assert.equal(r.headers['x-frame-options'], 'DENY', path);
      if (code) assert.equal(r.body.error.code, code, `${user} ${path}`);
    }
    const token = await csrfOf('alice');
    const post = (path: string, body: unknown) => request(http).post(`/api/v1${path}`).set('Cookie', cookie('alice')).set('X-CSRF-Token', token).send(body as object);
    assert.equal((await post('/grants', { target: 'nope', duration: '1h', reason: 'T-1' })).body.error.code, 'INVALID_TARGET');
    assert.equal((await post('/grants', { target: 'demo-pc', duration: 'forever', reason: 'T-1' })).body.error.field, 'duration');
    const bad = await request(http).post('/api/v1/grants').set('Cookie', cookie('alice')).set('X-CSRF-Token', token).set('content-type', 'application/json').send('{not json');
    assert.equal(bad.status, 400);
    assert.equal((await post('/grants/g_0123456789abcdef/extend', { duration: '1h' })).status, 404);
    assert.equal((await post('/grants/g_0123456789abcdef/deny', {})).status, 404);
  });
  test('admin view, knocks on the gate: per target and source for 1h / 24h / 7d; not for non-admins; a bad since is a 400 naming it', async () => {
    const at = new Date().toISOString();
    const top = [
      { source: '203.0.113.7', target: 'demo-dc01', port: 3389, protocol: 'tcp', count: 120, firstSeen: at, lastSeen: at },
      { source: '198.51.100.9', target: 'demo-dc01', port: 3389, protocol: 'tcp', count: 4, firstSeen: at, lastSeen: at },
      { source: '198.51.100.9', target: 'demo-pc', port: 3389, protocol: 'udp', count: 2, firstSeen: at, lastSeen: at },
    ];
    await broker.app.store.audit({ type: 'gate.attempts', actor: 'system:gate', detail: { from: at, to: at, total: 131, sources: 2, overflow: 5, top } });
    const section = (html: string) => /<section class="card" aria-labelledby="attempts-h"[\s\S]*?<\/section>/.exec(html)?.[0] ?? '';
    for (const since of ['1h', '24h', '7d', undefined]) {
      const res = await request(http).get(`/admin${since ? `?since=${since}` : ''}`).set('Cookie', cookie('ada')).expect(200);
      assertPageHeaders(res);
      const s = section(res.text);
      assert.match(s, /<h2 id="attempts-h">Knocks on the gate<\/h2>/);
      assert.match(s, new RegExp(`data-since="${since ?? '24h'}" aria-current="true"|aria-current="true" data-since="${since ?? '24h'}"`), 'the chosen period is marked');
      assert.match(s, /data-total="131" data-overflow="5"/);
      assert.match(s, /5 dropped while the per-source set was full/);
      assert.match(s, /<tr data-target="demo-dc01"><td><strong>demo-dc01<\/strong><\/td><td data-count="124">124<\/td><td>2<\/td>/);
      assert.match(s, /<tr data-source="203\.0\.113\.7" data-target="demo-dc01"><td><code>203\.0\.113\.7<\/code><\/td><td>demo-dc01<\/td><td>tcp\/3389<\/td><td data-count="120">/);
      assert.match(s, /<tr data-source="198\.51\.100\.9" data-target="demo-pc">.*?udp\/3389<\/td><td data-count="2">/);
      assert.match(s, /<time datetime="[^"]+">\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} /, 'first and last seen with a date and a zone');
    }
    await request(http).get('/admin?since=1h').set('Cookie', cookie('alice')).expect(403);
    for (const bad of ['2h', '', 'forever', '1h&since=7d']) {
      const res = await request(http).get(`/admin?since=${bad}`).set('Cookie', cookie('ada')).set('Accept', 'text/html').expect(400);
      assert.match(res.text, /The since parameter must be one of 1h, 24h, 7d/, bad);
    }
    const json = await request(http).get('/admin?since=30d').set('Cookie', cookie('ada')).set('Accept', 'application/json').expect(400);
    assert.equal(json.body.error.code, 'INVALID_REQUEST');
    assert.match(json.body.error.message, /since/);
  });
});
