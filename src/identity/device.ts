// CLI sign-in with the device authorization grant (RFC 8628) for the public CLI client, and refresh.
import * as client from 'openid-client';
import { PortcullisError } from '../errors.ts';
import { relyingParty, safeCause } from './rp.ts';

export interface DeviceLoginOptions {
  issuer: string;
  clientId: string;
  /** offline_access asks for a refresh token; providers that do not issue one are fine too. */
  scope?: string;
  dangerouslyAllowHttp?: boolean;
}

export interface DeviceTokens {
  idToken: string;
  refreshToken?: string | undefined;
  /** Epoch milliseconds when the ID token expires (its `exp`). */
  expiresAt: number;
}

export interface DeviceLogin {
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string | undefined;
  expiresInSeconds: number;
  /** Polls at the interval the provider asks for until the person approves, denies, or the code expires. */
  wait(signal?: AbortSignal): Promise<DeviceTokens>;
}

const configs = new Map<string, () => Promise<client.Configuration>>();

function rpFor(o: DeviceLoginOptions): () => Promise<client.Configuration> {
  const key = `${o.issuer}|${o.clientId}`;
  let get = configs.get(key);
  if (!get) {
    get = relyingParty({ issuer: o.issuer, clientId: o.clientId, dangerouslyAllowHttp: o.dangerouslyAllowHttp });
    configs.set(key, get);
  }
  return get;
}

export async function startDeviceLogin(o: DeviceLoginOptions): Promise<DeviceLogin> {
  const cfg = await rpFor(o)();
  let res: client.DeviceAuthorizationResponse;
  try {
    res = await client.initiateDeviceAuthorization(cfg, { scope: o.scope ?? 'openid email profile offline_access' });
  } catch (e) {
    throw mapDeviceError(e);
  }
  return {
    userCode: res.user_code,
    verificationUri: res.verification_uri,
    verificationUriComplete: res.verification_uri_complete,
    expiresInSeconds: res.expires_in,
    async wait(signal) {
      try {
        return toTokens(await client.pollDeviceAuthorizationGrant(cfg, res, undefined, signal ? { signal } : undefined));
      } catch (e) {
        throw mapDeviceError(e);
      }
    },
  };
}

/** A new ID token from a refresh token; `auth_time` stays that of the original sign-in, so MFA still ages. */
export async function refreshDeviceLogin(o: DeviceLoginOptions, refreshToken: string): Promise<DeviceTokens> {
  const cfg = await rpFor(o)();
  try {
    const tokens = toTokens(await client.refreshTokenGrant(cfg, refreshToken));
    return { ...tokens, refreshToken: tokens.refreshToken ?? refreshToken };
  } catch (e) {
    throw mapDeviceError(e);
  }
}

function toTokens(t: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers): DeviceTokens {
  if (!t.id_token) throw new PortcullisError('TOKEN_INVALID', 'the identity provider returned no ID token; is the openid scope allowed for the CLI client?');
  const exp = t.claims()?.exp;
  return { idToken: t.id_token, refreshToken: t.refresh_token, expiresAt: typeof exp === 'number' ? exp * 1000 : Date.now() + (t.expires_in ?? 300) * 1000 };
}

function mapDeviceError(e: unknown): PortcullisError {
  if (e instanceof PortcullisError) return e;
  if (e instanceof client.ResponseBodyError) {
    if (e.error === 'access_denied') return new PortcullisError('AUTH_REQUIRED', 'the sign-in was denied at the identity provider', { cause: safeCause(e) });
    if (e.error === 'expired_token') return new PortcullisError('AUTH_REQUIRED', 'the device code expired before it was approved; run login again', { cause: safeCause(e) });
    if (e.error === 'invalid_grant') return new PortcullisError('TOKEN_EXPIRED', 'the refresh token is no longer valid; run login again', { cause: safeCause(e) });
    return new PortcullisError('LOGIN_FAILED', `the identity provider refused the sign-in (${e.error})`, { cause: safeCause(e) });
  }
  if ((e as Error)?.name === 'AbortError') return new PortcullisError('AUTH_REQUIRED', 'sign-in cancelled');
  return new PortcullisError('IDP_UNAVAILABLE', 'the identity provider could not be reached', { cause: safeCause(e) });
}
