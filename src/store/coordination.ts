// Several replicas on one PostgreSQL: each holds a session advisory lock naming it (alive while its
// connection is), reconciles under a second advisory lock (one at a time), and hears grant
// activations of the others through LISTEN/NOTIFY. One dedicated connection carries all three.
import { randomInt } from 'node:crypto';
import pg from 'pg';
import type { GrantId } from '../domain/index.ts';
import { errorFields, type Logger } from '../log.ts';
import { GRANT_CHANNEL, LEADER_LOCK_CLASS, OWNER_LOCK_CLASS, type Coordinator } from './store.ts';

export type GrantWake = (id: GrantId, expiresAt: number) => void;

export interface Coordination extends Coordinator {
  /** Called for each grant another (or this) replica activated or extended. */
  onGrantActive(cb: GrantWake): void;
  close(): Promise<void>;
}

/** Opens the coordination connection; `url` must be the store's PostgreSQL URL. */
export async function openCoordination(url: string, log: Logger, opts: { reconnectMs?: number } = {}): Promise<Coordination> {
  const owner = String(randomInt(1, 2 ** 31 - 1));
  const wakes: GrantWake[] = [];
  let client: pg.Client | undefined;
  let closed = false;
  let reconnect: NodeJS.Timeout | undefined;
  /** Serialises the leader lock's take-run-release on the one connection (a sweep and a start may overlap). */
  let leading: Promise<unknown> = Promise.resolve();

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url });
    c.on('notification', (n) => {
      if (n.channel !== GRANT_CHANNEL || !n.payload) return;
      const [id, exp] = n.payload.split(' ');
      const expiresAt = Number(exp);
      if (!id || !Number.isFinite(expiresAt) || exp === '') return;
      for (const w of wakes) w(id as GrantId, expiresAt);
    });
    c.on('error', (e) => {
      // Losing the connection releases our owner lock: other replicas may now settle our intents,
      // and our own in-flight calls finish with compare-and-swap transitions that lose cleanly.
      log.warn('coordination connection lost; reconnecting', errorFields(e));
      if (client === c) client = undefined;
      c.end().catch(() => {});
      schedule();
    });
    await c.connect();
    await c.query('select pg_advisory_lock($1, $2)', [OWNER_LOCK_CLASS, Number(owner)]);
    await c.query(`listen ${GRANT_CHANNEL}`);
    client = c;
  };
  const schedule = () => {
    if (closed || reconnect) return;
    reconnect = setTimeout(() => {
      reconnect = undefined;
      connect().catch((e) => {
        log.warn('coordination reconnect failed; retrying', errorFields(e));
        schedule();
      });
    }, opts.reconnectMs ?? 1000);
    reconnect.unref();
  };

  await connect();

  return {
    owner,
    onGrantActive(cb) {
      wakes.push(cb);
    },
    exclusive<T>(_name: 'reconcile', fn: () => Promise<T>): Promise<T | undefined> {
      const run = leading.then(async () => {
        const c = client;
        // Without our connection we cannot know who leads: leave it to a replica that can.
        if (!c) return undefined;
        const got = await c.query<{ ok: boolean }>('select pg_try_advisory_lock($1, 1) as ok', [LEADER_LOCK_CLASS]);
        if (!got.rows[0]?.ok) return undefined;
        try {
          return await fn();
        } finally {
          await c.query('select pg_advisory_unlock($1, 1)', [LEADER_LOCK_CLASS]).catch(() => {});
        }
      });
      leading = run.catch(() => {});
      return run;
    },
    async close() {
      closed = true;
      if (reconnect) clearTimeout(reconnect);
      await client?.end().catch(() => {});
      client = undefined;
    },
  };
}
