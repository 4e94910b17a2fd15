// One broker replica for the replica tests: createPortcullis in a child process, driven over IPC.
// Its simulated backend is a SQLite file shared by every replica, and each close is logged there
// (`close_log`), so the test counts closes at the backend, not in any one broker.
import SqliteDatabase from 'better-sqlite3';
import { createPortcullis } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { GrantId, Principal, UserId } from '../../src/domain/index.ts';
import { createSimulatedAdapter } from '../../src/firewall/simulated.ts';
import { createLogger } from '../../src/log.ts';

export interface ReplicaRequest {
  seq: number;
  op: 'request' | 'approve' | 'signIn';
  args: Record<string, unknown>;
}

const [rawConfig, backendPath] = [JSON.parse(process.env.REPLICA_CONFIG!) as Record<string, unknown>, process.env.REPLICA_BACKEND!];
const name = process.env.REPLICA_NAME ?? 'replica';

const log = new SqliteDatabase(backendPath);
log.pragma('journal_mode = WAL');
log.pragma('busy_timeout = 5000');
log.exec('create table if not exists close_log (ref text not null, replica text not null)');
const logClose = log.prepare('insert into close_log (ref, replica) values (?, ?)');
const logAll = log.transaction((refs: string[]) => {
  for (const r of refs) logClose.run(r, name);
});

const app = await createPortcullis(parseConfig(rawConfig), {
  log: createLogger(process.env.PORTCULLIS_LOG ?? 'warn'),
  firewallFactories: {
    simulated: (_cfg, target) => {
      const fw = createSimulatedAdapter(backendPath, target.id);
      const close = fw.close.bind(fw);
      fw.close = async (refs: string[]) => {
        await close(refs);
        logAll(refs);
      };
      return fw;
    },
  },
});
const { url } = await app.start();

const principal = (sub: string, groups: string[]): Principal => ({ sub: sub as UserId, email: `${sub}@example.test`, groups, mfa: true, authTime: Math.floor(Date.now() / 1000), amr: ['pwd', 'otp'] });

async function handle(req: ReplicaRequest): Promise<unknown> {
  const a = req.args;
  if (req.op === 'signIn') {
    for (const [sub, groups] of Object.entries(a.users as Record<string, string[]>)) await app.broker.noteSignIn(principal(sub, groups));
    return true;
  }
  if (req.op === 'request') {
    // Every grant of the batch expires at `expiresAt` (to the second): durations are counted from now.
    const specs = a.grants as { sub: string; target: string; ip: string; expiresAt: number }[];
    const out: { id: string; state: string; expiresAt: number | null }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < specs.length) {
          const s = specs[next++]!;
          const seconds = Math.max(1, Math.round((s.expiresAt - Date.now()) / 1000));
          const { grant } = await app.broker.requestAccess(principal(s.sub, ['engineers']), { target: s.target, duration: `${seconds}s`, reason: 'T-1 replicas' }, { channel: 'api', callerIp: s.ip });
          out.push({ id: grant.id, state: grant.state, expiresAt: grant.expiresAt });
        }
      }),
    );
    return out;
  }
  if (req.op === 'approve') {
    const g = await app.broker.approve(principal(a.sub as string, ['approvers']), a.id as GrantId, {}, 'api');
    return { state: g.state };
  }
  throw new Error(`unknown op ${String(req.op)}`);
}

process.on('message', (m: ReplicaRequest) => {
  handle(m).then(
    (result) => process.send!({ seq: m.seq, result }),
    (e: Error) => process.send!({ seq: m.seq, error: `${(e as { code?: string }).code ?? e.name}: ${e.message}` }),
  );
});
process.on('SIGTERM', () => {
  void app.stop().finally(() => process.exit(0));
});
process.send!({ ready: true, url, owner: app.store.owner });
