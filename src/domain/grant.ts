// A grant and its lifecycle states; approvals recorded against it.
import type { GrantId, TargetId, UserId } from './ids.ts';
import type { Channel } from './principal.ts';

export const GRANT_STATES = [
  'requested',
  'pending',
  'approved',
  'opening',
  'active',
  'extending',
  'closing',
  'closed',
  'denied',
  'expired',
  'failed',
] as const;
export type GrantState = (typeof GRANT_STATES)[number];

/**
 * States whose grant may hold (or be about to hold) a firewall rule. `opening`, `extending` and
 * `closing` are durable intents: an adapter call is (or may be) in flight, and no competing
 * transition starts from them (a revoke of an `extending` grant is refused, the reaper waits).
 */
export const LIVE_STATES: readonly GrantState[] = ['opening', 'active', 'extending', 'closing'];
/** States a grant never leaves. */
export const FINAL_STATES: readonly GrantState[] = ['closed', 'denied', 'expired', 'failed'];

export type CloseReason = 'expired' | 'revoked' | 'superseded' | 'reconciled' | 'idle';

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
