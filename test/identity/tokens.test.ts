// Bearer ID token verification against a real oidc-provider: each refusal code, and acceptance.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { configSchema, type Config } from '../../src/config/schema.ts';
import { isPortcullisError, type ErrorCode } from '../../src/errors.ts';
import { createTokenVerifier } from '../../src/identity/tokens.ts';
import { MFA_ACR, resignWithForeignKey, startTestIdp, tamperPayload, type TestIdp } from '../helpers/idp.ts';

function oidcConfig(issuer: string, patch: Partial<Config['oidc']> = {}): Config['oidc'] {
  const cfg = configSchema.parse({
    oidc: {
      issuer,
      dangerouslyAllowHttpIssuer: true,
      clients: { web: { id: 'portcullis-web', secret: 'x' }, cli: { id: 'portcullis-cli' } },
      ...patch,
    },
  });
  return cfg.oidc;
}

async function refused(p: Promise<unknown>, code: ErrorCode, token?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isPortcullisError(e), `expected a PortcullisError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (token) {
      // Neither the token nor its signature may leak through the message or the cause.
      const text = `${e.message} ${String((e.cause as Error | undefined)?.message ?? '')} ${JSON.stringify(e.details ?? {})}`;
      assert.ok(!text.includes(token) && !text.includes(token.split('.')[2]!), 'error text must not contain the token');
    }
    return true;
  });
}

describe('bearer ID token verification', () => {
  let idp: TestIdp;
  let other: TestIdp;
  before(async () => {
    idp = await startTestIdp();
    other = await startTestIdp();
  });
  after(async () => {
    await idp.close();
    await other.close();
  });

  test('accepts a token with amr ["pwd","mfa"] and returns the principal with groups', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer));
    const p = await v.verify(await idp.getIdToken('alice', { mfa: 'amr-mfa' }));
    assert.equal(p.sub, 'alice');
    assert.equal(p.email, 'alice@example.com');
    assert.deepEqual(p.groups, ['engineers']);
    assert.equal(p.mfa, true);
    assert.deepEqual(p.amr, ['pwd', 'mfa']);
    assert.equal(p.clientId, 'portcullis-web');
    assert.ok(p.authTime && Math.abs(p.authTime - Date.now() / 1000) < 60);
  });

  test('accepts amr ["pwd","otp"]', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer));
    const p = await v.verify(await idp.getIdToken('bob', { mfa: 'amr-otp' }));
    assert.deepEqual(p.amr, ['pwd', 'otp']);
    assert.deepEqual(p.groups, ['approvers', 'engineers']);
  });

  test('accepts MFA carried only in acr when that acr is configured, refuses it otherwise', async () => {
    const token = await idp.getIdToken('alice', { mfa: 'acr' });
    const withAcr = createTokenVerifier(oidcConfig(idp.issuer, { mfa: { amr: ['mfa'], acr: [MFA_ACR], maxAge: '12h' } }));
    const p = await withAcr.verify(token);
    assert.equal(p.acr, MFA_ACR);
    assert.deepEqual(p.amr, []);
    await refused(createTokenVerifier(oidcConfig(idp.issuer)).verify(token), 'MFA_REQUIRED');
  });

  test('reads groups from a nested claim path such as realm_access.roles', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer, { groupsClaim: 'realm_access.roles' }));
    const p = await v.verify(await idp.getIdToken('alice'));
    assert.deepEqual(p.groups, ['rdp-users', 'engineers']);
  });

  test('refuses a password-only sign-in with MFA_REQUIRED', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer));
    const token = await idp.getIdToken('alice', { mfa: 'none' });
    await refused(v.verify(token), 'MFA_REQUIRED', token);
  });

  test('refuses an MFA sign-in older than maxAge with MFA_TOO_OLD', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer, { mfa: { amr: ['mfa'], acr: [], maxAge: '1h' } }));
    const token = await idp.getIdToken('alice', { authTime: Math.floor(Date.now() / 1000) - 2 * 3600 });
    await refused(v.verify(token), 'MFA_TOO_OLD', token);
  });

  test('refuses a token of another issuer with TOKEN_WRONG_ISSUER', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer));
    const token = await other.getIdToken('alice');
    await refused(v.verify(token), 'TOKEN_WRONG_ISSUER', token);
  });

  test('refuses a token for a client not configured here with TOKEN_WRONG_AUDIENCE', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer));
    const token = await idp.getIdToken('alice', { clientId: idp.clients.other.id });
    await refused(v.verify(token), 'TOKEN_WRONG_AUDIENCE', token);
  });

  test('refuses an expired token with TOKEN_EXPIRED', async () => {
    const token = await idp.getIdToken('alice');
    const later = createTokenVerifier(oidcConfig(idp.issuer), { now: () => Date.now() + 2 * 3600_000 });
    await refused(later.verify(token), 'TOKEN_EXPIRED', token);
  });

  test('refuses a token whose lifetime ran out on the real clock', async () => {
    const short = await startTestIdp({ idTokenTtlSeconds: 1 });
    try {
      const token = await short.getIdToken('alice');
      const v = createTokenVerifier(oidcConfig(short.issuer), { clockToleranceSeconds: 0 });
      await v.verify(token);
      await new Promise((r) => setTimeout(r, 2100));
      await refused(v.verify(token), 'TOKEN_EXPIRED', token);
    } finally {
      await short.close();
    }
  });

  test('refuses a tampered payload and a foreign signature with TOKEN_BAD_SIGNATURE', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer));
    const token = await idp.getIdToken('mallory');
    const tampered = tamperPayload(token, { groups: ['admins'] });
    await refused(v.verify(tampered), 'TOKEN_BAD_SIGNATURE', tampered);
    const forged = await resignWithForeignKey(token);
    await refused(v.verify(forged), 'TOKEN_BAD_SIGNATURE', forged);
  });

  test('refuses garbage and unsigned tokens with TOKEN_MALFORMED or TOKEN_BAD_SIGNATURE', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer));
    await refused(v.verify('not-a-jwt'), 'TOKEN_MALFORMED');
    await refused(v.verify('a.b.c'), 'TOKEN_MALFORMED');
    const token = await idp.getIdToken('alice');
    const [, payload] = token.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.`;
    await assert.rejects(v.verify(none), (e: unknown) => isPortcullisError(e) && ['TOKEN_BAD_SIGNATURE', 'TOKEN_MALFORMED'].includes(e.code));
  });

  test('fails closed with IDP_UNAVAILABLE when the issuer cannot be reached', async () => {
    const gone = await startTestIdp();
    const token = await gone.getIdToken('alice');
    await gone.close();
    const v = createTokenVerifier(oidcConfig(gone.issuer));
    await refused(v.verify(token), 'IDP_UNAVAILABLE', token);
  });
});
