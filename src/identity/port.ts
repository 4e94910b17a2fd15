// What the edge asks identity: turn a credential into a Principal, or refuse with a typed error.
import type { Principal } from '../domain/index.ts';

export interface TokenVerifier {
  /**
   * Verifies an OIDC ID token (signature via the issuer's JWKS, `iss`, `aud` is a configured
   * client, `exp`) and applies the MFA rule. Throws PortcullisError with TOKEN_MALFORMED,
   * TOKEN_BAD_SIGNATURE, TOKEN_WRONG_ISSUER, TOKEN_WRONG_AUDIENCE, TOKEN_EXPIRED, TOKEN_INVALID,
   * MFA_REQUIRED, MFA_TOO_OLD or IDP_UNAVAILABLE. The token itself never appears in a message.
   */
  verify(idToken: string): Promise<Principal>;
}
