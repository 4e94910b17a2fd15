// The embedded development IdP: password + real TOTP gives amr ["pwd","otp"], enrolment with a QR code, skip gives no MFA.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { Secret, TOTP } from 'otpauth';
import { configSchema } from '../../src/config/schema.ts';
import { createDevIdp, totpFor, type DevIdp } from '../../src/dev/idp.ts';
import { isPortcullisError } from '../../src/errors.ts';
import { createTokenVerifier } from '../../src/identity/tokens.ts';
import { CookieJar, formFields, pkcePair } from '../helpers/idp.ts';

describe('development IdP', () => {
  let server: Server;
  let base: string;
  let issuer: string;
  let dev: DevIdp;
  const secret = 'dev-web-secret';

  before(async () => {
    server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    issuer = `${base}/idp`;
    dev = await createDevIdp({ issuer, publicUrl: base, webClient: { id: 'portcullis-web', secret, redirectUris: [`${base}/auth/callback`] }, cliClient: { id: 'portcullis-cli' } });
    const app = express();
    app.use('/idp', dev.handler);
    server.on('request', app);
  });
  after(async () => {
    await dev.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const verifier = () =>
    createTokenVerifier(configSchema.parse({ oidc: { issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: 'portcullis-web', secret } } } }).oidc);

  /** Authorization request → login page → password → (callback) to drive a second step; returns the page after the password. */
  async function start(jar: CookieJar): Promise<{ html: string; verifier: string; url: URL }> {
    const { verifier: v, challenge } = pkcePair();
    const auth = new URL(`${issuer}/auth`);
    auth.search = new URLSearchParams({ client_id: 'portcullis-web', redirect_uri: `${base}/auth/callback`, response_type: 'code', scope: 'openid email profile', state: 's1', nonce: 'n1', code_challenge: challenge, code_challenge_method: 'S256' }).toString();
    let res = await jar.fetch(auth);
    assert.equal(res.status, 303);
    const loginUrl = new URL(res.headers.get('location')!, base);
    res = await jar.fetch(loginUrl);
    const html = await res.text();
    assert.equal(res.status, 200);
    assert.match(html, /<h1>Sign in<\/h1>/);
    assert.doesNotMatch(html, /https?:\/\/(?!127\.0\.0\.1)[^"]*\.(css|js|woff)/, 'no external assets');
    return { html, verifier: v, url: loginUrl };
  }
  async function post(jar: CookieJar, url: URL, action: string, fields: Record<string, string>): Promise<Response> {
    return jar.fetch(new URL(action, url), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
  }
  async function finish(jar: CookieJar, res: Response, codeVerifier: string): Promise<string> {
    let next = res;
    while (next.status >= 300 && next.status < 400) {
      const loc = new URL(next.headers.get('location')!, base);
      if (loc.pathname === '/auth/callback') {
        const token = await fetch(`${issuer}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`portcullis-web:${secret}`).toString('base64')}` },
          body: new URLSearchParams({ grant_type: 'authorization_code', code: loc.searchParams.get('code')!, redirect_uri: `${base}/auth/callback`, code_verifier: codeVerifier }),
        });
        return ((await token.json()) as { id_token: string }).id_token;
      }
      next = await jar.fetch(loc);
    }
    throw new Error(`sign-in ended at ${next.status}`);
  }

  test('password then a valid TOTP code signs in with amr ["pwd","otp"] and the user groups', async () => {
    const jar = new CookieJar();
    const s = await start(jar);
    const pw = formFields(s.html);
    const otpPage = await post(jar, s.url, pw.action!, { login: 'alice', password: 'alice-demo' });
    const otpHtml = await otpPage.text();
    assert.match(otpHtml, /Two-step verification/);
    const wrong = await post(jar, s.url, formFields(otpHtml).action!, { otp: '000000' });
    assert.equal(wrong.status, 401);
    const code = totpFor(dev.users.get('alice')!).generate();
    const ok = await post(jar, s.url, formFields(otpHtml).action!, { otp: code });
    const p = await verifier().verify(await finish(jar, ok, s.verifier));
    assert.equal(p.sub, 'alice');
    assert.deepEqual(p.amr, ['pwd', 'otp']);
    assert.deepEqual(p.groups, ['engineers']);
  });

  test('a wrong password is refused', async () => {
    const jar = new CookieJar();
    const s = await start(jar);
    const res = await post(jar, s.url, formFields(s.html).action!, { login: 'alice', password: 'nope' });
    assert.equal(res.status, 401);
    assert.match(await res.text(), /Wrong username or password/);
  });

  test('a user without MFA is offered enrolment with a QR code; skipping gives a token the broker refuses', async () => {
    const jar = new CookieJar();
    const s = await start(jar);
    const enrol = await post(jar, s.url, formFields(s.html).action!, { login: 'nina', password: 'nina-demo' });
    const html = await enrol.text();
    assert.match(html, /Set up two-step verification/);
    assert.match(html, /src="data:image\/png;base64,/);
    const skip = /action="([^"]*\/skip)"/.exec(html)![1]!;
    const token = await finish(jar, await post(jar, s.url, skip, {}), s.verifier);
    await assert.rejects(verifier().verify(token), (e: unknown) => isPortcullisError(e, 'MFA_REQUIRED'));
  });

  test('enrolling TOTP at sign-in gives amr ["pwd","otp"] and the secret sticks', async () => {
    const jar = new CookieJar();
    const s = await start(jar);
    const enrol = await post(jar, s.url, formFields(s.html).action!, { login: 'nina', password: 'nina-demo' });
    const html = await enrol.text();
    const shown = /<div class="secret">([A-Z2-7]+)<\/div>/.exec(html)![1]!;
    const code = new TOTP({ secret: Secret.fromBase32(shown) }).generate();
    const token = await finish(jar, await post(jar, s.url, /action="([^"]*\/otp)"/.exec(html)![1]!, { otp: code }), s.verifier);
    assert.deepEqual((await verifier().verify(token)).amr, ['pwd', 'otp']);
    assert.equal(dev.users.get('nina')!.totpSecret, shown);
  });

  test('the banner names every demo user, password and how to get a token', () => {
    const text = dev.bannerLines().join('\n');
    for (const u of ['alice', 'bob', 'tess', 'nina']) assert.match(text, new RegExp(`\\b${u}\\b`));
    assert.match(text, /alice-demo/);
    assert.match(text, /\/auth\/login/);
    assert.match(text, /portcullis login/);
  });

  test('the embedded IdP cannot be enabled unless the broker listens on loopback', () => {
    const r = configSchema.safeParse({ server: { listen: '0.0.0.0:8080' }, dev: { embeddedIdp: true } });
    assert.equal(r.success, false);
    assert.ok(!r.success && r.error.issues.some((i) => i.path.join('.') === 'dev.embeddedIdp'));
  });
});
