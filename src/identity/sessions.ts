// Server-side web sessions and in-flight sign-ins, in the store (Kysely) or in memory for unit tests.
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Principal } from '../domain/index.ts';
import { PortcullisError } from '../errors.ts';
import type { Database } from '../store/schema.ts';

export interface Session {
  principal: Principal;
  idToken: string | null;
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

/** A request to replay after a step-up sign-in. */
export interface StashedRequest {
  method: 'POST';
  path: string;
  body: unknown;
}

export interface LoginFlow {
  state: string;
  nonce: string;
  codeVerifier: string;
  returnTo: string;
  stash: StashedRequest | null;
  stepUp: boolean;
  createdAt: number;
  expiresAt: number;
}

/** The secret values (cookie ids) never reach storage: rows are keyed by their SHA-256. */
export interface SessionStore {
  createSession(id: string, s: Session): Promise<void>;
  getSession(id: string): Promise<Session | undefined>;
  touchSession(id: string, lastSeenAt: number): Promise<void>;
  deleteSession(id: string): Promise<void>;
  createFlow(id: string, f: LoginFlow): Promise<void>;
  /** Returns and deletes the flow in one step, so a callback can be used only once. */
  takeFlow(id: string): Promise<LoginFlow | undefined>;
  getFlow(id: string): Promise<LoginFlow | undefined>;
  deleteFlow(id: string): Promise<void>;
  /** Stored flows, expired or not: what the in-flight cap bounds. */
  countFlows(): Promise<number>;
  /** Removes expired sessions and flows. */
  sweep(now: number): Promise<number>;
}

export function newSecretId(): string {
  return randomBytes(32).toString('base64url');
}

export function hashId(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

export function kyselySessionStore(db: Kysely<Database>): SessionStore {
  const wrap = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw new PortcullisError('STORE_UNAVAILABLE', 'the session store could not be reached', { cause: e });
    }
  };
  return {
    createSession: (id, s) =>
      wrap(async () => {
        await db
          .insertInto('sessions')
          .values({
            id_hash: hashId(id),
            sub: s.principal.sub,
            principal: JSON.stringify(s.principal),
            id_token: s.idToken,
            csrf: s.csrf,
            created_at: s.createdAt,
            last_seen_at: s.lastSeenAt,
            expires_at: s.expiresAt,
          })
          .execute();
      }),
    getSession: (id) =>
      wrap(async () => {
        const r = await db.selectFrom('sessions').selectAll().where('id_hash', '=', hashId(id)).executeTakeFirst();
        if (!r) return undefined;
        return {
          principal: JSON.parse(r.principal) as Principal,
          idToken: r.id_token,
          csrf: r.csrf,
          createdAt: Number(r.created_at),
          lastSeenAt: Number(r.last_seen_at),
          expiresAt: Number(r.expires_at),
        };
      }),
    touchSession: (id, lastSeenAt) =>
      wrap(async () => {
        await db.updateTable('sessions').set({ last_seen_at: lastSeenAt }).where('id_hash', '=', hashId(id)).execute();
      }),
    deleteSession: (id) =>
      wrap(async () => {
        await db.deleteFrom('sessions').where('id_hash', '=', hashId(id)).execute();
      }),
    createFlow: (id, f) =>
      wrap(async () => {
        await db
          .insertInto('login_flows')
          .values({
            id_hash: hashId(id),
            state: f.state,
            nonce: f.nonce,
            code_verifier: f.codeVerifier,
            return_to: f.returnTo,
            stash: f.stash === null ? null : JSON.stringify(f.stash),
            step_up: f.stepUp ? 1 : 0,
            created_at: f.createdAt,
            expires_at: f.expiresAt,
          })
          .execute();
      }),
    getFlow: (id) => wrap(async () => readFlow(db, id)),
    takeFlow: (id) =>
      wrap(async () => {
        const f = await readFlow(db, id);
        if (!f) return undefined;
        // Only the caller whose delete removed the row may use it: a concurrent replay loses.
        const res = await db.deleteFrom('login_flows').where('id_hash', '=', hashId(id)).executeTakeFirst();
        return Number(res.numDeletedRows) === 1 ? f : undefined;
      }),
    deleteFlow: (id) =>
      wrap(async () => {
        await db.deleteFrom('login_flows').where('id_hash', '=', hashId(id)).execute();
      }),
    countFlows: () =>
      wrap(async () => {
        const r = await db.selectFrom('login_flows').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
        return Number(r.n);
      }),
    sweep: (now) =>
      wrap(async () => {
        const a = await db.deleteFrom('sessions').where('expires_at', '<=', now).executeTakeFirst();
        const b = await db.deleteFrom('login_flows').where('expires_at', '<=', now).executeTakeFirst();
        return Number(a.numDeletedRows) + Number(b.numDeletedRows);
      }),
  };
}

async function readFlow(db: Kysely<Database>, id: string): Promise<LoginFlow | undefined> {
  const r = await db.selectFrom('login_flows').selectAll().where('id_hash', '=', hashId(id)).executeTakeFirst();
  if (!r) return undefined;
  return {
    state: r.state,
    nonce: r.nonce,
    codeVerifier: r.code_verifier,
    returnTo: r.return_to,
    stash: r.stash === null ? null : (JSON.parse(r.stash) as StashedRequest),
    stepUp: Number(r.step_up) === 1,
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
  };
}

/** The in-memory twin, for unit tests and the bench. */
export function memorySessionStore(): SessionStore {
  const sessions = new Map<string, Session>();
  const flows = new Map<string, LoginFlow>();
  return {
    createSession: async (id, s) => void sessions.set(hashId(id), structuredClone(s)),
    getSession: async (id) => structuredClone(sessions.get(hashId(id))),
    touchSession: async (id, t) => {
      const s = sessions.get(hashId(id));
      if (s) s.lastSeenAt = t;
    },
    deleteSession: async (id) => void sessions.delete(hashId(id)),
    createFlow: async (id, f) => void flows.set(hashId(id), structuredClone(f)),
    getFlow: async (id) => structuredClone(flows.get(hashId(id))),
    takeFlow: async (id) => {
      const f = flows.get(hashId(id));
      flows.delete(hashId(id));
      return f;
    },
    deleteFlow: async (id) => void flows.delete(hashId(id)),
    countFlows: async () => flows.size,
    sweep: async (now) => {
      let n = 0;
      for (const [k, s] of sessions) if (s.expiresAt <= now && sessions.delete(k)) n++;
      for (const [k, f] of flows) if (f.expiresAt <= now && flows.delete(k)) n++;
      return n;
    },
  };
}
