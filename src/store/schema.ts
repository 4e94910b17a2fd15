// Table shapes as Kysely sees them. Times are epoch milliseconds (bigint in PostgreSQL).
export interface GrantsTable {
  id: string;
  target_id: string;
  port: number;
  source: string;
  requester: string;
  requester_email: string | null;
  reason: string;
  duration_seconds: number;
  channel: string;
  state: string;
  close_reason: string | null;
  policy_ids: string; // JSON array
  rule_ref: string | null;
  created_at: number;
  updated_at: number;
  activated_at: number | null;
  expires_at: number | null;
  closed_at: number | null;
  failure: string | null;
  required_approvals: number;
  caller_ip?: string | null;
  /** The replica (Coordination owner id) that made the last transition; null when no coordination ran. */
  claimed_by?: string | null;
}

export interface AuditEventsTable {
  seq: number;
  time: number;
  type: string;
  grant_id: string | null;
  /** Canonical JSON of the event without its hash: exactly the bytes that were hashed. */
  body: string;
  prev_hash: string;
  hash: string;
}

export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

/** A signed-in browser. The cookie holds a random id; only its SHA-256 is stored. */
export interface SessionsTable {
  id_hash: string;
  sub: string;
  principal: string; // JSON Principal
  id_token: string | null; // kept only as id_token_hint for RP-initiated logout
  csrf: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number; // absolute limit
}

/** A sign-in between the redirect to the IdP and the callback: state, nonce, PKCE verifier, what to resume. */
export interface LoginFlowsTable {
  id_hash: string;
  state: string;
  nonce: string;
  code_verifier: string;
  return_to: string;
  stash: string | null; // JSON of a request to resume after step-up
  step_up: number;
  created_at: number;
  expires_at: number;
}

export interface ApprovalsTable {
  grant_id: string;
  approver: string;
  decision: string;
  comment: string | null;
  policy_ids: string;
  created_at: number;
}

export interface UsersTable {
  sub: string;
  /** JSON of the Principal last seen (groups, MFA facts); never a token. */
  principal: string;
  auth_time: number | null;
  updated_at: number;
}

export interface Database {
  grants: GrantsTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  sessions: SessionsTable;
  login_flows: LoginFlowsTable;
  approvals: ApprovalsTable;
  users: UsersTable;
}
