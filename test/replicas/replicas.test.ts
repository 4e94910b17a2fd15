// Three broker processes on one real PostgreSQL, one simulated backend file shared by all three:
// due grants are claimed by whichever replica is awake, each rule is closed exactly once (counted at
// the backend), a replica SIGKILLed mid-sweep leaves nothing behind, N-of-M approvals race safely
// across replicas, and the audit chain is one chain that any replica streams identically.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { stringify } from 'yaml';
import { openDb, type Db } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { ROOT, tempDir, waitFor } from '../helpers/broker.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { postgresUnavailable, startPostgres, type Postgres } from '../helpers/postgres.ts';
import type { ReplicaRequest } from './replica.ts';

/** No grant outlives its expiry by more than this, a replica killed mid-sweep included (docs/metrics.md alerts at 5 s). */
const LAG_BUDGET_MS = 5_000;
const GRANTS = 1000;

interface Replica {
  name: string;
  child: ChildProcess;
  owner: string;
  output: () => string;
  call(op: ReplicaRequest['op'], args: Record<string, unknown>): Promise<any>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnReplica(name: string, config: Record<string, unknown>, backend: string, env: NodeJS.ProcessEnv = {}): Promise<Replica> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'replica.ts')], {
    cwd: ROOT,
    env: { ...process.env, REPLICA_CONFIG: JSON.stringify(config), REPLICA_BACKEND: backend, REPLICA_NAME: name, PORTCULLIS_LOG: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let seq = 0;
  return new Promise((resolve, reject) => {
    child.on('message', (m: any) => {
      if (m.ready) {
        resolve({
          name,
          child,
          owner: m.owner,
          output: () => out,
          exited,
          call: (op, args) =>
            new Promise((res, rej) => {
              const s = ++seq;
              pending.set(s, { resolve: res, reject: rej });
              child.send({ seq: s, op, args } satisfies ReplicaRequest);
            }),
        });
        return;
      }
      const p = pending.get(m.seq);
      pending.delete(m.seq);
      if (m.error) p?.reject(new Error(`${name}: ${m.error}`));
      else p?.resolve(m.result);
    });
    void exited.then(({ code, signal }) => {
      for (const p of pending.values()) p.reject(new Error(`${name} exited (${code ?? signal}):\n${out}`));
      reject(new Error(`${name} exited before it was ready (${code ?? signal}):\n${out}`));
    });
  });
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((res) => child.once('exit', (code) => res({ code, stdout, stderr })));
}

const unavailable = postgresUnavailable();
let pg: Postgres | undefined;
const tmp = tempDir('portcullis-replicas-');
const replicas: Replica[] = [];

before(async () => {
  if (!unavailable) pg = await startPostgres();
});
after(async () => {
  for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await Promise.all(replicas.map((r) => r.exited));
  await pg?.stop();
  tmp.cleanup();
});

test('three replicas on one PostgreSQL: 1,000 grants expire together, each rule closed once, a replica killed mid-sweep, N=2 approvals across replicas, one audit chain', async (t) => {
  if (!requireOrSkip(t, !unavailable, unavailable ?? '')) return;
  const backend = join(tmp.dir, 'backend.db');
  const config = {
    server: { listen: '127.0.0.1:0' },
    store: { url: pg!.url },
    policy: { dir: join(ROOT, 'policies') },
    grants: { minDuration: '1s', maxDuration: '8h' },
    audit: {},
    reaper: { sweep: '*/1 * * * * *' },
    oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } },
    targets: [
      { id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'simulated' } },
      { id: 'dc01', tags: { env: 'prod', customer: 'internal', role: 'domain-controller' }, firewall: { kind: 'simulated' } },
    ],
  };
  // A dies by SIGKILL at its first expiry claim, after the claim commits and before any rule is removed.
  const [a, b, c] = await Promise.all([
    spawnReplica('A', config, backend, { PORTCULLIS_FAILPOINTS: 'after-close-intent' }),
    spawnReplica('B', config, backend),
    spawnReplica('C', config, backend),
  ]);
  replicas.push(a!, b!, c!);
  assert.equal(new Set(replicas.map((r) => r.owner)).size, 3, 'each replica has its own owner id');

  const db: Db = await openDb(pg!.url);
  const store = new Store(db);
  t.after(() => db.close());

  // Two approvers approve one two-approver grant at the same moment, on two replicas: both count, it opens.
  await b!.call('signIn', { users: { alice: ['engineers'], bob: ['approvers'], carol: ['approvers'] } });
  for (let i = 0; i < 5; i++) {
    const [made] = await a!.call('request', { grants: [{ sub: 'alice', target: 'dc01', ip: `198.51.100.${10 + i}`, expiresAt: Date.now() + 3600_000 }] });
    assert.equal(made.state, 'pending');
    const both = await Promise.allSettled([b!.call('approve', { sub: 'bob', id: made.id }), c!.call('approve', { sub: 'carol', id: made.id })]);
    for (const r of both) assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
    const g = (await store.getGrant(made.id))!;
    assert.equal(g.state, 'active', `trial ${i}: both approvals counted and the grant opened`);
    assert.equal((await store.approvals(g.id)).length, 2);
  }

  // 1,000 grants made on all three replicas, all expiring at T (to the second), and one more made on
  // A expiring after A is gone.
  // Making them takes ~11 s on an idle 2-core machine and up to ~40 s on a loaded one: T leaves room
  // for that (the backends' expiries are real time; each process keeps its own clock).
  const startedAt = Date.now();
  const T = startedAt + 55_000;
  const specs = Array.from({ length: GRANTS }, (_, i) => ({ sub: `u${i}`, target: 'lab-pc', ip: `10.${(i >> 8) & 255}.${i & 255}.7`, expiresAt: T }));
  const third = Math.ceil(GRANTS / 3);
  const made = (
    await Promise.all([
      a!.call('request', { grants: [...specs.slice(0, third), { sub: 'late', target: 'lab-pc', ip: '10.99.0.1', expiresAt: T + 3000 }] }),
      b!.call('request', { grants: specs.slice(third, 2 * third) }),
      c!.call('request', { grants: specs.slice(2 * third) }),
    ])
  ).flat() as { id: string; state: string; expiresAt: number }[];
  assert.equal(made.length, GRANTS + 1);
  assert.ok(made.every((g) => g.state === 'active'), 'every grant opened');
  const createdBy = Date.now();
  t.diagnostic(`${GRANTS + 1} grants made in ${createdBy - startedAt} ms`);
  assert.ok(createdBy < T - 2000, `the grants were made ${T - createdBy} ms before their expiry (the test needs them made first)`);
  const lateId = made.at(-1)!.id;

  // B and C idle (their sweeps hold no lock when nothing is due) are stopped, so A is the one awake
  // at T: it claims the first due grants and is killed by its failpoint with them claimed.
  b!.child.kill('SIGSTOP');
  c!.child.kill('SIGSTOP');
  const death = await Promise.race([a!.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`A did not reach its failpoint:\n${a!.output()}`)), T - Date.now() + 30_000).unref())]);
  const claimedByA = (await store.grantsInStates(['closing'])).length;
  b!.child.kill('SIGCONT');
  c!.child.kill('SIGCONT');
  assert.equal(death.signal, 'SIGKILL');
  assert.match(a!.output(), /failpoint after-close-intent: SIGKILL/);

  const ids = made.map((g) => g.id);
  await waitFor('every grant closed by B and C', async () => {
    const rows = await db.kysely.selectFrom('grants').select('state').where('id', 'in', ids).where('state', '!=', 'closed').execute();
    return rows.length === 0;
  }, 60_000, 100);

  // Each within the lag budget of its expiry; the late grant (made on A, which is gone) on time too.
  const closed = await db.kysely.selectFrom('grants').select(['id', 'rule_ref', 'expires_at', 'closed_at', 'close_reason']).where('id', 'in', ids).execute();
  const lags = closed.map((g) => Number(g.closed_at) - Number(g.expires_at));
  t.diagnostic(`A claimed ${claimedByA} before it died; lag ms: max ${Math.max(...lags)}, median ${lags.sort((x, y) => x - y)[lags.length >> 1]}`);
  for (const g of closed) {
    assert.equal(g.close_reason, 'expired', g.id);
    assert.ok(Number(g.closed_at) - Number(g.expires_at) <= LAG_BUDGET_MS, `${g.id} closed ${Number(g.closed_at) - Number(g.expires_at)} ms after its expiry`);
  }
  assert.ok(claimedByA > 0, 'A claimed grants before it died (the mid-sweep kill happened)');
  const late = closed.find((g) => g.id === lateId)!;
  assert.ok(Number(late.closed_at) >= Number(late.expires_at), 'the late grant was not closed early');

  // At the backend: every rule closed exactly once, none left.
  const fw = new SqliteDatabase(backend, { readonly: true });
  t.after(() => fw.close());
  const refs = closed.map((g) => g.rule_ref!);
  const counts = new Map<string, number>();
  for (const r of fw.prepare('select ref from close_log').all() as { ref: string }[]) counts.set(r.ref, (counts.get(r.ref) ?? 0) + 1);
  const wrong = refs.filter((r) => counts.get(r) !== 1).map((r) => `${r}×${counts.get(r) ?? 0}`);
  assert.deepEqual(wrong, [], 'each rule closed exactly once');
  const left = fw.prepare("select count(*) as n from rules where scope = 'simulated:lab-pc'").get() as { n: number };
  assert.equal(left.n, 0, 'no lab-pc rule left at the backend');
  const byReconciler = await db.kysely.selectFrom('audit_events').select('seq').where('type', '=', 'rule.closed').where('body', 'like', '%"actor":"system:reconciler"%').execute();
  assert.equal(byReconciler.length, claimedByA, "A's claimed page was finished by a live replica's reconciler");

  // One chain: it verifies, and `audit tail` on two replicas' hosts gives the same stream.
  const verified = await store.verifyAudit();
  assert.equal(verified.ok, true, JSON.stringify(verified.broken));
  const files = ['B', 'C'].map((n) => {
    const f = join(tmp.dir, `${n}.yaml`);
    writeFileSync(f, stringify(config));
    return f;
  });
  const [tailB, tailC] = await Promise.all(files.map((f) => runCli(['audit', 'tail', '--config', f])));
  assert.equal(tailB!.code, 0, tailB!.stderr);
  assert.equal(tailC!.code, 0, tailC!.stderr);
  assert.equal(tailB!.stdout, tailC!.stdout);
  const seqs = tailB!.stdout.trim().split('\n').map((l) => JSON.parse(l).seq as number);
  assert.equal(seqs.length, verified.headSeq);
  assert.ok(seqs.every((s, i) => s === i + 1), 'no gap, in order');

  for (const r of [b!, c!]) r.child.kill('SIGTERM');
  await Promise.all([b!.exited, c!.exited]);
});
