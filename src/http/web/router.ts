// The engineer's web UI: GET / (landing or the signed-in page), its two static files, and .rdp downloads.
import express, { type Request, type Response, type Router } from 'express';
import type { Broker } from '../../broker/broker.ts';
import type { GrantId, Principal } from '../../domain/index.ts';
import { isPortcullisError } from '../../errors.ts';
import { errorFields, type Logger } from '../../log.ts';
import { callerIp } from '../app.ts';
import type { Authn } from '../authn.ts';
import { loadAssets } from './assets.ts';
import { appPage, landingPage } from './pages.ts';
import { rdpFile, rdpFilename } from './rdp.ts';

export interface WebRouterDeps {
  /** The session-aware authn of web-auth: a GET needs no CSRF token. */
  authn: Authn;
  broker: Pick<Broker, 'getGrant' | 'listTargets'>;
  /** grants.minDuration / maxDuration in seconds: the duration list never offers what the broker refuses. */
  limits: { minDurationSeconds: number; maxDurationSeconds: number };
  /** The OIDC issuer once known: sign-out posts end at its end-session endpoint, which CSP must allow. */
  issuer?: () => string | undefined;
  log?: Logger;
}

const NOT_SIGNED_IN = new Set(['AUTH_REQUIRED', 'IDP_UNAVAILABLE', 'TOKEN_MALFORMED', 'TOKEN_BAD_SIGNATURE', 'TOKEN_WRONG_ISSUER', 'TOKEN_WRONG_AUDIENCE', 'TOKEN_EXPIRED', 'TOKEN_INVALID', 'TOKEN_NOT_ID_TOKEN', 'TOKEN_BAD_SUBJECT', 'TOKEN_WRONG_AZP', 'TOKEN_ISSUED_IN_FUTURE', 'TOKEN_LIFETIME_TOO_LONG', 'TOKEN_TOO_OLD', 'TOKEN_AUTH_TIME_IN_FUTURE', 'MFA_REQUIRED', 'MFA_TOO_OLD']);

export function webRouter(deps: WebRouterDeps): Router {
  const assets = loadAssets();
  const r = express.Router();

  /** No inline script or style at all: everything the page runs comes from this origin's two files. */
  const csp = (): string => {
    let formAction = "'self'";
    try {
      const issuer = deps.issuer?.();
      if (issuer) formAction += ` ${new URL(issuer).origin}`;
    } catch {
      // a malformed issuer would have failed at start; 'self' alone is the safe answer
    }
    return [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data:",
      "connect-src 'self'",
      `form-action ${formAction}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; ');
  };
  const htmlHeaders = (res: Response) => {
    res.set('Content-Security-Policy', csp());
    res.set('X-Frame-Options', 'DENY');
    // The page names the user and their groups: never from a shared cache, never from history.
    res.set('Cache-Control', 'no-store');
  };

  /** The signed-in principal, or undefined when the browser has no live session. */
  const principalOf = async (req: Request): Promise<Principal | undefined> => {
    try {
      return await deps.authn.principal(req);
    } catch (e) {
      if (isPortcullisError(e) && NOT_SIGNED_IN.has(e.code)) return undefined;
      throw e;
    }
  };

  r.get('/', async (req, res, next) => {
    try {
      const p = await principalOf(req);
      htmlHeaders(res);
      if (!p) {
        res.type('html').send(landingPage(assets));
        return;
      }
      res.type('html').send(appPage(assets, { principal: p, callerIp: callerIp(req), ...deps.limits }));
    } catch (e) {
      next(e);
    }
  });

  r.get('/ui/:file', (req, res, next) => {
    const a = assets.byPath.get(req.path);
    if (!a) return next();
    res.set('Content-Type', a.type);
    // The name carries the content hash, so a cached copy is never stale.
    res.set('Cache-Control', 'public, max-age=31536000, immutable');
    res.send(a.body);
  });

  r.get('/ui/grants/:id/connect.rdp', async (req, res, next) => {
    try {
      const p = await principalOf(req);
      if (!p) {
        res.redirect(303, `/auth/login?returnTo=${encodeURIComponent('/')}`);
        return;
      }
      const grant = await deps.broker.getGrant(p, req.params.id as GrantId);
      const target = deps.broker.listTargets().find((t) => t.id === grant.targetId);
      if (!target?.connect) {
        res.status(404).type('text').send('this target has no connect address configured');
        return;
      }
      res.set('Cache-Control', 'no-store');
      res.set('Content-Type', 'application/x-rdp; charset=utf-8');
      res.set('Content-Disposition', `attachment; filename="${rdpFilename(target.id)}"`);
      res.send(rdpFile(target.connect, grant.port));
    } catch (e) {
      if (isPortcullisError(e, 'GRANT_NOT_FOUND')) {
        res.status(404).type('text').send('no such grant');
        return;
      }
      deps.log?.warn('rdp download failed', errorFields(e));
      next(e);
    }
  });

  return r;
}
