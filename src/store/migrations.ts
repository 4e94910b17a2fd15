// Schema migrations, in order. Each works on SQLite and PostgreSQL; append, never edit a shipped one.
import { sql, type Kysely, type Migration } from 'kysely';

const ms = 'bigint';

export const migrations: Record<string, Migration> = {
  '0001_grants_audit': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('grants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('requester', 'text', (c) => c.notNull())
        .addColumn('requester_email', 'text')
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('duration_seconds', 'integer', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('close_reason', 'text')
        .addColumn('policy_ids', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('rule_ref', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('updated_at', ms, (c) => c.notNull())
        .addColumn('activated_at', ms)
        .addColumn('expires_at', ms)
        .addColumn('closed_at', ms)
        .addColumn('failure', 'text')
        .execute();
      await db.schema.createIndex('grants_state_expires').on('grants').columns(['state', 'expires_at']).execute();
      await db.schema.createIndex('grants_requester').on('grants').columns(['requester', 'created_at']).execute();

      await db.schema
        .createTable('audit_events')
        .addColumn('seq', ms, (c) => c.primaryKey())
        .addColumn('time', ms, (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('grant_id', 'text')
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_events_grant').on('audit_events').column('grant_id').execute();

      await db.schema
        .createTable('audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', ms, (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await sql`insert into audit_head (id, seq, hash) values (1, 0, ${'0'.repeat(64)})`.execute(db);

    },
  },
  // Web sign-in: server-side sessions (keyed by a hash of the cookie value) and in-flight sign-ins.
  '0002_sessions': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('sessions')
        .addColumn('id_hash', 'text', (c) => c.primaryKey())
        .addColumn('sub', 'text', (c) => c.notNull())
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('id_token', 'text')
        .addColumn('csrf', 'text', (c) => c.notNull())
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('last_seen_at', ms, (c) => c.notNull())
        .addColumn('expires_at', ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sessions_expires').on('sessions').column('expires_at').execute();
      await db.schema
        .createTable('login_flows')
        .addColumn('id_hash', 'text', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('nonce', 'text', (c) => c.notNull())
        .addColumn('code_verifier', 'text', (c) => c.notNull())
        .addColumn('return_to', 'text', (c) => c.notNull())
        .addColumn('stash', 'text')
        .addColumn('step_up', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('expires_at', ms, (c) => c.notNull())
        .execute();
    },
  },
  // Approval workflow: N-of-M approvals per grant, and what the broker last learnt of each user.
  '0003_approvals_users': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('grants').addColumn('required_approvals', 'integer', (c) => c.notNull().defaultTo(1)).execute();
      // The per-user quota counts live grants on every request: keep that an index lookup.
      await db.schema.createIndex('grants_requester_state').on('grants').columns(['requester', 'state']).execute();
      await db.schema.createIndex('grants_rule_ref').on('grants').column('rule_ref').execute();
      await db.schema
        .createTable('approvals')
        .addColumn('grant_id', 'text', (c) => c.notNull())
        .addColumn('approver', 'text', (c) => c.notNull())
        .addColumn('decision', 'text', (c) => c.notNull())
        .addColumn('comment', 'text')
        .addColumn('policy_ids', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', ms, (c) => c.notNull())
        .addPrimaryKeyConstraint('approvals_pk', ['grant_id', 'approver'])
        .execute();
      await db.schema
        .createTable('users')
        .addColumn('sub', 'text', (c) => c.primaryKey())
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('auth_time', ms)
        .addColumn('updated_at', ms, (c) => c.notNull())
        .execute();
    },
  },
  // The caller's address of each request: policies see it (callerIp, sourceIsCaller) again at approval and activation.
  '0004_grants_caller_ip': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('grants').addColumn('caller_ip', 'text').execute();
    },
  },
  // Slack: user links, single-use links (link / confirm / step-up), seen commands, and the notification
  // outbox fed from the audit trail through a persisted cursor.
  '0005_slack': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('slack_links')
        .addColumn('team_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('sub', 'text', (c) => c.notNull())
        .addColumn('created_at', ms, (c) => c.notNull())
        .addPrimaryKeyConstraint('slack_links_pk', ['team_id', 'user_id'])
        .execute();
      await db.schema.createIndex('slack_links_sub').on('slack_links').column('sub').execute();
      await db.schema
        .createTable('slack_tokens')
        .addColumn('id_hash', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('team_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('expires_at', ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('slack_tokens_expires').on('slack_tokens').column('expires_at').execute();
      await db.schema
        .createTable('slack_seen')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('expires_at', ms, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('notify_cursor')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('seq', ms, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('notify_outbox')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('created_seq', ms, (c) => c.notNull())
        .addColumn('sink', 'text', (c) => c.notNull())
        .addColumn('grant_id', 'text')
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_at', ms, (c) => c.notNull())
        .addColumn('last_error', 'text')
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('done_at', ms)
        .execute();
      await db.schema.createIndex('notify_outbox_due').on('notify_outbox').columns(['state', 'next_at']).execute();
      await db.schema.createIndex('notify_outbox_grant').on('notify_outbox').columns(['grant_id', 'sink']).execute();
      await db.schema
        .createTable('slack_messages')
        .addColumn('grant_id', 'text', (c) => c.primaryKey())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('ts', 'text', (c) => c.notNull())
        .execute();
    },
  },
  // Several replicas: which one made a grant's last transition, so another can tell a dead replica's
  // interrupted intent (settle it now) from a live one's call in flight (leave it). Expand-only.
  '0006_grants_claimed_by': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('grants').addColumn('claimed_by', 'text').execute();
    },
  },
  // Many live grants: the reconciler, gate and idle watcher read a target's live grants
  // (target_id, state); the reaper's next expiry and due batch use grants_state_expires (0001).
  // A close asks which of its rule refs other live grants hold (rule_ref, state): with rule_ref
  // alone SQLite's planner took (state) instead once the list grew, reading every active grant.
  '0007_grants_target_state': {
    async up(db: Kysely<any>) {
      await db.schema.createIndex('grants_target_state').on('grants').columns(['target_id', 'state']).execute();
      await db.schema.createIndex('grants_rule_ref_state').on('grants').columns(['rule_ref', 'state']).execute();
    },
  },
};
