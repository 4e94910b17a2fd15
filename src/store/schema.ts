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

export interface Database {
  grants: GrantsTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
}
