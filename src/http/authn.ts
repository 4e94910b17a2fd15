// Who is calling: a bearer OIDC ID token (CLI, API) today; web sessions are added by the identity work.
import type { Request } from 'express';
import type { Principal } from '../domain/index.ts';
import { PortcullisError } from '../errors.ts';
import type { TokenVerifier } from '../identity/port.ts';

export interface Authn {
  /** The verified principal of a request, or a typed refusal (AUTH_REQUIRED, TOKEN_*, MFA_*). */
  principal(req: Request): Promise<Principal>;
}

export function bearerAuthn(verifier: TokenVerifier): Authn {
  return {
    async principal(req) {
      const header = req.get('authorization');
      if (!header) throw new PortcullisError('AUTH_REQUIRED', 'sign in first: send Authorization: Bearer <ID token>');
      const m = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
      if (!m) throw new PortcullisError('TOKEN_MALFORMED', 'the Authorization header must be "Bearer <ID token>"');
      return verifier.verify(m[1]!);
    },
  };
}
