// Security headers for everything but the development IdP's own pages: helmet with the strict no-inline CSP.
import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * No inline script or style at all: everything a page runs comes from this origin's two files.
 * `issuer` is read per request: sign-out forms end at the IdP's end-session endpoint, which
 * form-action must allow, and the embedded IdP's issuer is known only once the server listens.
 */
export function securityHeaders(issuer: () => string | undefined): RequestHandler {
  const formAction = (): string => {
    try {
      const i = issuer();
      return i ? new URL(i).origin : "'self'";
    } catch {
      // a malformed issuer would have failed at start; 'self' alone is the safe answer
      return "'self'";
    }
  };
  const h = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        formAction: ["'self'", () => formAction()],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    },
    frameguard: { action: 'deny' },
    // Not no-referrer: under it Chromium sends `Origin: null` on this site's own form posts, which the
    // Origin check then refuses. same-origin still keeps URLs (link tokens) from ever reaching another site.
    referrerPolicy: { policy: 'same-origin' },
    // Browsers ignore HSTS over http; over https it pins the broker to https.
    strictTransportSecurity: { maxAge: 31536000, includeSubDomains: false },
  });
  return (req, res, next) => {
    // The development IdP (loopback only) renders its own small pages with an inline stylesheet.
    if (req.path === '/idp' || req.path.startsWith('/idp/')) return next();
    h(req, res, next);
  };
}
