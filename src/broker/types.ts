// Domain types shared by the core and its ports: ids, grant states, the principal.

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type GrantId = Brand<string, 'GrantId'>;
export type TargetId = Brand<string, 'TargetId'>;
export type UserId = Brand<string, 'UserId'>;

export const GRANT_STATES = [
  'requested',
  'pending',
  'approved',
  'opening',
  'active',
  'closing',
  'closed',
  'denied',
  'expired',
  'failed',
] as const;
export type GrantState = (typeof GRANT_STATES)[number];

/** States whose grant may hold (or be about to hold) a firewall rule. */
export const LIVE_STATES: readonly GrantState[] = ['opening', 'active', 'closing'];
/** States a grant never leaves. */
export const FINAL_STATES: readonly GrantState[] = ['closed', 'denied', 'expired', 'failed'];

export type CloseReason = 'expired' | 'revoked' | 'superseded' | 'reconciled';
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

export interface Grant {
  id: GrantId;
  targetId: TargetId;
  port: number;
  /** Always a CIDR: 198.51.100.7/32, 2001:db8::1/128. */
  source: string;
  requester: UserId;
  requesterEmail: string | null;
  reason: string;
  durationSeconds: number;
  channel: Channel;
  state: GrantState;
  closeReason: CloseReason | null;
  /** Deciding Cedar policy ids. */
  policyIds: string[];
  /** Opaque backend reference of the rule, set once the adapter has answered. */
  ruleRef: string | null;
  createdAt: number;
  updatedAt: number;
  activatedAt: number | null;
  expiresAt: number | null;
  closedAt: number | null;
  failure: string | null;
  /** Approvals needed before a pending grant opens (N of the approvers). */
  requiredApprovals: number;
  /** The address the request came from (after trustProxy), for policy re-checks; null for grants recorded before it was kept. */
  callerIp?: string | null;
}

export interface Approval {
  grantId: GrantId;
  approver: UserId;
  decision: 'approve' | 'deny';
  comment: string | null;
  policyIds: string[];
  createdAt: number;
}
