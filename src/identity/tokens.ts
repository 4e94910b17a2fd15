// Verifies bearer OIDC ID tokens: issuer discovery, JWKS signature, iss/aud/exp, then the MFA rule.
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Principal, UserId } from '../domain/index.ts';
import type { Config } from '../config/schema.ts';
import { PortcullisError, isPortcullisError } from '../errors.ts';
import { groupsAt, optionalString } from './claims.ts';
import { fetchIssuerMetadata } from './discovery.ts';
import { assertMfa, mfaFacts } from './mfa.ts';
import type { TokenVerifier } from './port.ts';

export type OidcConfig = Config['oidc'];

export interface TokenVerifierOptions {
  /** Audiences accepted; defaults to the configured web and CLI client ids. */
  clientIds?: string[];
  /** Milliseconds since epoch; injected by tests to move the clock. */
  now?: () => number;
  /** Seconds of leeway on exp/iat/nbf for clock skew between broker and IdP. */
  clockToleranceSeconds?: number;
  /** How long a fetched discovery document is reused. */
  metadataTtlMs?: number;
}

// Asymmetric only: an HS* token would be "signed" with a secret the broker shares with the IdP,
// and `none` is not a signature at all.
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export function createTokenVerifier(oidc: OidcConfig, opts: TokenVerifierOptions = {}): TokenVerifier {
  const issuer = oidc.issuer;
  if (!issuer) throw new PortcullisError('CONFIG_INVALID', 'oidc.issuer is required to verify tokens', { field: 'oidc.issuer' });
  const clientIds = opts.clientIds ?? [oidc.clients.web?.id, oidc.clients.cli?.id].filter((x): x is string => !!x);
  if (clientIds.length === 0) throw new PortcullisError('CONFIG_INVALID', 'no OIDC client id is configured', { field: 'oidc.clients' });
  const now = opts.now ?? Date.now;
  const tolerance = opts.clockToleranceSeconds ?? 30;
  const metadataTtl = opts.metadataTtlMs ?? 10 * 60_000;

  let keys: { jwks: ReturnType<typeof createRemoteJWKSet>; at: number; uri: string } | undefined;
  let inflight: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;

  async function keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (keys && Date.now() - keys.at < metadataTtl) return keys.jwks;
    // One discovery at a time; a failed one is forgotten so the next request retries.
    inflight ??= fetchIssuerMetadata(issuer!)
      .then((meta) => {
        const jwks = keys?.uri === meta.jwks_uri ? keys.jwks : createRemoteJWKSet(new URL(meta.jwks_uri), { timeoutDuration: 5000, cooldownDuration: 30_000 });
        keys = { jwks, at: Date.now(), uri: meta.jwks_uri };
        return jwks;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  }

  return {
    async verify(idToken) {
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
      const jwks = await keySet();
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(idToken, jwks, {
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
      // With several audiences, azp names the client the token was issued to (OIDC Core §3.1.3.7).
      const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      const azp = optionalString(payload.azp);
      if (aud.length > 1 && (azp === undefined || !clientIds.includes(azp))) {
        throw new PortcullisError('TOKEN_WRONG_AUDIENCE', 'the token was issued to a client that is not configured here');
      }
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
    },
  };
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
