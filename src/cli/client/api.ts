// The broker's JSON API as the CLI sees it: bearer ID token from the profile, refreshed when it can be, errors made CliErrors.
import { hintFor } from '../../errors.ts';
import { CliError } from './cli-error.ts';
import { isLoopbackUrl } from './urls.ts';
import { redact, rememberSecret } from './secrets.ts';
import { ProfileStore, type ProfileSettings, type StoredTokens } from '../profiles.ts';

/** A profile in use by one command: its name, its settings, and how to name it in suggested commands. */
export interface Session {
  name: string;
  /** " --profile acme" when the profile was chosen with the flag, else "" (so suggestions can be pasted as is). */
  flag: string;
  store: ProfileStore;
  settings: ProfileSettings;
}

/** Refresh a little before expiry: the broker checks `exp` on its own clock. */
const REFRESH_MARGIN_MS = 30_000;
const TIMEOUT_MS = 30_000;

export class BrokerApi {
  constructor(private readonly s: Session) {}

  get server(): string {
    return this.s.settings.server;
  }

  async get<T>(path: string): Promise<T> {
    return (await this.call<T>('GET', path)).body;
  }

  async post<T>(path: string, body: unknown): Promise<{ status: number; body: T }> {
    return this.call<T>('POST', path, body);
  }

  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }> {
    let token = await this.token(false);
    for (let attempt = 0; ; attempt++) {
      const res = await this.send(method, path, token, body);
      if (res.ok) return { status: res.status, body: res.json as T };
      const err = res.error;
      // An ID token can expire between our check and the broker's; one refresh and retry, then give up.
      if (attempt === 0 && res.status === 401 && err?.code === 'TOKEN_EXPIRED' && this.s.store.readTokens(this.s.name)?.refreshToken) {
        token = await this.token(true);
        continue;
      }
      throw this.toError(res.status, err, res.text);
    }
  }

  /** The ID token to send, refreshed with the refresh token when it is (about to be) expired. */
  async token(force: boolean): Promise<string> {
    const t = this.s.store.readTokens(this.s.name);
    if (!t) {
      throw new CliError('NOT_SIGNED_IN', `not signed in to ${this.s.settings.server} (profile ${this.s.name})`, { hint: hintFor('NOT_SIGNED_IN', this.s.flag) });
    }
    rememberSecret(t.idToken);
    if (t.refreshToken) rememberSecret(t.refreshToken);
    if (!force && t.expiresAt - REFRESH_MARGIN_MS > Date.now()) return t.idToken;
    if (!t.refreshToken) {
      throw new CliError('TOKEN_EXPIRED', `your sign-in to ${this.s.settings.server} has expired`, { hint: hintFor('TOKEN_EXPIRED', this.s.flag) });
    }
    const fresh = await refresh(this.s.settings, t.refreshToken, this.s.flag);
    this.s.store.writeTokens(this.s.name, fresh);
    return fresh.idToken;
  }

  private async send(method: string, path: string, token: string, body: unknown) {
    let res: Response;
    try {
      res = await fetch(`${this.s.settings.server}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (e) {
      throw unreachable(this.s.settings.server, e);
    }
    const text = await res.text().catch(() => '');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const error = (json as { error?: { code?: unknown; message?: unknown; field?: unknown; grant?: unknown } } | undefined)?.error;
    const apiError =
      error && typeof error.code === 'string'
        ? { code: error.code, message: typeof error.message === 'string' ? error.message : error.code, field: typeof error.field === 'string' ? error.field : undefined, grant: typeof error.grant === 'string' ? error.grant : undefined }
        : undefined;
    return { ok: res.ok && json !== undefined, status: res.status, json, text, error: apiError };
  }

  private toError(status: number, err: { code: string; message: string; field?: string | undefined; grant?: string | undefined } | undefined, text: string): CliError {
    if (err) {
      let hint = hintFor(err.code, this.s.flag);
      if (err.code === 'NOT_FOUND' && /no such API route/i.test(err.message)) hint = 'this broker does not offer this command yet; it may be older than the CLI';
      // 5xx other than 503 carry no detail by design; the broker's log has it.
      if (status >= 500 && status !== 503 && !hint) hint = 'the broker failed; tell its operator (the broker log has the details)';
      return new CliError(err.code, redact(err.message), { hint, field: err.field, details: err.grant ? { grant: err.grant } : undefined });
    }
    if (status === 502 || status === 503 || status === 504) {
      return new CliError('BROKER_UNAVAILABLE', `the broker at ${this.s.settings.server} is unavailable (HTTP ${status})`, { hint: 'try again in a minute' });
    }
    const what = text.trim().startsWith('<') ? 'an HTML page' : 'a response that is not the API';
    return new CliError('BAD_RESPONSE', `the server at ${this.s.settings.server} answered HTTP ${status} with ${what}`, {
      hint: `check that it is the Portcullis broker: portcullis login${this.s.flag} --server URL`,
    });
  }
}

export function unreachable(server: string, e: unknown): CliError {
  const cause = networkCause(e);
  return new CliError('BROKER_UNAVAILABLE', `cannot reach the broker at ${server} (${cause})`, {
    hint: 'check the address and your network; the broker may be down',
  });
}

/** ECONNREFUSED, ENOTFOUND, a timeout…: fetch hides the reason one or two causes deep. */
export function networkCause(e: unknown): string {
  const c = (e as { cause?: { code?: unknown; message?: unknown; errors?: { code?: unknown }[] } })?.cause;
  if (typeof c?.code === 'string') return c.code;
  if (typeof c?.errors?.[0]?.code === 'string') return c.errors[0].code;
  if ((e as Error)?.name === 'TimeoutError') return 'timed out';
  if (typeof c?.message === 'string') return c.message.slice(0, 80);
  return (e as Error)?.name ?? 'error';
}

async function refresh(s: ProfileSettings, refreshToken: string, flag: string): Promise<StoredTokens> {
  const { refreshDeviceLogin } = await import('../../identity/device.ts');
  try {
    const t = await refreshDeviceLogin({ issuer: s.issuer, clientId: s.clientId, dangerouslyAllowHttp: isLoopbackUrl(s.issuer) }, refreshToken);
    rememberSecret(t.idToken);
    if (t.refreshToken) rememberSecret(t.refreshToken);
    return t;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      const c = code === 'LOGIN_FAILED' || code === 'TOKEN_INVALID' ? 'TOKEN_EXPIRED' : code;
      return Promise.reject(new CliError(c, c === 'IDP_UNAVAILABLE' ? 'the identity provider could not be reached to renew your sign-in' : 'your sign-in could not be renewed', { hint: hintFor(c, flag) }));
    }
    throw e;
  }
}
