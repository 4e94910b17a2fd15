// Reads profile facts out of verified ID token claims (groups from a configurable, possibly nested claim), and the
// strict checks a signature cannot make: that the token is an ID token, for us, for someone, and sanely timed.
import type { JWTHeaderParameters, JWTPayload } from 'jose';
import { PortcullisError } from '../errors.ts';

export interface ClaimLimits {
  /** Leeway for clocks that disagree between broker and IdP. */
  clockSkewSeconds: number;
  /** The longest `exp − iat` accepted: a token valid for years is a leak waiting to happen. */
  maxLifetimeSeconds: number;
  /** Refuse tokens issued longer ago than this, whatever their `exp` (oidc.maxTokenAge). */
  maxAgeSeconds?: number | undefined;
  /** The client ids of this broker: `azp`, when present, must name one of them. */
  clientIds: readonly string[];
}

// Explicitly typed JWTs of other kinds (RFC 9068 access tokens `at+jwt`, logout tokens, security event tokens): none
// of them is an ID token, whoever signed it. ID tokens carry no `typ` or plain `JWT`.
const OTHER_JWT_TYPE = /\+jwt$/i;
// Keycloak marks its access and refresh tokens in the payload (its ID tokens say `typ: "ID"`).
const KEYCLOAK_NON_ID = new Set(['Bearer', 'Refresh', 'Offline']);

/** Throws a code per defect; `nowSeconds` is the broker's clock. Runs after the signature, iss, aud and exp checks. */
export function assertIdTokenClaims(header: JWTHeaderParameters, payload: JWTPayload, limits: ClaimLimits, nowSeconds: number): void {
  const typ = typeof header.typ === 'string' ? header.typ.replace(/^application\//i, '') : undefined;
  if ((typ !== undefined && OTHER_JWT_TYPE.test(typ)) || (typeof payload.typ === 'string' && KEYCLOAK_NON_ID.has(payload.typ))) {
    throw new PortcullisError('TOKEN_NOT_ID_TOKEN', 'the bearer credential is not an ID token (it is typed as another kind of token, such as an access token)');
  }
  // OIDC Core §2: sub is a locally unique identifier, never reassigned, at most 255 ASCII characters.
  if (typeof payload.sub !== 'string' || payload.sub.trim().length === 0 || payload.sub.length > 255) {
    throw new PortcullisError('TOKEN_BAD_SUBJECT', 'the token does not name a subject (sub is missing, empty or longer than 255 characters)');
  }
  // OIDC Core §3.1.3.7: when azp is present, it must be this client.
  if (payload.azp !== undefined && (typeof payload.azp !== 'string' || !limits.clientIds.includes(payload.azp))) {
    throw new PortcullisError('TOKEN_WRONG_AZP', 'the token was issued to (azp) a client that is not configured here');
  }
  const skew = limits.clockSkewSeconds;
  const iat = payload.iat!;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new PortcullisError('TOKEN_INVALID', 'the token\'s "iat" claim is not a number');
  if (iat > nowSeconds + skew) {
    throw new PortcullisError('TOKEN_ISSUED_IN_FUTURE', `the token says it was issued ${iat - nowSeconds}s in the future, more than the allowed clock skew (oidc.clockSkew, ${skew}s)`);
  }
  const exp = payload.exp!;
  if (exp - iat > limits.maxLifetimeSeconds) {
    throw new PortcullisError('TOKEN_LIFETIME_TOO_LONG', `the token is valid for ${exp - iat}s, more than the allowed oidc.maxTokenLifetime (${limits.maxLifetimeSeconds}s)`);
  }
  if (limits.maxAgeSeconds !== undefined && nowSeconds - iat > limits.maxAgeSeconds + skew) {
    throw new PortcullisError('TOKEN_TOO_OLD', `the token was issued ${nowSeconds - iat}s ago, more than the allowed oidc.maxTokenAge (${limits.maxAgeSeconds}s); sign in again`);
  }
  const authTime = payload.auth_time;
  if (authTime !== undefined && (typeof authTime !== 'number' || !Number.isFinite(authTime))) {
    throw new PortcullisError('TOKEN_INVALID', 'the token\'s "auth_time" claim is not a number');
  }
  // A sign-in after now, or after the token was issued, did not happen; counting it as fresh MFA would stretch maxAge.
  if (typeof authTime === 'number' && (authTime > nowSeconds + skew || authTime > iat + skew)) {
    throw new PortcullisError('TOKEN_AUTH_TIME_IN_FUTURE', 'the token says the sign-in (auth_time) happened in the future');
  }
}

/**
 * Groups at `path` in `claims`. A dotted path walks nested objects (`realm_access.roles`); a claim
 * whose literal name contains dots (some IdPs use URLs as claim names) wins over walking.
 */
export function groupsAt(claims: Record<string, unknown>, path: string): string[] {
  const value = path in claims ? claims[path] : walk(claims, path.split('.'));
  if (typeof value === 'string') return value.length > 0 ? [value] : [];
  if (!Array.isArray(value)) return [];
  return [...new Set(value.filter((v): v is string => typeof v === 'string' && v.length > 0))];
}

function walk(obj: unknown, parts: string[]): unknown {
  let cur: unknown = obj;
  for (const p of parts) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, p)) return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

export function optionalString(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}
