// Web sign-in: OIDC code + PKCE, server-side sessions with rotation and timeouts, CSRF, step-up and sign-out.
import { timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import * as client from 'openid-client';
import type { AuditInput } from '../audit/chain.ts';
import type { Principal } from '../domain/index.ts';
import type { Config } from '../config/schema.ts';
import { httpStatus, isPortcullisError, PortcullisError } from '../errors.ts';
import { evaluateMfa } from '../identity/mfa.ts';
import type { TokenVerifier } from '../identity/port.ts';
import { loginFailed, mapCodeExchangeError, relyingParty } from '../identity/rp.ts';
import { newSecretId, type LoginFlow, type Session, type SessionStore, type StashedRequest } from '../identity/sessions.ts';
import { errorFields, type Logger } from '../log.ts';
import { callerIp } from './app.ts';
import type { Authn } from './authn.ts';
import { jsonBody } from './body.ts';
import { errorBody } from './errors.ts';
import { RateLimits, rateLimited } from './rate-limit.ts';
import { RefusalBudget, summaryEvent } from './refusal-budget.ts';
import { messagePage } from './web/router.ts';

export interface WebAuthSettings {
  /** The resolved OIDC section; `issuer` must be set (the embedded IdP's is known once listening). */
  oidc: Config['oidc'] & { issuer: string };
  /** Where browsers reach the broker, e.g. https://portcullis.example.com (no trailing slash). */
  publicUrl: string;
  verifier: TokenVerifier;
}

export interface WebAuthDeps {
  /** Resolved lazily: the embedded IdP's issuer and the listen port are known only after start. */
  settings: () => WebAuthSettings | undefined;
  sessions: SessionStore;
  /** Bearer authentication used when a request carries Authorization. */
  bearer: Authn;
  audit?: (event: AuditInput) => Promise<unknown>;
  /** The broker's "newest sign-in" of this user (Broker.noteSignIn): approval re-checks and Slack freshness read it. */
  signedIn?: (principal: Principal) => Promise<void>;
  log?: Logger;
  now?: () => number;
  /** Session ends after this long without a request (default 30 min). */
  idleSeconds?: number;
  /** Session ends this long after sign-in whatever happens (default 12 h). */
  absoluteSeconds?: number;
  /** Scopes asked at sign-in (default "openid email profile"). */
  scope?: string;
  /** Sign-in rate limits and in-flight caps, shared with the API (defaults when absent). */
  limits?: RateLimits;
  /** The audit budget of anonymous refusals, shared with the API (defaults when absent). */
  refusals?: RefusalBudget;
}

export interface WebAuth {
  router: Router;
  /** Bearer token or session cookie; cookie-authenticated unsafe requests must carry the CSRF token. */
  authn: Authn;
}

const FLOW_COOKIE = 'portcullis_login';
const FLOW_TTL_MS = 10 * 60_000;
/** How long a sign-in refused for being too busy is told to wait. */
const BUSY_RETRY_MS = 60_000;
const CSRF_HEADER = 'x-csrf-token';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The session cookie's name: `__Host-` binds it to this exact origin when served over https. */
export function sessionCookieName(publicUrl: string): string {
  return new URL(publicUrl).protocol === 'https:' ? '__Host-portcullis_session' : 'portcullis_session';
}

export function mountWebAuth(app: express.Express, deps: WebAuthDeps): WebAuth {
  const web = createWebAuth(deps);
  app.use(web.router);
  return web;
}

export function createWebAuth(deps: WebAuthDeps): WebAuth {
  const now = deps.now ?? Date.now;
  const idleMs = (deps.idleSeconds ?? 30 * 60) * 1000;
  const absoluteMs = (deps.absoluteSeconds ?? 12 * 3600) * 1000;
  const scope = deps.scope ?? 'openid email profile';
  const csrfVerified = new WeakSet<Request>();
  const limits = deps.limits ?? new RateLimits();
  const refusals = deps.refusals ?? new RefusalBudget({ perPrefix: 30, global: 300, now });
  let rp: { key: string; get: () => Promise<client.Configuration> } | undefined;

  const settings = (): WebAuthSettings => {
    const s = deps.settings();
    if (!s) throw new PortcullisError('IDP_UNAVAILABLE', 'the broker is still starting');
    if (!s.oidc.clients.web) throw new PortcullisError('CONFIG_INVALID', 'web sign-in needs oidc.clients.web', { field: 'oidc.clients.web' });
    return s;
  };
  const config = (s: WebAuthSettings) => {
    const key = `${s.oidc.issuer}|${s.oidc.clients.web!.id}`;
    if (rp?.key !== key) {
      rp = {
        key,
        get: relyingParty({
          issuer: s.oidc.issuer,
          clientId: s.oidc.clients.web!.id,
          clientSecret: s.oidc.clients.web!.secret,
          dangerouslyAllowHttp: s.oidc.dangerouslyAllowHttpIssuer,
        }),
      };
    }
    return rp.get();
  };
  const secure = (s: WebAuthSettings) => new URL(s.publicUrl).protocol === 'https:';
  const callbackUrl = (s: WebAuthSettings) => `${s.publicUrl}/auth/callback`;
  const audit = async (e: AuditInput) => {
    try {
      await deps.audit?.(e);
    } catch (err) {
      deps.log?.warn('could not audit a sign-in event', errorFields(err));
    }
  };

  /** The live session of this request, enforcing idle and absolute timeouts. */
  async function loadSession(req: Request, s: WebAuthSettings): Promise<{ id: string; session: Session } | undefined> {
    const id = readCookie(req, sessionCookieName(s.publicUrl));
    if (!id) return undefined;
    const session = await deps.sessions.getSession(id);
    if (!session) return undefined;
    const t = now();
    if (t >= session.expiresAt || t - session.lastSeenAt >= idleMs) {
      await deps.sessions.deleteSession(id);
      return undefined;
    }
    await deps.sessions.touchSession(id, t);
    return { id, session };
  }

  function csrfOk(req: Request, session: Session): boolean {
    if (csrfVerified.has(req)) return true;
    const sent = req.get(CSRF_HEADER) ?? (typeof req.body?._csrf === 'string' ? (req.body._csrf as string) : undefined);
    return sent !== undefined && safeEqual(sent, session.csrf);
  }

  const authn: Authn = {
    async principal(req) {
      if (req.get('authorization')) return deps.bearer.principal(req);
      const s = deps.settings();
      const found = s ? await loadSession(req, s) : undefined;
      if (!found) throw new PortcullisError('AUTH_REQUIRED', 'sign in first: open /auth/login in a browser, or send Authorization: Bearer <ID token>');
      // A cookie is sent by the browser on cross-site posts too; the token proves the page was ours.
      if (UNSAFE.has(req.method) && !csrfOk(req, found.session)) {
        throw new PortcullisError('CSRF_FAILED', `send the session's CSRF token in the ${CSRF_HEADER} header`);
      }
      // Defence in depth beside the token: a browser names the page's origin on every cross-origin post.
      if (UNSAFE.has(req.method) && !csrfVerified.has(req) && !sameOrigin(req, s!.publicUrl)) {
        throw new PortcullisError('CSRF_FAILED', 'the request came from another site');
      }
      return { ...found.session.principal, channel: 'web' };
    },
  };

  /**
   * Anonymous traffic may not grow `login_flows`: at most N unfinished sign-ins per address prefix
   * (or per user) and M in all; expired ones are swept first when the table is full.
   */
  async function reserveFlow(key: { ip: string } | { user: string }): Promise<void> {
    if ((await deps.sessions.countFlows()) >= limits.settings.inFlightSignIns) {
      await deps.sessions.sweep(now());
      if ((await deps.sessions.countFlows()) >= limits.settings.inFlightSignIns) {
        throw rateLimited('SIGN_IN_BUSY', 'too many sign-ins are in progress; try again in a minute', BUSY_RETRY_MS);
      }
    }
    await limits.flowStarted(key);
  }

  async function startFlow(req: Request, res: Response, s: WebAuthSettings, o: { returnTo: string; stash: StashedRequest | null; stepUp: 'too_old' | 'missing' | false }): Promise<URL> {
    await reserveFlow({ ip: callerIp(req) });
    const cfg = await config(s);
    const flowId = newSecretId();
    const flow: LoginFlow = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      codeVerifier: client.randomPKCECodeVerifier(),
      returnTo: o.returnTo,
      stash: o.stash,
      stepUp: o.stepUp !== false,
      createdAt: now(),
      expiresAt: now() + FLOW_TTL_MS,
    };
    await deps.sessions.createFlow(flowId, flow);
    const params: Record<string, string> = {
      redirect_uri: callbackUrl(s),
      response_type: 'code',
      scope,
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(flow.codeVerifier),
      code_challenge_method: 'S256',
    };
    // Step-up: max_age=0 makes the IdP authenticate again now; prompt=login and acr_values ask for the factor.
    if (o.stepUp === 'too_old') params.max_age = '0';
    if (o.stepUp === 'missing') params.prompt = 'login';
    if (o.stepUp !== false && s.oidc.mfa.acr.length > 0) params.acr_values = s.oidc.mfa.acr.join(' ');
    // SameSite=Lax: the callback is a top-level navigation from the IdP, which Lax cookies survive.
    res.cookie(FLOW_COOKIE, flowId, { httpOnly: true, secure: secure(s), sameSite: 'lax', path: '/auth', maxAge: FLOW_TTL_MS });
    return client.buildAuthorizationUrl(cfg, params);
  }

  const router = express.Router();
  router.use('/auth', (_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  router.get('/auth/login', async (req, res) => {
    await limits.signInStep(callerIp(req));
    const s = settings();
    const returnTo = localPath(req.query.returnTo);
    const stepUp = req.query.mfa === '1' ? 'missing' : req.query.fresh === '1' ? 'too_old' : false;
    res.redirect(303, (await startFlow(req, res, s, { returnTo, stash: null, stepUp })).href);
  });

  router.get('/auth/callback', async (req, res) => {
    const ip = callerIp(req);
    await limits.signInStep(ip);
    const s = settings();
    const flowId = readCookie(req, FLOW_COOKIE);
    res.clearCookie(FLOW_COOKIE, { path: '/auth', httpOnly: true, secure: secure(s), sameSite: 'lax' });
    const stateParam = typeof req.query.state === 'string' ? req.query.state : '';
    // A callback without a live flow is anyone's to send: counted, audited only within the budget.
    let anonymous = true;
    try {
      if (!flowId) throw loginFailed('state', 'no sign-in is in progress in this browser; start again');
      // Taken (deleted) before the exchange: a callback URL works once, even if the exchange fails.
      const flow = await deps.sessions.takeFlow(flowId);
      if (flow) await limits.flowEnded({ ip });
      if (!flow || flow.expiresAt <= now()) throw loginFailed('state', 'this sign-in has already been used or has expired; start again');
      anonymous = false;
      if (!safeEqual(stateParam, flow.state)) throw loginFailed('state', 'the sign-in response does not belong to this browser (state mismatch)');
      if (!flow.codeVerifier) throw loginFailed('pkce', 'the sign-in has no PKCE verifier; start again');
      const cfg = await config(s);
      const current = new URL(`${callbackUrl(s)}${req.originalUrl.slice(req.originalUrl.indexOf('?') < 0 ? req.originalUrl.length : req.originalUrl.indexOf('?'))}`);
      let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
      try {
        tokens = await client.authorizationCodeGrant(cfg, current, {
          pkceCodeVerifier: flow.codeVerifier,
          expectedState: flow.state,
          expectedNonce: flow.nonce,
          idTokenExpected: true,
        });
      } catch (e) {
        throw mapCodeExchangeError(e);
      }
      const idToken = tokens.id_token!;
      let principal: Principal;
      try {
        // The same checks as a bearer token (signature via JWKS, iss, aud, exp, MFA rule): one path, no drift.
        principal = await s.verifier.verify(idToken);
      } catch (e) {
        if (isPortcullisError(e, 'MFA_TOO_OLD') && !flow.stepUp) {
          // The IdP reused an old sign-in: ask it once for a fresh one instead of a dead end.
          res.redirect(303, (await startFlow(req, res, s, { returnTo: flow.returnTo, stash: flow.stash, stepUp: 'too_old' })).href);
          return;
        }
        if (isPortcullisError(e, 'MFA_REQUIRED')) {
          await audit({ type: 'auth.mfa_missing', actor: null, detail: { channel: 'web', code: e.code } });
        }
        throw e;
      }
      // Rotation: whatever session id this browser had (perhaps planted by someone else) ends here.
      const old = readCookie(req, sessionCookieName(s.publicUrl));
      if (old) await deps.sessions.deleteSession(old);
      const sid = newSecretId();
      const t = now();
      await deps.sessions.createSession(sid, {
        principal,
        idToken,
        csrf: newSecretId(),
        createdAt: t,
        lastSeenAt: t,
        expiresAt: t + absoluteMs,
      });
      res.cookie(sessionCookieName(s.publicUrl), sid, { httpOnly: true, secure: secure(s), sameSite: 'lax', path: '/', maxAge: absoluteMs });
      await deps.signedIn?.(principal);
      await audit({ type: 'auth.login', actor: principal.sub, detail: { channel: 'web', amr: principal.amr, acr: principal.acr, stepUp: flow.stepUp } });
      if (flow.stash) {
        const resumeId = newSecretId();
        await deps.sessions.createFlow(resumeId, { ...flow, state: principal.sub, nonce: '', codeVerifier: '', createdAt: t, expiresAt: t + FLOW_TTL_MS });
        res.redirect(303, `/auth/resume?r=${encodeURIComponent(resumeId)}`);
        return;
      }
      res.redirect(303, flow.returnTo);
    } catch (e) {
      if (isPortcullisError(e, 'LOGIN_FAILED')) {
        const summary = refusals.flush();
        if (summary) await audit(summaryEvent(summary));
        if (!anonymous || refusals.take(ip, 'sign_in_callback')) {
          await audit({ type: 'auth.login_failed', actor: null, sourceIp: ip, detail: { channel: 'web', code: e.code, check: e.details?.check } });
        }
      }
      sendError(req, res, e, deps.log);
    }
  });

  // After a step-up the original request waits here; the user confirms it with one click (a CSRF-checked post).
  router.get('/auth/resume', async (req, res) => {
    const s = settings();
    const found = await loadSession(req, s);
    const id = typeof req.query.r === 'string' ? req.query.r : '';
    const flow = id ? await deps.sessions.getFlow(id) : undefined;
    if (!found || !flow?.stash || flow.state !== found.session.principal.sub || flow.expiresAt <= now()) {
      sendError(req, res, new PortcullisError('NOT_FOUND', 'nothing to resume; start again'), deps.log);
      return;
    }
    if (wantsJson(req)) {
      res.json({ resume: { method: flow.stash.method, path: flow.stash.path, body: flow.stash.body }, action: '/auth/resume', r: id, csrf: found.session.csrf });
      return;
    }
    res.type('html').send(
      messagePage({ heading: 'Continue your request', message: 'You signed in again. Continue with:', pre: `${flow.stash.method} ${flow.stash.path}\n${JSON.stringify(flow.stash.body, null, 2)}`, form: { action: '/auth/resume', fields: { r: id, _csrf: found.session.csrf }, label: 'Continue' } }),
    );
  });

  router.post('/auth/resume', form, async (req, res, next) => {
    const s = settings();
    const found = await loadSession(req, s);
    const id = typeof req.body?.r === 'string' ? (req.body.r as string) : '';
    if (!found || !csrfOk(req, found.session)) {
      sendError(req, res, new PortcullisError('CSRF_FAILED', 'the form is stale or did not come from this site'), deps.log);
      return;
    }
    const flow = id ? await deps.sessions.takeFlow(id) : undefined;
    if (!flow?.stash || flow.state !== found.session.principal.sub || flow.expiresAt <= now()) {
      sendError(req, res, new PortcullisError('NOT_FOUND', 'nothing to resume; start again'), deps.log);
      return;
    }
    // Re-dispatch the stashed request through the app, as the same signed-in user; the body is
    // already consumed, so the API's JSON parser leaves req.body as set here.
    csrfVerified.add(req);
    req.url = flow.stash.path;
    req.method = flow.stash.method;
    req.body = flow.stash.body;
    next();
  });

  router.get('/auth/session', async (req, res) => {
    const s = settings();
    const found = await loadSession(req, s);
    if (!found) {
      res.status(401).json({ signedIn: false, error: { code: 'AUTH_REQUIRED', message: 'no live session in this browser; sign in at /auth/login' } });
      return;
    }
    const p = found.session.principal;
    const v = evaluateMfa({ amr: p.amr, acr: p.acr, authTime: p.authTime }, s.oidc.mfa, Math.floor(now() / 1000));
    res.json({ signedIn: true, sub: p.sub, email: p.email, name: p.name, groups: p.groups, mfa: v.mfa, mfaFresh: v.fresh, authTime: p.authTime, csrf: found.session.csrf, expiresAt: new Date(found.session.expiresAt).toISOString() });
  });

  router.post('/auth/logout', form, async (req, res) => {
    const s = settings();
    const found = await loadSession(req, s);
    if (found && !csrfOk(req, found.session)) {
      sendError(req, res, new PortcullisError('CSRF_FAILED', 'the sign-out form did not come from this site'), deps.log);
      return;
    }
    res.clearCookie(sessionCookieName(s.publicUrl), { path: '/', httpOnly: true, secure: secure(s), sameSite: 'lax' });
    if (!found) {
      res.redirect(303, '/auth/signed-out');
      return;
    }
    await deps.sessions.deleteSession(found.id);
    await audit({ type: 'auth.logout', actor: found.session.principal.sub, detail: { channel: 'web' } });
    // RP-initiated logout ends the IdP session too, when the provider offers it.
    try {
      const cfg = await config(s);
      if (cfg.serverMetadata().end_session_endpoint) {
        const params: Record<string, string> = { post_logout_redirect_uri: `${s.publicUrl}/auth/signed-out` };
        if (found.session.idToken) params.id_token_hint = found.session.idToken;
        res.redirect(303, client.buildEndSessionUrl(cfg, params).href);
        return;
      }
    } catch (e) {
      deps.log?.warn('sign-out at the identity provider skipped', errorFields(e));
    }
    res.redirect(303, '/auth/signed-out');
  });

  router.get('/auth/signed-out', (_req, res) => {
    res.type('html').send(messagePage({ heading: 'Signed out', message: 'You are signed out of Portcullis.', links: [{ href: '/auth/login', label: 'Sign in again', primary: true }] }));
  });

  // Session-authenticated API calls whose MFA is missing or stale are answered with a step-up link
  // that, after a fresh sign-in, resumes the very request (instead of a dead-end 403).
  router.use('/api/v1', async (req, res, next) => {
    if (req.get('authorization') || !UNSAFE.has(req.method)) return next();
    const s = deps.settings();
    if (!s) return next();
    const found = await loadSession(req, s);
    if (!found) return next();
    const p = found.session.principal;
    const v = evaluateMfa({ amr: p.amr, acr: p.acr, authTime: p.authTime }, s.oidc.mfa, Math.floor(now() / 1000));
    if (v.mfa && v.fresh) return next();
    await new Promise<void>((resolve, reject) => jsonBody()(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
    if (!csrfOk(req, found.session)) return next(new PortcullisError('CSRF_FAILED', `send the session's CSRF token in the ${CSRF_HEADER} header`));
    const code = v.mfa ? 'MFA_TOO_OLD' : 'MFA_REQUIRED';
    const stash: StashedRequest = { method: 'POST', path: req.originalUrl, body: req.body ?? {} };
    await reserveFlow({ user: p.sub });
    const stepUpId = newSecretId();
    await deps.sessions.createFlow(stepUpId, {
      state: p.sub,
      nonce: '',
      codeVerifier: '',
      returnTo: '/',
      stash,
      stepUp: true,
      createdAt: now(),
      expiresAt: now() + FLOW_TTL_MS,
    });
    res.status(httpStatus(code)).json({
      error: {
        code,
        message: code === 'MFA_TOO_OLD' ? `your multi-factor sign-in is older than ${s.oidc.mfa.maxAge}; sign in again to continue` : 'this sign-in did not use multi-factor authentication; sign in again with your second factor',
        stepUp: `/auth/step-up?r=${encodeURIComponent(stepUpId)}`,
      },
    });
  });

  router.get('/auth/step-up', async (req, res) => {
    const s = settings();
    const found = await loadSession(req, s);
    const id = typeof req.query.r === 'string' ? req.query.r : '';
    const pending = id ? await deps.sessions.takeFlow(id) : undefined;
    if (pending && found) await limits.flowEnded({ user: found.session.principal.sub });
    if (!found || !pending?.stash || pending.state !== found.session.principal.sub || pending.expiresAt <= now()) {
      sendError(req, res, new PortcullisError('NOT_FOUND', 'nothing to step up for; start again'), deps.log);
      return;
    }
    const p = found.session.principal;
    const v = evaluateMfa({ amr: p.amr, acr: p.acr, authTime: p.authTime }, s.oidc.mfa, Math.floor(now() / 1000));
    res.redirect(303, (await startFlow(req, res, s, { returnTo: '/', stash: pending.stash, stepUp: v.mfa ? 'too_old' : 'missing' })).href);
  });

  router.use('/auth', (e: unknown, req: Request, res: Response, _next: express.NextFunction) => sendError(req, res, e, deps.log));

  return { router, authn };
}

/** Only same-origin paths: an absolute or protocol-relative returnTo would be an open redirect. */
export function localPath(v: unknown): string {
  // Browsers drop tabs and newlines inside URLs, so "/\t/evil.example" would become "//evil.example":
  // any control character or space makes the target untrusted.
  if (typeof v !== 'string' || !v.startsWith('/') || v.startsWith('//') || v.includes('\\') || /[\u0000-\u0020\u007f]/.test(v) || v.length > 2000) return '/';
  return v;
}

function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      const v = part.slice(i + 1).trim();
      try {
        return decodeURIComponent(v);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** No Origin header (curl, older browsers on same-origin GET-born posts) passes; a foreign one does not. */
function sameOrigin(req: Request, publicUrl: string): boolean {
  const origin = req.get('origin');
  if (origin === undefined) return true;
  try {
    return origin === new URL(publicUrl).origin;
  } catch {
    return false;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

function wantsJson(req: Request): boolean {
  return req.accepts(['html', 'json']) === 'json';
}

function sendError(req: Request, res: Response, e: unknown, log?: Logger): void {
  // One rendering with the API: a 5xx never carries the error's own (backend) message.
  const { status, body, retryAfterSeconds } = errorBody(e);
  const { code, message } = body.error;
  if (status >= 500) log?.error('sign-in failed', { path: req.path, ...errorFields(e) });
  const check = isPortcullisError(e) && typeof e.details?.check === 'string' ? e.details.check : undefined;
  if (res.headersSent) return;
  if (retryAfterSeconds !== undefined) res.set('Retry-After', String(retryAfterSeconds));
  if (wantsJson(req)) {
    res.status(status).json({ error: { code, message, ...(check ? { check } : {}) } });
    return;
  }
  const retry = code === 'MFA_REQUIRED' ? '/auth/login?mfa=1' : code === 'MFA_TOO_OLD' ? '/auth/login?fresh=1' : '/auth/login';
  const plain: Record<string, string> = {
    MFA_REQUIRED: 'Portcullis needs a second factor, and this sign-in used a password only. Sign in again and set up your authenticator app when asked.',
    MFA_TOO_OLD: 'Your second-factor sign-in is too old. Sign in again to continue.',
  };
  res
    .status(status)
    .type('html')
    .send(messagePage({ heading: 'Sign-in did not complete', message: plain[code] ?? sentence(message), code, paragraphs: plain[code] ? [] : [`(${code})`], links: [{ href: retry, label: code === 'MFA_REQUIRED' ? 'Sign in with a second factor' : 'Sign in again', primary: true }] }));
}

function sentence(m: string): string {
  return m ? m.charAt(0).toUpperCase() + m.slice(1) + (/[.!?]$/.test(m) ? '' : '.') : '';
}
