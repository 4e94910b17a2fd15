// Fetches and caches an issuer's OpenID Provider metadata; any failure is IDP_UNAVAILABLE (fail closed).
import { PortcullisError } from '../errors.ts';

export interface IssuerMetadata {
  issuer: string;
  jwks_uri: string;
  authorization_endpoint?: string;
  token_endpoint?: string;
  device_authorization_endpoint?: string;
  end_session_endpoint?: string;
  [key: string]: unknown;
}

export function discoveryUrl(issuer: string): URL {
  // OIDC Discovery 1.0 §4: append to the issuer's path, keeping any path component.
  return new URL(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
}

export async function fetchIssuerMetadata(issuer: string, timeoutMs = 5000): Promise<IssuerMetadata> {
  let res: Response;
  try {
    res = await fetch(discoveryUrl(issuer), { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (e) {
    throw new PortcullisError('IDP_UNAVAILABLE', 'the identity provider could not be reached for discovery', { cause: e });
  }
  if (res.status !== 200) {
    throw new PortcullisError('IDP_UNAVAILABLE', `the identity provider's discovery answered HTTP ${res.status}`);
  }
  let meta: Partial<IssuerMetadata>;
  try {
    meta = (await res.json()) as Partial<IssuerMetadata>;
  } catch (e) {
    throw new PortcullisError('IDP_UNAVAILABLE', "the identity provider's discovery document is not JSON", { cause: e });
  }
  // A metadata document for another issuer would let that issuer's keys vouch for ours (OIDC Discovery §4.3).
  if (meta.issuer !== issuer) {
    throw new PortcullisError('IDP_UNAVAILABLE', 'the discovery document names a different issuer than configured');
  }
  if (typeof meta.jwks_uri !== 'string') {
    throw new PortcullisError('IDP_UNAVAILABLE', 'the discovery document has no jwks_uri');
  }
  return meta as IssuerMetadata;
}
