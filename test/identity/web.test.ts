// Web sign-in, sessions, step-up, sign-out and the CLI device flow against a real oidc-provider over HTTP.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import express from 'express';
import { configSchema, type Config } from '../../src/config/schema.ts';
import { bearerAuthn } from '../../src/http/authn.ts';
import { errorBody } from '../../src/http/errors.ts';
import { createWebAuth, sessionCookieName, type WebAuthSettings } from '../../src/http/web-auth.ts';
import { refreshDeviceLogin, startDeviceLogin } from '../../src/identity/device.ts';
import { assertMfa } from '../../src/identity/mfa.ts';
import { kyselySessionStore } from '../../src/identity/sessions.ts';
import { createTokenVerifier } from '../../src/identity/tokens.ts';
import { openDb, type Db } from '../../src/store/db.ts';
import { CookieJar, MFA_ACR, startTestIdp, type LoginChoice, type TestIdp } from '../helpers/idp.ts';

const COOKIE = 'portcullis_session';

describe('web sign-in and sessions', () => {
  let idp: TestIdp;
  let server: Server;
  let base: string;
  let db: Db;
  let dir: string;
  let offsetMs = 0;
  let settings: WebAuthSettings;
  const audits: { type: string; detail?: Record<string, unknown> }[] = [];
  const clock = () => Date.now() + offsetMs;

  function oidcFor(mfa: Partial<Config['oidc']['mfa']> = {}): Config['oidc'] & { issuer: string } {
    const c = configSchema.parse({
      oidc: {
        issuer: idp.issuer,
        dangerouslyAllowHttpIssuer: true,
        clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } },
        mfa: { amr: ['mfa', 'otp'], acr: [], maxAge: '1h', ...mfa },
      },
    }).oidc;
    return { ...c, issuer: idp.issuer };
  }
  function configure(mfa: Partial<Config['oidc']['mfa']> = {}, publicUrl = base) {
    const oidc = oidcFor(mfa);
    settings = { oidc, publicUrl, verifier: createTokenVerifier(oidc, { now: clock }) };
  }

  before(async () => {
    server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const httpsBase = base.replace('http:', 'https:');
    idp = await startTestIdp({
      webRedirectUris: [`${base}/auth/callback`, `${httpsBase}/auth/callback`],
      postLogoutRedirectUris: [`${base}/auth/signed-out`],
    });
    dir = mkdtempSync(join(tmpdir(), 'portcullis-web-'));
    db = await openDb(`sqlite:${join(dir, 'db.sqlite')}`);
    configure();
    const verifierProxy = { verify: (t: string) => settings.verifier.verify(t) };
    const web = createWebAuth({
      settings: () => settings,
      sessions: kyselySessionStore(db.kysely),
      bearer: bearerAuthn(verifierProxy),
      audit: async (e) => void audits.push(e as never),
      now: clock,
      idleSeconds: 3 * 3600,
      absoluteSeconds: 8 * 3600,
      scope: 'openid email profile groups',
    });
    const app = express();
    app.use(web.router);
    // Stand-in for the grant API: authenticates like the real one and re-checks MFA freshness like the broker.
    app.get('/api/v1/me', async (req, res) => {
      const p = await web.authn.principal(req);
      res.json({ sub: p.sub, groups: p.groups, amr: p.amr, acr: p.acr, channel: p.channel ?? null });
    });
    app.post('/api/v1/grants', express.json(), async (req, res) => {
      const p = await web.authn.principal(req);
      assertMfa({ amr: p.amr, acr: p.acr, authTime: p.authTime }, settings.oidc.mfa, Math.floor(clock() / 1000));
      res.status(201).json({ grant: { requester: p.sub, request: req.body, channel: p.channel ?? null } });
    });
    app.use((e: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      const { status, body } = errorBody(e);
      res.status(status).json(body);
    });
    server.on('request', app);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await idp.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    offsetMs = 0;
    configure();
  });

  /** Starts sign-in at the broker and follows it through the IdP; returns the broker's callback response. */
  async function signIn(jar: CookieJar, choice: LoginChoice, returnTo = '/dashboard'): Promise<Response> {
    const start = await jar.fetch(`${base}/auth/login?returnTo=${encodeURIComponent(returnTo)}`);
    assert.equal(start.status, 303);
    const back = await idp.authorize(start.headers.get('location')!, jar, choice);
    assert.equal(back.origin, new URL(base).origin, 'the IdP redirects back to the broker');
    return jar.fetch(back);
  }
  /** Runs the IdP part and returns the callback URL without delivering it. */
  async function callbackUrl(jar: CookieJar, choice: LoginChoice, rewriteAuthUrl?: (u: URL) => void): Promise<URL> {
    const start = await jar.fetch(`${base}/auth/login`);
    const authUrl = new URL(start.headers.get('location')!);
    rewriteAuthUrl?.(authUrl);
    return idp.authorize(authUrl.href, jar, choice);
  }
  const json = { accept: 'application/json' };
  async function me(jar: CookieJar): Promise<Response> {
    return jar.fetch(`${base}/api/v1/me`, { headers: json });
  }
  async function errorOf(res: Response): Promise<{ code: string; check?: string }> {
    const text = await res.text();
    const body = JSON.parse(text) as { error: { code: string; check?: string } };
    return body.error;
  }

  test('MFA in amr ["pwd","mfa"] signs in; the session cookie then authenticates API calls', async () => {
    const jar = new CookieJar();
    const res = await signIn(jar, { user: 'alice', mfa: 'amr-mfa' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/dashboard');
    const r = await me(jar);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { sub: 'alice', groups: ['engineers'], amr: ['pwd', 'mfa'], channel: 'web' });
    assert.ok(audits.some((a) => a.type === 'auth.login'));
  });

  test('MFA in amr ["pwd","otp"] signs in', async () => {
    const jar = new CookieJar();
    assert.equal((await signIn(jar, { user: 'bob', mfa: 'amr-otp' })).status, 303);
    assert.equal(((await (await me(jar)).json()) as { amr: string[] }).amr.join(), 'pwd,otp');
  });

  test('MFA only in acr signs in when that acr is configured', async () => {
    configure({ acr: [MFA_ACR] });
    const jar = new CookieJar();
    assert.equal((await signIn(jar, { user: 'alice', mfa: 'acr' })).status, 303);
    const body = (await (await me(jar)).json()) as { acr: string };
    assert.equal(body.acr, MFA_ACR);
  });

  test('a sign-in without MFA is refused with MFA_REQUIRED and no session', async () => {
    const jar = new CookieJar();
    const res = await signIn(jar, { user: 'alice', mfa: 'none' });
    assert.equal(res.status, 403);
    assert.match(await res.text(), /data-code="MFA_REQUIRED"/);
    assert.equal(jar.get(COOKIE), undefined);
    assert.equal((await me(jar)).status, 401);
    assert.ok(audits.some((a) => a.type === 'auth.mfa_missing'));
  });

  test('nested groups claim (realm_access.roles) becomes the principal groups', async () => {
    settings = { ...settings, oidc: { ...settings.oidc, groupsClaim: 'realm_access.roles' } };
    settings.verifier = createTokenVerifier(settings.oidc, { now: clock });
    const jar = new CookieJar();
    await signIn(jar, { user: 'alice' });
    assert.deepEqual(((await (await me(jar)).json()) as { groups: string[] }).groups, ['rdp-users', 'engineers']);
  });

  test('a tampered state is refused (LOGIN_FAILED, check state)', async () => {
    const jar = new CookieJar();
    const back = await callbackUrl(jar, { user: 'alice' });
    back.searchParams.set('state', `${back.searchParams.get('state')}x`);
    const res = await jar.fetch(back, { headers: json });
    assert.equal(res.status, 401);
    const e = await errorOf(res);
    assert.equal(e.code, 'LOGIN_FAILED');
    assert.equal(e.check, 'state');
    assert.equal(jar.get(COOKIE), undefined);
  });

  test('a replayed authorization code is refused, both as the same callback and under a new sign-in', async () => {
    const jar = new CookieJar();
    const back = await callbackUrl(jar, { user: 'alice' });
    assert.equal((await jar.fetch(back)).status, 303);
    // Same URL again: the sign-in it belonged to is spent.
    const again = await jar.fetch(back, { headers: json });
    assert.equal(again.status, 401);
    assert.equal((await errorOf(again)).check, 'state');
    // The old code pasted into a fresh sign-in of the same browser: the IdP refuses to redeem it twice.
    const start = await jar.fetch(`${base}/auth/login`);
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    const replay = new URL(back);
    replay.searchParams.set('state', state);
    const res = await jar.fetch(replay, { headers: json });
    assert.equal(res.status, 401);
    const err = await errorOf(res);
    assert.equal(err.code, 'LOGIN_FAILED');
    assert.ok(err.check === 'code' || err.check === 'pkce', `refused by the IdP, got ${err.check}`);
  });

  test('an ID token with the wrong nonce is refused (LOGIN_FAILED, check nonce)', async () => {
    const jar = new CookieJar();
    const back = await callbackUrl(jar, { user: 'alice' }, (u) => u.searchParams.set('nonce', 'attacker-chosen-nonce'));
    const res = await jar.fetch(back, { headers: json });
    assert.equal(res.status, 401);
    assert.deepEqual({ ...(await errorOf(res)), message: undefined }, { code: 'LOGIN_FAILED', check: 'nonce', message: undefined });
    assert.equal(jar.get(COOKIE), undefined);
  });

  test('PKCE: the broker always sends an S256 challenge, a code without its verifier is refused', async () => {
    const jar = new CookieJar();
    const start = await jar.fetch(`${base}/auth/login`);
    const authUrl = new URL(start.headers.get('location')!);
    assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.match(authUrl.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    // Someone who intercepted the code (and even knows the client secret) cannot redeem it without the verifier.
    const back = await idp.authorize(authUrl.href, jar, { user: 'alice' });
    const tokenRes = await fetch(`${idp.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${idp.clients.web.id}:${idp.clients.web.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: back.searchParams.get('code')!, redirect_uri: `${base}/auth/callback` }),
    });
    assert.equal(tokenRes.status, 400);
    assert.equal(((await tokenRes.json()) as { error: string }).error, 'invalid_grant');
    // And a sign-in whose stored verifier is missing is refused by the broker before any exchange.
    const jar2 = new CookieJar();
    const back2 = await callbackUrl(jar2, { user: 'alice' });
    await db.kysely.updateTable('login_flows').set({ code_verifier: '' }).execute();
    const res = await jar2.fetch(back2, { headers: json });
    assert.equal(res.status, 401);
    assert.equal((await errorOf(res)).check, 'pkce');
  });

  test('step-up: a session whose MFA is older than maxAge is sent back with max_age and the grant proceeds after a fresh sign-in', async () => {
    configure({ maxAge: '1h' });
    const jar = new CookieJar();
    // Signed in with MFA 59m57s ago, so the session turns stale a few seconds from now.
    assert.equal((await signIn(jar, { user: 'alice', authTime: Math.floor(Date.now() / 1000) - 3600 + 3 })).status, 303);
    const before = jar.get(COOKIE)!;
    await new Promise((r) => setTimeout(r, 4500));
    const csrf = ((await (await jar.fetch(`${base}/auth/session`)).json()) as { csrf: string; mfaFresh: boolean }).csrf;
    const request = { target: 'acme-dc01', duration: '1h', reason: 'T-4411' };
    const refused = await jar.fetch(`${base}/api/v1/grants`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, ...json }, body: JSON.stringify(request) });
    assert.equal(refused.status, 403);
    const err = ((await refused.json()) as { error: { code: string; stepUp: string } }).error;
    assert.equal(err.code, 'MFA_TOO_OLD');
    const toIdp = await jar.fetch(new URL(err.stepUp, base));
    assert.equal(toIdp.status, 303);
    const authUrl = new URL(toIdp.headers.get('location')!);
    assert.equal(authUrl.origin, idp.issuer);
    assert.equal(authUrl.searchParams.get('max_age'), '0');
    const back = await idp.authorize(authUrl.href, jar, { user: 'alice' });
    const cb = await jar.fetch(back);
    assert.equal(cb.status, 303);
    assert.notEqual(jar.get(COOKIE), before, 'the session id rotates at the step-up sign-in');
    const resume = (await (await jar.fetch(new URL(cb.headers.get('location')!, base), { headers: json })).json()) as { action: string; r: string; csrf: string; resume: { body: unknown } };
    assert.deepEqual(resume.resume.body, request);
    const done = await jar.fetch(new URL(resume.action, base), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...json },
      body: new URLSearchParams({ r: resume.r, _csrf: resume.csrf }),
    });
    assert.equal(done.status, 201);
    assert.deepEqual(await done.json(), { grant: { requester: 'alice', request, channel: 'web' } });
    // The resume link is single-use.
    const twice = await jar.fetch(new URL(resume.action, base), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...json }, body: new URLSearchParams({ r: resume.r, _csrf: resume.csrf }) });
    assert.equal(twice.status, 404);
  });

  test('session cookie flags: HttpOnly, SameSite=Lax, Path=/, no Secure over http; Secure and __Host- over https', async () => {
    const jar = new CookieJar();
    await signIn(jar, { user: 'alice' });
    const a = jar.attributes(COOKIE)!;
    assert.equal(a.httponly, true);
    assert.equal(String(a.samesite).toLowerCase(), 'lax');
    assert.equal(a.path, '/');
    assert.equal(a.secure, undefined);
    assert.equal(a.domain, undefined);
    assert.ok(Number(a['max-age']) > 0 && Number(a['max-age']) <= 8 * 3600);

    const httpsBase = base.replace('http:', 'https:');
    configure({}, httpsBase);
    assert.equal(sessionCookieName(httpsBase), '__Host-portcullis_session');
    const jar2 = new CookieJar();
    const start = await jar2.fetch(`${base}/auth/login`);
    assert.equal(jar2.attributes('portcullis_login')!.secure, true);
    const back = await idp.authorize(start.headers.get('location')!, jar2, { user: 'alice' });
    assert.equal(back.protocol, 'https:');
    back.protocol = 'http:'; // no TLS in the test; the broker still believes its public URL
    await jar2.fetch(back);
    const h = jar2.attributes('__Host-portcullis_session')!;
    assert.equal(h.secure, true);
    assert.equal(h.httponly, true);
    assert.equal(h.path, '/');
    assert.equal(h.domain, undefined);
  });

  test('rotation: a planted session id is replaced at sign-in, and an earlier session ends at the next sign-in', async () => {
    const jar = new CookieJar();
    jar.set(base, COOKIE, 'planted-by-an-attacker');
    await signIn(jar, { user: 'alice' });
    const first = jar.get(COOKIE)!;
    assert.notEqual(first, 'planted-by-an-attacker');
    assert.equal((await me(jar)).status, 200);
    await signIn(jar, { user: 'alice' });
    const second = jar.get(COOKIE)!;
    assert.notEqual(second, first);
    const old = new CookieJar();
    old.set(base, COOKIE, first);
    assert.equal((await me(old)).status, 401);
    assert.equal((await me(jar)).status, 200);
  });

  test('expiry: the idle timeout and the absolute timeout each end a session', async () => {
    const jar = new CookieJar();
    await signIn(jar, { user: 'alice' });
    offsetMs = 3 * 3600_000 - 60_000;
    assert.equal((await me(jar)).status, 200, 'just inside the idle limit');
    offsetMs += 3 * 3600_000 + 1000;
    const idle = await me(jar);
    assert.equal(idle.status, 401);
    assert.equal((await errorOf(idle)).code, 'AUTH_REQUIRED');

    offsetMs = 0;
    const jar2 = new CookieJar();
    await signIn(jar2, { user: 'alice' });
    // Active every 2 h (inside the idle limit) until the 8 h absolute limit passes.
    for (const h of [2, 4, 6, 7.9]) {
      offsetMs = h * 3600_000;
      assert.equal((await me(jar2)).status, 200, `still signed in at ${h}h`);
    }
    offsetMs = 8 * 3600_000 + 1000;
    assert.equal((await me(jar2)).status, 401);
  });

  test('CSRF: a cookie-authenticated post without the token is refused', async () => {
    const jar = new CookieJar();
    await signIn(jar, { user: 'alice' });
    const res = await jar.fetch(`${base}/api/v1/grants`, { method: 'POST', headers: { 'content-type': 'application/json', ...json }, body: '{}' });
    assert.equal(res.status, 403);
    assert.equal((await errorOf(res)).code, 'CSRF_FAILED');
    const wrong = await jar.fetch(`${base}/api/v1/grants`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': 'guess', ...json }, body: '{}' });
    assert.equal((await errorOf(wrong)).code, 'CSRF_FAILED');
  });

  test('sign-out ends the session here and at the IdP (RP-initiated logout)', async () => {
    const jar = new CookieJar();
    await signIn(jar, { user: 'alice' });
    const sid = jar.get(COOKIE)!;
    const { csrf } = (await (await jar.fetch(`${base}/auth/session`)).json()) as { csrf: string };
    const refused = await jar.fetch(`${base}/auth/logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...json }, body: 'x=1' });
    assert.equal(refused.status, 403);
    const res = await jar.fetch(`${base}/auth/logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrf }) });
    assert.equal(res.status, 303);
    const to = new URL(res.headers.get('location')!);
    assert.equal(`${to.origin}${to.pathname}`, `${idp.issuer}/session/end`);
    assert.ok(to.searchParams.get('id_token_hint'));
    assert.equal(to.searchParams.get('post_logout_redirect_uri'), `${base}/auth/signed-out`);
    const old = new CookieJar();
    old.set(base, COOKIE, sid);
    assert.equal((await me(old)).status, 401);
  });

  test('device flow: the CLI signs in by a person approving the code at the IdP, then calls the API with the ID token', async () => {
    const login = await startDeviceLogin({ issuer: idp.issuer, clientId: idp.clients.cli.id, dangerouslyAllowHttp: true, scope: 'openid email profile groups offline_access' });
    assert.match(login.userCode, /\S/);
    assert.ok(login.verificationUri.startsWith(idp.issuer));
    const waiting = login.wait();
    await idp.approveDevice(login.userCode, new CookieJar(), { user: 'bob', mfa: 'amr-otp' });
    const tokens = await waiting;
    assert.ok(tokens.refreshToken, 'a refresh token is issued for offline_access');
    const res = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${tokens.idToken}` } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { sub: 'bob', groups: ['approvers', 'engineers'], amr: ['pwd', 'otp'], channel: null });
    // A refreshed ID token is accepted too, and keeps the original auth_time (MFA keeps ageing).
    const refreshed = await refreshDeviceLogin({ issuer: idp.issuer, clientId: idp.clients.cli.id, dangerouslyAllowHttp: true }, tokens.refreshToken!);
    const p = await settings.verifier.verify(refreshed.idToken);
    const p0 = await settings.verifier.verify(tokens.idToken);
    assert.equal(p.sub, 'bob');
    assert.equal(p.authTime, p0.authTime);
  });

  test('device flow: a person without MFA gets a token the API refuses with MFA_REQUIRED', async () => {
    const login = await startDeviceLogin({ issuer: idp.issuer, clientId: idp.clients.cli.id, dangerouslyAllowHttp: true });
    const waiting = login.wait();
    await idp.approveDevice(login.userCode, new CookieJar(), { user: 'mallory', mfa: 'none' });
    const { idToken } = await waiting;
    const res = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${idToken}` } });
    assert.equal(res.status, 403);
    assert.equal((await errorOf(res)).code, 'MFA_REQUIRED');
  });
});
