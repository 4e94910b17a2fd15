// A real OpenID Provider (oidc-provider) on loopback for tests, with flows driven over HTTP like a browser would.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';

/** How the provider reports the second factor in its ID tokens. */
export type MfaMode = 'amr-mfa' | 'amr-otp' | 'acr' | 'none';

export const MFA_ACR = 'urn:example:loa:mfa';
export const PWD_ACR = 'urn:example:loa:pwd';

export interface TestUser {
  email?: string;
  name?: string;
  groups?: string[];
  /** Extra claims (e.g. `realm_access: { roles: [...] }`), released with the `groups` scope. */
  claims?: Record<string, unknown>;
}

export interface TestIdpOptions {
  mfa?: MfaMode;
  users?: Record<string, TestUser>;
  /** Redirect URIs of the confidential web client (the broker's /auth/callback). */
  webRedirectUris?: string[];
  postLogoutRedirectUris?: string[];
  webClientId?: string;
  cliClientId?: string;
  /** A second confidential client the broker does not know: tokens for the wrong audience. */
  otherClientId?: string;
  idTokenTtlSeconds?: number;
}

export interface LoginChoice {
  user: string;
  mfa?: MfaMode;
  /** Backdates the sign-in (seconds since epoch), as if the user had signed in earlier. */
  authTime?: number;
}

export interface TokenSet {
  id_token: string;
  access_token?: string;
  refresh_token?: string;
  expires_in?: number;
}

export interface TestIdp {
  issuer: string;
  provider: Provider;
  clients: {
    web: { id: string; secret: string; redirectUri: string };
    cli: { id: string };
    other: { id: string; secret: string; redirectUri: string };
  };
  /** Current default factor reported at login; tests may change it between sign-ins. */
  mfa: MfaMode;
  /** A real ID token for `userId` via authorization code + PKCE over HTTP. */
  getIdToken(userId: string, opts?: { clientId?: string; mfa?: MfaMode; authTime?: number; nonce?: string }): Promise<string>;
  /** Full token response of a code + PKCE sign-in. */
  signIn(userId: string, opts?: { clientId?: string; mfa?: MfaMode; authTime?: number; nonce?: string; scope?: string }): Promise<TokenSet>;
  /**
   * Follows an authorization request through the provider like a browser: logs `choice.user` in at
   * the interaction page and returns the URL the provider finally redirects to outside itself.
   */
  authorize(url: string, jar: CookieJar, choice: LoginChoice): Promise<URL>;
  /** Opens the verification page, enters `userCode`, confirms and logs in: a person approving a device. */
  approveDevice(userCode: string, jar: CookieJar, choice: LoginChoice): Promise<void>;
  /**
   * `token`'s claims with `patch` applied (undefined deletes a claim), signed with the provider's own key and kid:
   * claims the provider would not issue, with a signature that verifies. `typ` sets the header's typ.
   */
  resign(token: string, patch: Record<string, unknown>, o?: { typ?: string }): Promise<string>;
  close(): Promise<void>;
}

/** Cookies per host (ports share cookies, as browsers do), honouring Path, Max-Age and Expires. */
export class CookieJar {
  private readonly cookies = new Map<string, { value: string; path: string; expires?: number; attrs: Record<string, string | true> }>();

  store(url: string | URL, res: Response): void {
    const u = new URL(url);
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrParts] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const attrs: Record<string, string | true> = {};
      for (const a of attrParts) {
        const i = a.indexOf('=');
        if (i < 0) attrs[a.trim().toLowerCase()] = true;
        else attrs[a.slice(0, i).trim().toLowerCase()] = a.slice(i + 1).trim();
      }
      const path = typeof attrs.path === 'string' ? attrs.path : '/';
      let expires: number | undefined;
      if (typeof attrs['max-age'] === 'string') expires = Date.now() + Number(attrs['max-age']) * 1000;
      else if (typeof attrs.expires === 'string') expires = Date.parse(attrs.expires);
      const key = `${u.hostname}|${path}|${name}`;
      if (expires !== undefined && expires <= Date.now()) this.cookies.delete(key);
      else this.cookies.set(key, { value, path, expires, attrs });
    }
  }

  header(url: string | URL): string {
    const u = new URL(url);
    const out: string[] = [];
    for (const [key, c] of this.cookies) {
      const [host, , name] = key.split('|');
      if (host !== u.hostname) continue;
      if (c.expires !== undefined && c.expires <= Date.now()) continue;
      if (!(u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))) continue;
      out.push(`${name}=${c.value}`);
    }
    return out.join('; ');
  }

  get(name: string): string | undefined {
    for (const [key, c] of this.cookies) if (key.endsWith(`|${name}`)) return c.value;
    return undefined;
  }

  attributes(name: string): Record<string, string | true> | undefined {
    for (const [key, c] of this.cookies) if (key.endsWith(`|${name}`)) return c.attrs;
    return undefined;
  }

  delete(name: string): void {
    for (const key of [...this.cookies.keys()]) if (key.endsWith(`|${name}`)) this.cookies.delete(key);
  }

  set(url: string, name: string, value: string, path = '/'): void {
    this.cookies.set(`${new URL(url).hostname}|${path}|${name}`, { value, path, attrs: {} });
  }

  /** fetch with this jar, never following redirects, so each hop can be inspected. */
  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = this.header(url);
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(url, res);
    return res;
  }
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Hidden and text inputs of the first form in `html` (the provider's pages are simple and regular). */
export function formFields(html: string, formId?: string): { action: string | undefined; fields: Record<string, string> } {
  const start = formId ? html.indexOf(`id="${formId}"`) : html.indexOf('<form');
  const chunk = start < 0 ? '' : html.slice(html.lastIndexOf('<form', start), html.indexOf('</form>', start));
  const action = /<form[^>]*action="([^"]*)"/.exec(chunk)?.[1];
  const fields: Record<string, string> = {};
  for (const m of chunk.matchAll(/<input\b([^>]*)>/g)) {
    const name = /name="([^"]*)"/.exec(m[1]!)?.[1];
    const value = /value="([^"]*)"/.exec(m[1]!)?.[1] ?? '';
    if (name) fields[name] = unescapeHtml(value);
  }
  return { action: action === undefined ? undefined : unescapeHtml(action), fields };
}

function unescapeHtml(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;|&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

const DEFAULT_USERS: Record<string, TestUser> = {
  alice: { email: 'alice@example.com', name: 'Alice Engineer', groups: ['engineers'], claims: { realm_access: { roles: ['rdp-users', 'engineers'] } } },
  bob: { email: 'bob@example.com', name: 'Bob Approver', groups: ['approvers', 'engineers'] },
  mallory: { email: 'mallory@example.com', name: 'Mallory', groups: [] },
};

export async function startTestIdp(opts: TestIdpOptions = {}): Promise<TestIdp> {
  const users = opts.users ?? DEFAULT_USERS;
  const webId = opts.webClientId ?? 'portcullis-web';
  const cliId = opts.cliClientId ?? 'portcullis-cli';
  const otherId = opts.otherClientId ?? 'someone-else';
  const webSecret = randomBytes(24).toString('base64url');
  const otherSecret = randomBytes(24).toString('base64url');
  // getIdToken's own redirect target: never dereferenced, the test reads the code off the Location header.
  const tokenRedirect = 'http://127.0.0.1:9/cb';

  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: `k-${port}`, alg: 'RS256', use: 'sig' };

  const config: Configuration = {
    clients: [
      {
        client_id: webId,
        client_secret: webSecret,
        redirect_uris: [tokenRedirect, ...(opts.webRedirectUris ?? [])],
        post_logout_redirect_uris: opts.postLogoutRedirectUris ?? [],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        require_auth_time: true,
      },
      {
        client_id: cliId,
        redirect_uris: [tokenRedirect],
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token', 'authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        require_auth_time: true,
      },
      {
        client_id: otherId,
        client_secret: otherSecret,
        redirect_uris: [tokenRedirect],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        require_auth_time: true,
      },
    ],
    jwks: { keys: [jwk as never] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: {
      // amr/acr ride with the openid scope, as Keycloak and Entra release them on every sign-in.
      openid: ['sub', 'amr', 'acr', 'auth_time', 'sid'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups', 'realm_access'],
    },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    acrValues: [MFA_ACR, PWD_ACR],
    // Real IdPs (Keycloak, Entra, Okta) put profile claims in the ID token; the broker reads only that.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      deviceFlow: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: true },
    },
    pkce: { required: () => true },
    interactions: { url: (_ctx: KoaContextWithOIDC, interaction) => `/interaction/${interaction.uid}` },
    // First-party clients: consent is implied, as an enterprise IdP configures its own apps.
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      const grant = existing ?? new ctx.oidc.provider.Grant({ accountId: ctx.oidc.session!.accountId!, clientId: ctx.oidc.client!.clientId });
      grant.addOIDCScope('openid email profile groups offline_access');
      await grant.save();
      return grant;
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      IdToken: opts.idTokenTtlSeconds ?? 3600,
      AccessToken: 3600,
      AuthorizationCode: 60,
      DeviceCode: 600,
      RefreshToken: 86400,
      Interaction: 600,
      Session: 86400,
      Grant: 86400,
    },
    async findAccount(_ctx, sub) {
      const u = users[sub];
      if (!u) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, email: u.email, email_verified: true, name: u.name, groups: u.groups ?? [], ...u.claims };
        },
      };
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><title>error</title><pre>${escapeHtml(JSON.stringify(out))}</pre>`;
    },
  };

  const provider = new Provider(issuer, config);
  const callback = provider.callback();
  const state = { mfa: opts.mfa ?? 'amr-mfa' as MfaMode };

  handler = (req, res) => {
    const m = /^\/interaction\/([^/?]+)(\/login)?/.exec(req.url ?? '');
    if (!m) {
      void callback(req, res);
      return;
    }
    void interaction(req, res, m[2] === '/login').catch((e: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String((e as Error).message));
    });
  };

  async function interaction(req: IncomingMessage, res: ServerResponse, submit: boolean): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (!submit) {
      res.writeHead(200, { 'content-type': 'text/html' }).end(
        `<!DOCTYPE html><title>Sign in</title><form id="login" method="post" action="/interaction/${details.uid}/login">` +
          `<input type="hidden" name="prompt" value="${escapeHtml(details.prompt.name)}"><input name="login"><input name="mfa"><input name="auth_time"></form>`,
      );
      return;
    }
    const body = new URLSearchParams(await readBody(req));
    const login = body.get('login') ?? '';
    if (!users[login]) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('unknown user');
      return;
    }
    const mode = (body.get('mfa') || state.mfa) as MfaMode;
    const authTime = body.get('auth_time') ? Number(body.get('auth_time')) : undefined;
    const loginResult: { accountId: string; amr?: string[]; acr?: string; ts?: number } = { accountId: login };
    if (mode === 'amr-mfa') loginResult.amr = ['pwd', 'mfa'];
    else if (mode === 'amr-otp') loginResult.amr = ['pwd', 'otp'];
    else if (mode === 'acr') loginResult.acr = MFA_ACR;
    else {
      loginResult.amr = ['pwd'];
      loginResult.acr = PWD_ACR;
    }
    if (authTime !== undefined) loginResult.ts = authTime;
    await provider.interactionFinished(req, res, { login: loginResult }, { mergeWithLastSubmission: false });
  }

  const origin = new URL(issuer).origin;

  async function authorize(url: string, jar: CookieJar, choice: LoginChoice): Promise<URL> {
    let next = new URL(url);
    let init: RequestInit = {};
    for (let hop = 0; hop < 20; hop++) {
      if (next.origin !== origin) return next;
      const res = await jar.fetch(next, init);
      init = {};
      if (res.status >= 300 && res.status < 400) {
        next = new URL(res.headers.get('location')!, next);
        continue;
      }
      const html = await res.text();
      if (res.status !== 200) throw new Error(`provider answered ${res.status} at ${next.pathname}: ${html.slice(0, 300)}`);
      if (/^\/interaction\/[^/]+$/.test(next.pathname)) {
        const body = new URLSearchParams({ login: choice.user, mfa: choice.mfa ?? '', auth_time: choice.authTime === undefined ? '' : String(choice.authTime) });
        next = new URL(`${next.pathname}/login`, next);
        init = { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } };
        continue;
      }
      // form_post pages (e.g. resuming a device flow) submit themselves in a browser; do the same.
      const form = formFields(html);
      if (form.action !== undefined && /<form[^>]*method="post"/i.test(html)) {
        next = new URL(form.action, next);
        init = { method: 'POST', body: new URLSearchParams(form.fields), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
        continue;
      }
      return next;
    }
    throw new Error('too many redirects at the provider');
  }

  async function signIn(userId: string, o: { clientId?: string; mfa?: MfaMode; authTime?: number; nonce?: string; scope?: string } = {}): Promise<TokenSet> {
    const clientId = o.clientId ?? webId;
    const secret = clientId === webId ? webSecret : clientId === otherId ? otherSecret : undefined;
    const { verifier, challenge } = pkcePair();
    const authUrl = new URL('/auth', issuer);
    authUrl.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: tokenRedirect,
      response_type: 'code',
      scope: o.scope ?? 'openid email profile groups',
      state: randomBytes(8).toString('hex'),
      nonce: o.nonce ?? randomBytes(8).toString('hex'),
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    const back = await authorize(authUrl.href, new CookieJar(), { user: userId, mfa: o.mfa, authTime: o.authTime });
    const code = back.searchParams.get('code');
    if (!code) throw new Error(`no code in redirect: ${back.searchParams.get('error') ?? ''} ${back.searchParams.get('error_description') ?? ''}`);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: tokenRedirect, code_verifier: verifier });
    if (secret) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
    else form.set('client_id', clientId);
    const res = await fetch(new URL('/token', issuer), { method: 'POST', headers, body: form });
    const json = (await res.json()) as TokenSet & { error?: string };
    if (!res.ok) throw new Error(`token endpoint: ${json.error}`);
    return json;
  }

  async function approveDevice(userCode: string, jar: CookieJar, choice: LoginChoice): Promise<void> {
    const page = await jar.fetch(new URL('/device', issuer));
    const input = formFields(await page.text(), 'op.deviceInputForm');
    const confirmPage = await jar.fetch(new URL(input.action ?? '/device', issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...input.fields, user_code: userCode }),
    });
    const confirmHtml = await confirmPage.text();
    if (confirmPage.status !== 200) throw new Error(`device code refused: ${confirmHtml.slice(0, 200)}`);
    const confirm = formFields(confirmHtml, 'op.deviceConfirmForm');
    const res = await jar.fetch(new URL(confirm.action ?? '/device', issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(confirm.fields),
    });
    if (res.status < 300 || res.status >= 400) throw new Error(`device confirmation answered ${res.status}`);
    const end = await authorize(new URL(res.headers.get('location')!, issuer).href, jar, choice);
    if (end.origin !== origin) throw new Error('device flow left the provider');
  }

  return {
    issuer,
    provider,
    clients: {
      web: { id: webId, secret: webSecret, redirectUri: tokenRedirect },
      cli: { id: cliId },
      other: { id: otherId, secret: otherSecret, redirectUri: tokenRedirect },
    },
    get mfa() {
      return state.mfa;
    },
    set mfa(m: MfaMode) {
      state.mfa = m;
    },
    async getIdToken(userId, o) {
      return (await signIn(userId, o)).id_token;
    },
    signIn,
    authorize,
    approveDevice,
    async resign(token, patch, ro = {}) {
      const claims: Record<string, unknown> = { ...decodeJwt(token), ...patch };
      for (const [k, v] of Object.entries(patch)) if (v === undefined) delete claims[k];
      return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid, ...(ro.typ ? { typ: ro.typ } : {}) }).sign(privateKey);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The same token with one payload claim changed and the original signature kept: must not verify. */
export function tamperPayload(token: string, patch: Record<string, unknown>): string {
  const [h, , s] = token.split('.');
  const payload = { ...decodeJwt(token), ...patch };
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
}

/** The same claims signed with a fresh key under the provider's kid: a forgery the JWKS must expose. */
export async function resignWithForeignKey(token: string): Promise<string> {
  const header = decodeProtectedHeader(token);
  const { privateKey } = await generateKeyPair('RS256');
  return new SignJWT(decodeJwt(token)).setProtectedHeader({ alg: 'RS256', kid: header.kid, typ: header.typ }).sign(privateKey);
}
