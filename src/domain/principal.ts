// Who is asking, and through which transport: established by identity, used by every layer.
import type { UserId } from './ids.ts';

export type Channel = 'web' | 'slack' | 'cli' | 'api';

/** Who is asking, as established by identity (a verified ID token or a web session). */
export interface Principal {
  sub: UserId;
  email?: string | undefined;
  name?: string | undefined;
  groups: string[];
  /** True when the sign-in satisfied the configured MFA rule. */
  mfa: boolean;
  /** Seconds since epoch of the sign-in (`auth_time`), when the IdP said. */
  authTime?: number | undefined;
  amr: string[];
  acr?: string | undefined;
  /** The OIDC client (audience) that the credential was issued to. */
  clientId?: string | undefined;
  /** Set by the transport when it knows better than the client id (web session, Slack). */
  channel?: Channel | undefined;
}
