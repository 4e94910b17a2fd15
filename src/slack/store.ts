// Slack state in the store: user links, single-use links, commands already seen, channel messages per grant.
import type { Kysely } from 'kysely';
import type { UserId } from '../domain/index.ts';
import { PortcullisError } from '../errors.ts';
import { hashId, newSecretId } from '../identity/sessions.ts';

export interface SlackTables {
  slack_links: { team_id: string; user_id: string; sub: string; created_at: number };
  slack_tokens: { id_hash: string; kind: string; team_id: string; user_id: string; payload: string; created_at: number; expires_at: number };
  slack_seen: { key: string; expires_at: number };
  slack_messages: { grant_id: string; channel: string; ts: string };
}

export interface SlackUser {
  teamId: string;
  userId: string;
}

/** What a single-use link does once opened. */
export type TokenPayload =
  | { kind: 'link'; userName: string | null; responseUrl: string | null }
  | { kind: 'confirm'; sub: UserId; target: string; duration: string | null; reason: string; responseUrl: string | null }
  | { kind: 'act'; sub: UserId; action: 'approve' | 'deny' | 'extend'; grantId: string; comment: string | null; duration: string | null; responseUrl: string | null };

export interface SlackToken {
  user: SlackUser;
  payload: TokenPayload;
  expiresAt: number;
}

/** Links, confirm links and step-up links live 10 minutes. */
export const TOKEN_TTL_MS = 10 * 60_000;

export class SlackStore {
  private readonly db: Kysely<SlackTables>;

  constructor(db: Kysely<any>, private readonly clock: () => number = Date.now) {
    this.db = db as Kysely<SlackTables>;
  }

  private async wrap<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new PortcullisError('STORE_UNAVAILABLE', 'the store could not be reached', { cause: e });
    }
  }

  linkedSub(u: SlackUser): Promise<UserId | undefined> {
    return this.wrap(async () => {
      const r = await this.db.selectFrom('slack_links').select('sub').where('team_id', '=', u.teamId).where('user_id', '=', u.userId).executeTakeFirst();
      return r?.sub as UserId | undefined;
    });
  }

  /** Slack users linked to an identity (one person may use several workspaces). */
  slackUsersOf(sub: string): Promise<SlackUser[]> {
    return this.wrap(async () => {
      const rows = await this.db.selectFrom('slack_links').select(['team_id', 'user_id']).where('sub', '=', sub).orderBy('created_at').execute();
      return rows.map((r) => ({ teamId: r.team_id, userId: r.user_id }));
    });
  }

  link(u: SlackUser, sub: string): Promise<void> {
    return this.wrap(async () => {
      await this.db.deleteFrom('slack_links').where('team_id', '=', u.teamId).where('user_id', '=', u.userId).execute();
      await this.db.insertInto('slack_links').values({ team_id: u.teamId, user_id: u.userId, sub, created_at: this.clock() }).execute();
    });
  }

  /** True when a link was removed. */
  unlink(u: SlackUser): Promise<boolean> {
    return this.wrap(async () => {
      const r = await this.db.deleteFrom('slack_links').where('team_id', '=', u.teamId).where('user_id', '=', u.userId).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  /** A new single-use link; only the SHA-256 of its secret is stored. */
  createToken(u: SlackUser, payload: TokenPayload): Promise<string> {
    return this.wrap(async () => {
      const id = newSecretId();
      const now = this.clock();
      await this.db.deleteFrom('slack_tokens').where('expires_at', '<=', now).execute();
      await this.db.insertInto('slack_tokens').values({ id_hash: hashId(id), kind: payload.kind, team_id: u.teamId, user_id: u.userId, payload: JSON.stringify(payload), created_at: now, expires_at: now + TOKEN_TTL_MS }).execute();
      return id;
    });
  }

  peekToken(id: string): Promise<SlackToken | undefined> {
    return this.wrap(async () => {
      if (!/^[A-Za-z0-9_-]{20,100}$/.test(id)) return undefined;
      const r = await this.db.selectFrom('slack_tokens').selectAll().where('id_hash', '=', hashId(id)).executeTakeFirst();
      if (!r || Number(r.expires_at) <= this.clock()) return undefined;
      return { user: { teamId: r.team_id, userId: r.user_id }, payload: JSON.parse(r.payload) as TokenPayload, expiresAt: Number(r.expires_at) };
    });
  }

  /** Reads and deletes in one step: of two concurrent uses, only the one whose delete removed the row wins. */
  takeToken(id: string): Promise<SlackToken | undefined> {
    return this.wrap(async () => {
      const t = await this.peekToken(id);
      if (!t) return undefined;
      const r = await this.db.deleteFrom('slack_tokens').where('id_hash', '=', hashId(id)).executeTakeFirst();
      return Number(r.numDeletedRows) === 1 ? t : undefined;
    });
  }

  /** True the first time a key is seen within `ttlMs` (Slack retries of one command share its trigger id). */
  firstSight(key: string, ttlMs: number): Promise<boolean> {
    return this.wrap(async () => {
      const now = this.clock();
      await this.db.deleteFrom('slack_seen').where('expires_at', '<=', now).execute();
      const r = await this.db.insertInto('slack_seen').values({ key: hashId(key), expires_at: now + ttlMs }).onConflict((oc) => oc.column('key').doNothing()).executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
    });
  }

  channelMessage(grantId: string): Promise<{ channel: string; ts: string } | undefined> {
    return this.wrap(async () => this.db.selectFrom('slack_messages').select(['channel', 'ts']).where('grant_id', '=', grantId).executeTakeFirst());
  }

  rememberChannelMessage(grantId: string, channel: string, ts: string): Promise<void> {
    return this.wrap(async () => {
      await this.db.insertInto('slack_messages').values({ grant_id: grantId, channel, ts }).onConflict((oc) => oc.column('grant_id').doUpdateSet({ channel, ts })).execute();
    });
  }
}
