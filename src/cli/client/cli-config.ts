// Where the CLI signs in for a broker: --issuer/--client-id, else the broker's GET /auth/cli-config, else the
// embedded development IdP at <server>/idp. The broker vouches for its issuer either way: its tokens go only to it.
import { networkCause } from './api.ts';
import { CliError, usage } from './cli-error.ts';
import { normaliseBaseUrl } from './urls.ts';

export const DEFAULT_SCOPE = 'openid email profile groups offline_access';
/** The CLI client id of DESIGN.md's example config and of the development IdP. */
export const DEV_CLI_CLIENT_ID = 'portcullis-cli';

export interface OidcSettings {
  issuer: string;
  clientId: string;
  scope: string;
  /** How the settings were found, for the sign-in message. */
  source: 'flags' | 'broker' | 'profile' | 'development IdP';
}

export interface Choice {
  issuer?: string | undefined;
  clientId?: string | undefined;
  scope?: string | undefined;
  /** The profile's earlier settings, when it signs in again to the same broker. */
  previous?: { issuer: string; clientId: string; scope?: string | undefined } | undefined;
}

export async function resolveOidc(server: string, c: Choice): Promise<OidcSettings> {
  if ((c.issuer === undefined) !== (c.clientId === undefined)) {
    throw usage('--issuer and --client-id go together', 'pass both (ask the broker operator for the CLI client id), or neither');
  }
  if (c.issuer !== undefined) {
    return { issuer: normaliseBaseUrl(c.issuer, '--issuer'), clientId: c.clientId!, scope: c.scope ?? DEFAULT_SCOPE, source: 'flags' };
  }
  const published = await fetchJson(`${server}/auth/cli-config`, server);
  if (published) {
    const p = published as { issuer?: unknown; clientId?: unknown; scopes?: unknown; scope?: unknown };
    if (typeof p.issuer === 'string' && p.clientId === null && c.previous === undefined) {
      throw usage(`the broker at ${server} has no CLI client configured (oidc.clients.cli)`, 'ask the broker operator to add one, or pass --issuer URL --client-id ID');
    }
    if (typeof p.issuer === 'string' && typeof p.clientId === 'string') {
      const scopes = Array.isArray(p.scopes) ? p.scopes.filter((s): s is string => typeof s === 'string').join(' ') : typeof p.scope === 'string' ? p.scope : undefined;
      return { issuer: normaliseBaseUrl(p.issuer, '--issuer'), clientId: p.clientId, scope: c.scope ?? (scopes || DEFAULT_SCOPE), source: 'broker' };
    }
  }
  if (c.previous) return { issuer: c.previous.issuer, clientId: c.previous.clientId, scope: c.scope ?? c.previous.scope ?? DEFAULT_SCOPE, source: 'profile' };
  const devIssuer = `${server}/idp`;
  const discovery = (await fetchJson(`${devIssuer}/.well-known/openid-configuration`, server)) as { issuer?: unknown } | undefined;
  if (discovery?.issuer === devIssuer) return { issuer: devIssuer, clientId: DEV_CLI_CLIENT_ID, scope: c.scope ?? DEFAULT_SCOPE, source: 'development IdP' };
  throw usage(`the broker at ${server} does not say which identity provider the CLI signs in with`, 'pass --issuer URL --client-id ID (ask the broker operator)');
}

/** A JSON body on 200, undefined on any other answer; only an unreachable server is an error. */
async function fetchJson(url: string, server: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000), redirect: 'error' });
  } catch (e) {
    const cause = networkCause(e);
    throw new CliError('BROKER_UNAVAILABLE', `cannot reach the broker at ${server} (${cause})`, { hint: 'check --server and your network; the broker may be down' });
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    return undefined;
  }
  try {
    return await res.json();
  } catch {
    return undefined;
  }
}
