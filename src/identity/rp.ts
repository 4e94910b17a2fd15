// The broker as an OIDC relying party (openid-client 6): discovery once, authorization URLs, code exchange.
import * as client from 'openid-client';
import { PortcullisError } from '../errors.ts';

export interface RpSettings {
  issuer: string;
  clientId: string;
  /** Absent for a public client (the CLI). */
  clientSecret?: string | undefined;
  /** Only for a loopback http issuer, as the config allows with oidc.dangerouslyAllowHttpIssuer. */
  dangerouslyAllowHttp?: boolean;
}

/** Lazily discovered client configuration; a failed discovery is retried on the next call. */
export function relyingParty(s: RpSettings): () => Promise<client.Configuration> {
  let pending: Promise<client.Configuration> | undefined;
  return () => {
    pending ??= client
      .discovery(
        new URL(s.issuer),
        s.clientId,
        s.clientSecret === undefined ? undefined : { client_secret: s.clientSecret },
        s.clientSecret === undefined ? client.None() : client.ClientSecretBasic(s.clientSecret),
        { execute: s.dangerouslyAllowHttp ? [client.allowInsecureRequests] : [], timeout: 10 },
      )
      .catch((e: unknown) => {
        pending = undefined;
        throw new PortcullisError('IDP_UNAVAILABLE', 'the identity provider could not be reached for discovery', { cause: safeCause(e) });
      });
    return pending;
  };
}

export type LoginCheck = 'state' | 'code' | 'nonce' | 'pkce' | 'response';

export function loginFailed(check: LoginCheck, message: string, cause?: unknown): PortcullisError {
  return new PortcullisError('LOGIN_FAILED', message, { details: { check }, cause: cause === undefined ? undefined : safeCause(cause) });
}

/** Maps openid-client failures of the code exchange to LOGIN_FAILED with the check that refused. */
export function mapCodeExchangeError(e: unknown): PortcullisError {
  if (e instanceof PortcullisError) return e;
  if (e instanceof client.ResponseBodyError) {
    if (e.error === 'invalid_grant') {
      const pkce = /pkce|code_verifier/i.test(e.error_description ?? '');
      return pkce
        ? loginFailed('pkce', 'the identity provider refused the PKCE code verifier', e)
        : loginFailed('code', 'the identity provider refused the authorization code (used already, expired, or not issued to this sign-in)', e);
    }
    return loginFailed('code', `the identity provider refused the code exchange (${e.error})`, e);
  }
  if (e instanceof client.AuthorizationResponseError) {
    return loginFailed('response', `the identity provider returned an error: ${e.error}`, e);
  }
  // openid-client wraps oauth4webapi's error; the claim or parameter that failed is on the cause.
  const err = e as { code?: string; message?: string; cause?: { message?: string; cause?: { claim?: string; parameter?: string } } };
  const detail = `${err?.cause?.message ?? ''} ${err?.cause?.cause?.claim ?? ''} ${err?.cause?.cause?.parameter ?? ''}`;
  if (err?.code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' && /nonce/i.test(detail)) {
    return loginFailed('nonce', 'the ID token was not issued for this sign-in (nonce mismatch)', e);
  }
  if (/\bstate\b/i.test(detail) && (err?.code === 'OAUTH_INVALID_RESPONSE' || err?.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED')) {
    return loginFailed('state', 'the sign-in response does not belong to this browser (state mismatch)', e);
  }
  if (e instanceof TypeError || err?.code === 'OAUTH_RESPONSE_IS_NOT_JSON' || err?.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM') {
    return new PortcullisError('IDP_UNAVAILABLE', 'the identity provider could not complete the sign-in', { cause: safeCause(e) });
  }
  return loginFailed('response', 'the sign-in response was not acceptable', e);
}

/** Causes keep class, code and message only: openid-client errors can carry whole token responses. */
export function safeCause(e: unknown): Error {
  const err = e as { name?: string; code?: string; error?: string; message?: string };
  const msg = [err?.code, err?.error, typeof err?.message === 'string' ? err.message.slice(0, 200) : undefined].filter(Boolean).join(': ');
  return Object.assign(new Error(msg || 'error'), { name: err?.name ?? 'Error' });
}
