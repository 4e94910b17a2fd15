// The development IdP keeps its signing key and demo enrolments under the data directory: a token from before a
// restart still verifies, and a user who enrolled TOTP is asked for a code, not to enrol again.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { Secret, TOTP } from 'otpauth';
import { configSchema } from '../../src/config/schema.ts';
import { createDevIdp, type DevIdp } from '../../src/dev/idp.ts';
import { isPortcullisError } from '../../src/errors.ts';
import { createTokenVerifier } from '../../src/identity/tokens.ts';
import { tempDir } from '../helpers/broker.ts';
import { CookieJar, formFields, pkcePair } from '../helpers/idp.ts';
import { freshCode } from './signin.ts';

describe('development IdP across a restart', () => {
  let server: Server;
  let base: string;
  let issuer: string;
  let current: DevIdp | undefined;
  let dir: { dir: string; cleanup: () => void };
  const secret = 'dev-web-secret';

  const start = async (stateDir: string | undefined) => {
    await current?.close();
    current = await createDevIdp({ issuer, publicUrl: base, webClient: { id: 'portcullis-web', secret, redirectUris: [`${base}/auth/callback`] }, cliClient: { id: 'portcullis-cli' }, stateDir });
    return current;
  };
  // A fresh verifier each time: it fetches the provider's keys as a restarted broker would.
  const verify = (token: string) => createTokenVerifier(configSchema.parse({ oidc: { issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: 'portcullis-web', secret } } } }).oidc).verify(token);

  before(async () => {
    dir = tempDir('portcullis-devidp-');
    server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    issuer = `${base}/idp`;
    const app = express();
    // The same address before and after: the "restart" swaps the provider behind it.
    app.use('/idp', (req, res, next) => current!.handler(req, res, next));
    server.on('request', app);
  });
  after(async () => {
    await current?.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    dir.cleanup();
  });

  /** Authorization code flow for one user; `second` answers the page after the password (TOTP or enrolment). */
  async function token(user: string, password: string, second: (html: string) => Promise<{ action: string; otp: string }>): Promise<string> {
    const jar = new CookieJar();
    const { verifier, challenge } = pkcePair();
    const auth = new URL(`${issuer}/auth`);
    auth.search = new URLSearchParams({ client_id: 'portcullis-web', redirect_uri: `${base}/auth/callback`, response_type: 'code', scope: 'openid email profile', state: 's', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256' }).toString();
    let res = await jar.fetch(auth);
    const loginUrl = new URL(res.headers.get('location')!, base);
    const login = formFields(await (await jar.fetch(loginUrl)).text());
    const post = (action: string, fields: Record<string, string>) => jar.fetch(new URL(action, loginUrl), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
    const page = await (await post(login.action!, { login: user, password })).text();
    const s = await second(page);
    res = await post(s.action, { otp: s.otp });
    while (res.status >= 300 && res.status < 400) {
      const loc = new URL(res.headers.get('location')!, base);
      if (loc.pathname === '/auth/callback') {
        const t = await fetch(`${issuer}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`portcullis-web:${secret}`).toString('base64')}` },
          body: new URLSearchParams({ grant_type: 'authorization_code', code: loc.searchParams.get('code')!, redirect_uri: `${base}/auth/callback`, code_verifier: verifier }),
        });
        return ((await t.json()) as { id_token: string }).id_token;
      }
      res = await jar.fetch(loc);
    }
    throw new Error(`sign-in ended at ${res.status}`);
  }
  const totpStep = (user: string) => async (html: string) => {
    assert.match(html, /Two-step verification/, 'asked for a code, not to enrol');
    return { action: formFields(html).action!, otp: await freshCode(user) };
  };

  test('with a state directory, a token from before the restart verifies after it, and enrolments stay', async () => {
    await start(dir.dir);
    const before = await token('alice', 'alice-demo', totpStep('alice'));
    let enrolled = '';
    await token('nina', 'nina-demo', async (html) => {
      enrolled = /<div class="secret">([A-Z2-7]+)<\/div>/.exec(html)![1]!;
      return { action: /action="([^"]*\/otp)"/.exec(html)![1]!, otp: new TOTP({ secret: Secret.fromBase32(enrolled) }).generate() };
    });
    const file = join(dir.dir, 'dev-idp.json');
    assert.equal(statSync(file).mode & 0o777, 0o600, 'demo keys are readable by the owner only');

    await start(dir.dir);
    assert.equal((await verify(before)).sub, 'alice', 'the old token still verifies');
    assert.equal(current!.users.get('nina')!.totpSecret, enrolled);
    // nina now signs in with a code from the app she enrolled.
    const nina = await token('nina', 'nina-demo', async (html) => {
      assert.match(html, /Two-step verification/);
      return { action: formFields(html).action!, otp: new TOTP({ secret: Secret.fromBase32(enrolled) }).generate({ timestamp: Date.now() + 30_000 }) };
    });
    assert.deepEqual((await verify(nina)).amr, ['pwd', 'otp']);
  });

  test('without one (the old behaviour), the same token is refused after a restart: the test can tell', async () => {
    await start(undefined);
    const before = await token('bob', 'bob-demo', totpStep('bob'));
    await start(undefined);
    await assert.rejects(verify(before), (e: unknown) => isPortcullisError(e) && /TOKEN_BAD_SIGNATURE|TOKEN_INVALID|IDP_UNAVAILABLE/.test(e.code));
  });
});
