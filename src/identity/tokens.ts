// Verifies bearer OIDC ID tokens: issuer discovery, JWKS signature, iss/aud/exp, the strict claim checks, then the MFA rule.
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTHeaderParameters, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { parseDuration } from '../config/duration.ts';
import type { Principal, UserId } from '../domain/index.ts';
import type { Config } from '../config/schema.ts';
import { PortcullisError, isPortcullisError } from '../errors.ts';
import { assertIdTokenClaims, groupsAt, optionalString } from './claims.ts';
import { fetchIssuerMetadata } from './discovery.ts';
import { assertMfa, mfaFacts } from './mfa.ts';
import type { TokenVerifier } from './port.ts';

export type OidcConfig = Config['oidc'];

export interface TokenVerifierOptions {
  /** Audiences accepted; defaults to the configured web and CLI client ids. */
  clientIds?: string[];
  /** Milliseconds since epoch; injected by tests to move the clock. */
  now?: () => number;
  /** Seconds of leeway on exp/iat/nbf/auth_time for clock skew between broker and IdP; defaults to oidc.clockSkew. */
  clockToleranceSeconds?: number;
  /** How long a fetched discovery document is reused. */
  metadataTtlMs?: number;
  /** How long fetched keys are used before they are fetched again (jose's cacheMaxAge); tests shorten it. */
  keysTtlMs?: number;
}

// While the IdP cannot be reached, the keys fetched last keep verifying tokens for this long: an outage of the IdP
// should not sign everyone out at once, but keys it may have withdrawn meanwhile must not be trusted for ever.
const STALE_KEYS_MS = 60 * 60_000;

/** Verified tokens remembered (least recently used goes first): a few per signed-in user. */
const VERIFIED_TOKENS = 10_000;

// Asymmetric only: an HS* token would be "signed" with a secret the broker shares with the IdP,
// and `none` is not a signature at all.
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export function createTokenVerifier(oidc: OidcConfig, opts: TokenVerifierOptions = {}): TokenVerifier {
  const issuer = oidc.issuer;
  if (!issuer) throw new PortcullisError('CONFIG_INVALID', 'oidc.issuer is required to verify tokens', { field: 'oidc.issuer' });
  const clientIds = opts.clientIds ?? [oidc.clients.web?.id, oidc.clients.cli?.id].filter((x): x is string => !!x);
  if (clientIds.length === 0) throw new PortcullisError('CONFIG_INVALID', 'no OIDC client id is configured', { field: 'oidc.clients' });
  const now = opts.now ?? Date.now;
  const tolerance = opts.clockToleranceSeconds ?? seconds(oidc.clockSkew, 'oidc.clockSkew');
  const limits = {
    clockSkewSeconds: tolerance,
    maxLifetimeSeconds: seconds(oidc.maxTokenLifetime, 'oidc.maxTokenLifetime'),
    maxAgeSeconds: oidc.maxTokenAge === undefined ? undefined : seconds(oidc.maxTokenAge, 'oidc.maxTokenAge'),
    clientIds,
  };
  const metadataTtl = opts.metadataTtlMs ?? 10 * 60_000;
  const keysTtl = opts.keysTtlMs ?? 10 * 60_000;

  let keys: { jwks: ReturnType<typeof createRemoteJWKSet>; at: number; uri: string } | undefined;
  let inflight: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  /** When a key last came from the IdP's set; the remote set keeps those keys when a later fetch fails. */
  let lastGoodAt: number | undefined;
  let fallback: { from: ReturnType<typeof createRemoteJWKSet>; set: ReturnType<typeof createLocalJWKSet> } | undefined;

  async function keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (keys && Date.now() - keys.at < metadataTtl) return keys.jwks;
    // One discovery at a time; a failed one is forgotten so the next request retries.
    inflight ??= fetchIssuerMetadata(issuer!)
      .then((meta) => {
        const jwks = keys?.uri === meta.jwks_uri ? keys.jwks : createRemoteJWKSet(new URL(meta.jwks_uri), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: keysTtl });
        keys = { jwks, at: Date.now(), uri: meta.jwks_uri };
        return jwks;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  }

  /**
   * The remote key set, or while the IdP is unreachable the keys it served last (a kid not among them still fails:
   * nothing unknown is trusted). Token problems (no such kid within the cool-down, bad JWK) pass through.
   */
  const resolveKey: JWTVerifyGetKey = async (header, token) => {
    let remote: ReturnType<typeof createRemoteJWKSet>;
    try {
      remote = await keySet();
    } catch (e) {
      if (!keys || !stale()) throw e;
      remote = keys.jwks;
    }
    try {
      const key = await remote(header, token);
      lastGoodAt = Date.now();
      fallback = undefined;
      return key;
    } catch (e) {
      const served = isKeyProblem(e) || !stale() ? undefined : remote.jwks();
      if (!served) throw e;
      if (fallback?.from !== remote) fallback = { from: remote, set: createLocalJWKSet(served) };
      return fallback.set(header, token);
    }
  };
  const stale = () => lastGoodAt !== undefined && Date.now() - lastGoodAt < STALE_KEYS_MS;

  // A token whose signature and standard claims verified, by its exact text, until it expires (with the
  // tolerance, as jose judges exp) and at most as long as fetched keys are trusted: the same bearer
  // token on every API call is then verified once, not re-checked by RSA each time. Only the
  // signature and jose's claims are skipped; the checks below (claims, MFA age) run on every call.
  const verified = new Map<string, { payload: JWTPayload; header: JWTHeaderParameters; until: number }>();
  const recall = (idToken: string): { payload: JWTPayload; header: JWTHeaderParameters } | undefined => {
    const hit = verified.get(idToken);
    if (!hit) return undefined;
    const t = now();
    // nbf as jose judges it, for a clock that went back (tests move it); anything odd takes the full path.
    if (t >= hit.until || (typeof hit.payload.nbf === 'number' && hit.payload.nbf > Math.floor(t / 1000) + tolerance)) {
      verified.delete(idToken);
      return undefined;
    }
    verified.delete(idToken); // re-insert: the Map's order is the recency order
    verified.set(idToken, hit);
    return hit;
  };
  const remember = (idToken: string, payload: JWTPayload, header: JWTHeaderParameters): void => {
    const until = Math.min((payload.exp! + tolerance) * 1000, now() + keysTtl);
    if (verified.size >= VERIFIED_TOKENS) verified.delete(verified.keys().next().value!);
    verified.set(idToken, { payload, header, until });
  };

  return {
    async verify(idToken) {
      const known = recall(idToken);
      const { payload, header } = known ?? (await verifySignature(idToken));
      if (!known) remember(idToken, payload, header);
      return principalOf(payload, header);
    },
  };

  async function verifySignature(idToken: string): Promise<{ payload: JWTPayload; header: JWTHeaderParameters }> {
    let unverified: JWTPayload;
    try {
      const header = decodeProtectedHeader(idToken);
      unverified = decodeJwt(idToken);
      if (typeof header.alg !== 'string') throw new TypeError('no alg');
    } catch (e) {
      throw new PortcullisError('TOKEN_MALFORMED', 'the bearer credential is not a signed JWT', { cause: scrub(e) });
    }
    // Checked before the signature so a token of another IdP gets its own code instead of
    // "no matching key"; the signature check below still binds iss to our keys.
    if (unverified.iss !== issuer) {
      throw new PortcullisError('TOKEN_WRONG_ISSUER', 'the token was issued by another identity provider', { details: { expected: issuer } });
    }
    let payload: JWTPayload;
    let header: JWTHeaderParameters;
    try {
      ({ payload, protectedHeader: header } = await jwtVerify(idToken, resolveKey, {
        issuer,
        audience: clientIds,
        algorithms: ALGORITHMS,
        currentDate: new Date(now()),
        clockTolerance: tolerance,
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch (e) {
      throw mapJoseError(e);
    }
    return { payload, header };
  }

  function principalOf(payload: JWTPayload, header: JWTHeaderParameters): Principal {
    // With several audiences, azp names the client the token was issued to (OIDC Core §3.1.3.7).
    const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    const azp = optionalString(payload.azp);
    if (aud.length > 1 && azp === undefined) {
      throw new PortcullisError('TOKEN_WRONG_AUDIENCE', 'the token was issued to a client that is not configured here');
    }
    assertIdTokenClaims(header, payload, limits, Math.floor(now() / 1000));
    const claims = payload as Record<string, unknown>;
    const facts = mfaFacts(claims);
    assertMfa(facts, oidc.mfa, Math.floor(now() / 1000));
    return {
      sub: payload.sub as UserId,
      email: optionalString(claims.email),
      name: optionalString(claims.name),
      groups: groupsAt(claims, oidc.groupsClaim),
      mfa: true,
      authTime: facts.authTime,
      amr: facts.amr,
      acr: facts.acr,
      clientId: azp ?? aud.find((a): a is string => typeof a === 'string' && clientIds.includes(a)),
    } satisfies Principal;
  }
}

function seconds(d: string, key: string): number {
  const s = parseDuration(d);
  // The schema already refuses a bad duration; this guards a config built by hand in code.
  if (s === undefined) throw new PortcullisError('CONFIG_INVALID', `${key} is not a duration`, { field: key });
  return s;
}

/** Errors that are about the token's key (unknown kid, unusable JWK), not about reaching the IdP. */
function isKeyProblem(e: unknown): boolean {
  return e instanceof joseErrors.JWKSNoMatchingKey || e instanceof joseErrors.JWKSMultipleMatchingKeys || e instanceof joseErrors.JOSENotSupported || e instanceof joseErrors.JWKInvalid || e instanceof joseErrors.JWSSignatureVerificationFailed;
}

function mapJoseError(e: unknown): PortcullisError {
  if (isPortcullisError(e)) return e;
  if (e instanceof joseErrors.JWTExpired) return new PortcullisError('TOKEN_EXPIRED', 'the token has expired; sign in again');
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return new PortcullisError('TOKEN_WRONG_AUDIENCE', 'the token was issued to a client that is not configured here');
    if (e.claim === 'iss') return new PortcullisError('TOKEN_WRONG_ISSUER', 'the token was issued by another identity provider');
    return new PortcullisError('TOKEN_INVALID', `the token's "${e.claim}" claim is not acceptable (${e.reason})`);
  }
  if (e instanceof joseErrors.JWSSignatureVerificationFailed || e instanceof joseErrors.JWKSNoMatchingKey || e instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return new PortcullisError('TOKEN_BAD_SIGNATURE', 'the token signature does not verify with the identity provider keys');
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed || e instanceof joseErrors.JOSENotSupported) {
    return new PortcullisError('TOKEN_BAD_SIGNATURE', 'the token is signed with an algorithm that is not accepted');
  }
  if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid) {
    return new PortcullisError('TOKEN_MALFORMED', 'the bearer credential is not a well-formed JWT');
  }
  // JWKS unreachable, timed out, not JSON, or any other failure to obtain keys: nothing is accepted.
  return new PortcullisError('IDP_UNAVAILABLE', "the identity provider's keys could not be fetched", { cause: scrub(e) });
}

/** Causes keep only the class and message: some parse errors quote their input, which is the token. */
function scrub(e: unknown): Error {
  const name = e instanceof Error ? e.name : 'Error';
  const code = e && typeof e === 'object' && 'code' in e ? String((e as { code: unknown }).code) : undefined;
  return Object.assign(new Error(`${name}${code ? ` (${code})` : ''}`), { name });
}
