// Bearer ID token verification against a real oidc-provider: each refusal code, and acceptance.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { configSchema, type Config } from '../../src/config/schema.ts';
import { isPortcullisError, type ErrorCode } from '../../src/errors.ts';
import { createTokenVerifier } from '../../src/identity/tokens.ts';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import { MFA_ACR, resignWithForeignKey, startTestIdp, tamperPayload, type TestIdp } from '../helpers/idp.ts';

function oidcConfig(issuer: string, patch: { [K in keyof Config['oidc']]?: unknown } = {}): Config['oidc'] {
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

  // A controlled clock, not a sleep: under load, fetching the keys alone can take longer than a 1 s lifetime.
  test('refuses a token from the second its lifetime runs out (no tolerance)', async () => {
    const short = await startTestIdp({ idTokenTtlSeconds: 1 });
    try {
      const token = await short.getIdToken('alice');
      const { exp } = decodeJwt(token);
      let clock = exp! * 1000 - 1;
      const v = createTokenVerifier(oidcConfig(short.issuer), { clockToleranceSeconds: 0, now: () => clock });
      assert.equal((await v.verify(token)).sub, 'alice');
      clock = exp! * 1000;
      await refused(v.verify(token), 'TOKEN_EXPIRED', token);
    } finally {
      await short.close();
    }
  });

  // The verifier remembers a verified token by its text: what depends on the clock is still judged on each call.
  test('a remembered token: the same principal again, refused once its MFA sign-in is too old and once it expires', async () => {
    const token = await idp.getIdToken('alice', { authTime: Math.floor(Date.now() / 1000) - 120 });
    const { exp } = decodeJwt(token);
    let clock = Date.now();
    const v = createTokenVerifier(oidcConfig(idp.issuer, { mfa: { amr: ['mfa'], acr: [], maxAge: '10m' } }), { clockToleranceSeconds: 0, now: () => clock });
    const first = await v.verify(token);
    const again = await v.verify(token);
    assert.deepEqual(again, first);
    again.groups.push('admins');
    assert.deepEqual((await v.verify(token)).groups, ['engineers'], 'each call gets its own principal');
    clock += 9 * 60_000; // within the keys' lifetime, so still remembered: the MFA age is judged anyway
    await refused(v.verify(token), 'MFA_TOO_OLD', token);
    clock = exp! * 1000;
    await refused(v.verify(token), 'TOKEN_EXPIRED', token);
    // A token differing in one character is another text: verified from scratch, and refused.
    const tampered = tamperPayload(token, { groups: ['admins'] });
    clock = Date.now();
    await refused(v.verify(tampered), 'TOKEN_BAD_SIGNATURE', tampered);
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

// Claims a signature cannot vouch for: each forged with the real provider's own key, so only the claim check stands
// between the token and acceptance.
describe('strict ID token claims (tokens signed with the IdP key)', () => {
  let idp: TestIdp;
  let token: string;
  let iat: number;
  before(async () => {
    idp = await startTestIdp();
    token = await idp.getIdToken('alice');
    iat = decodeJwt(token).iat!;
  });
  after(async () => {
    await idp.close();
  });
  const at = (seconds: number) => () => seconds * 1000;

  test('a re-signed, unchanged token is accepted: the forgeries below differ only in the claim under test', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer), { now: at(iat) });
    assert.equal((await v.verify(await idp.resign(token, {}))).sub, 'alice');
  });

  test('iat in the future beyond oidc.clockSkew: TOKEN_ISSUED_IN_FUTURE (1 hour and 10 years ahead)', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer), { now: at(iat) });
    for (const ahead of [3600, 10 * 365 * 86400]) {
      const forged = await idp.resign(token, { iat: iat + ahead, exp: iat + ahead + 3600, auth_time: iat });
      await refused(v.verify(forged), 'TOKEN_ISSUED_IN_FUTURE', forged);
    }
  });

  test('a lifetime exp − iat beyond oidc.maxTokenLifetime: TOKEN_LIFETIME_TOO_LONG; the bound is configurable', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer), { now: at(iat) });
    const tenYears = await idp.resign(token, { exp: iat + 10 * 365 * 86400 });
    await refused(v.verify(tenYears), 'TOKEN_LIFETIME_TOO_LONG', tenYears);
    const twoHours = await idp.resign(token, { exp: iat + 7200 });
    assert.equal((await v.verify(twoHours)).sub, 'alice');
    const strict = createTokenVerifier(oidcConfig(idp.issuer, { maxTokenLifetime: '1h' }), { now: at(iat) });
    await refused(strict.verify(twoHours), 'TOKEN_LIFETIME_TOO_LONG', twoHours);
  });

  test('auth_time in the future (after now, or after iat): TOKEN_AUTH_TIME_IN_FUTURE, never counted as fresh MFA', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer), { now: at(iat) });
    const future = await idp.resign(token, { auth_time: iat + 3600 });
    await refused(v.verify(future), 'TOKEN_AUTH_TIME_IN_FUTURE', future);
    const afterIssue = await idp.resign(token, { auth_time: iat + 600, iat: iat + 30 });
    await refused(createTokenVerifier(oidcConfig(idp.issuer), { now: at(iat + 900) }).verify(afterIssue), 'TOKEN_AUTH_TIME_IN_FUTURE', afterIssue);
    const withinSkew = await idp.resign(token, { auth_time: iat + 30 });
    assert.equal((await v.verify(withinSkew)).authTime, iat + 30);
  });

  test('azp naming another client: TOKEN_WRONG_AZP, also when aud is one of ours', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer), { now: at(iat) });
    const forged = await idp.resign(token, { azp: idp.clients.other.id });
    await refused(v.verify(forged), 'TOKEN_WRONG_AZP', forged);
    const multi = await idp.resign(token, { aud: ['portcullis-web', idp.clients.other.id], azp: idp.clients.other.id });
    await refused(v.verify(multi), 'TOKEN_WRONG_AZP', multi);
    const ours = await idp.resign(token, { aud: ['portcullis-web', idp.clients.other.id], azp: 'portcullis-web' });
    assert.equal((await v.verify(ours)).clientId, 'portcullis-web');
  });

  test('an access token used as an ID token: TOKEN_NOT_ID_TOKEN (typ at+jwt, application/at+jwt, Keycloak typ Bearer)', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer), { now: at(iat) });
    for (const typ of ['at+jwt', 'application/at+jwt', 'AT+JWT', 'logout+jwt']) {
      const forged = await idp.resign(token, {}, { typ });
      await refused(v.verify(forged), 'TOKEN_NOT_ID_TOKEN', forged);
    }
    const keycloakAccess = await idp.resign(token, { typ: 'Bearer' });
    await refused(v.verify(keycloakAccess), 'TOKEN_NOT_ID_TOKEN', keycloakAccess);
    assert.equal((await v.verify(await idp.resign(token, {}, { typ: 'JWT' }))).sub, 'alice');
  });

  test('an empty, blank or over-long sub: TOKEN_BAD_SUBJECT', async () => {
    const v = createTokenVerifier(oidcConfig(idp.issuer), { now: at(iat) });
    for (const sub of ['', '   ', 'x'.repeat(256)]) {
      const forged = await idp.resign(token, { sub });
      await refused(v.verify(forged), 'TOKEN_BAD_SUBJECT', forged);
    }
  });

  test('oidc.maxTokenAge refuses a token issued longer ago, though unexpired: TOKEN_TOO_OLD; unset, it is accepted', async () => {
    const tenMinutesLater = at(iat + 600);
    await refused(createTokenVerifier(oidcConfig(idp.issuer, { maxTokenAge: '5m' }), { now: tenMinutesLater }).verify(token), 'TOKEN_TOO_OLD', token);
    assert.equal((await createTokenVerifier(oidcConfig(idp.issuer), { now: tenMinutesLater }).verify(token)).sub, 'alice');
    assert.equal((await createTokenVerifier(oidcConfig(idp.issuer, { maxTokenAge: '15m' }), { now: tenMinutesLater }).verify(token)).sub, 'alice');
  });

  test('clock skew between broker and IdP: within oidc.clockSkew accepted, beyond it refused, both directions', async () => {
    const exp = decodeJwt(token).exp!;
    // Broker behind the IdP: the token looks issued in the future.
    assert.equal((await createTokenVerifier(oidcConfig(idp.issuer), { now: at(iat - 30) }).verify(token)).sub, 'alice');
    await refused(createTokenVerifier(oidcConfig(idp.issuer), { now: at(iat - 120) }).verify(token), 'TOKEN_ISSUED_IN_FUTURE', token);
    assert.equal((await createTokenVerifier(oidcConfig(idp.issuer, { clockSkew: '5m' }), { now: at(iat - 120) }).verify(token)).sub, 'alice');
    // Broker ahead of the IdP: the token looks expired.
    assert.equal((await createTokenVerifier(oidcConfig(idp.issuer), { now: at(exp + 30) }).verify(token)).sub, 'alice');
    await refused(createTokenVerifier(oidcConfig(idp.issuer), { now: at(exp + 120) }).verify(token), 'TOKEN_EXPIRED', token);
  });
});

describe('the IdP keys while the IdP is unreachable', () => {
  test('cached keys keep verifying known tokens; an unknown kid fails closed with a token code', async () => {
    const idp = await startTestIdp();
    const token = await idp.getIdToken('alice');
    const { privateKey } = await generateKeyPair('RS256');
    const unknownKid = await new SignJWT(decodeJwt(token)).setProtectedHeader({ alg: 'RS256', kid: 'not-a-key-of-the-idp' }).sign(privateKey);
    // Discovery and keys are due for a refresh on every use: each verification below tries the (gone) IdP first.
    const v = createTokenVerifier(oidcConfig(idp.issuer), { metadataTtlMs: 0, keysTtlMs: 1 });
    assert.equal((await v.verify(token)).sub, 'alice');
    await idp.close();
    await new Promise((r) => setTimeout(r, 5));
    assert.equal((await v.verify(token)).sub, 'alice', 'the keys fetched before the outage still verify');
    await refused(v.verify(unknownKid), 'TOKEN_BAD_SIGNATURE', unknownKid);
    const tampered = tamperPayload(token, { groups: ['admins'] });
    await refused(v.verify(tampered), 'TOKEN_BAD_SIGNATURE', tampered);
  });
});
