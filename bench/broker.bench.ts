// Decision path and expiry budgets of DESIGN.md: grants/s and added latency (auth check + policy +
// store write + audit append + no-op adapter) on SQLite; expiry lag and RSS with 10,000 active grants.
import { join } from 'node:path';
import { Broker } from '../src/broker/broker.ts';
import type { Principal } from '../src/domain/index.ts';
import { parseConfig } from '../src/config/load.ts';
import { createMemoryAdapter } from '../src/firewall/memory.ts';
import { createTokenVerifier } from '../src/identity/tokens.ts';
import { createLogger } from '../src/log.ts';
import { loadPolicyEngine } from '../src/policy/cedar.ts';
import { Reaper } from '../src/reaper/reaper.ts';
import { openDb } from '../src/store/db.ts';
import { Store } from '../src/store/store.ts';
import { ROOT, tempDir } from '../test/helpers/broker.ts';
import { startTestIdp } from '../test/helpers/idp.ts';
import { stats, type BenchRow } from './stats.ts';

const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 3000);
const ACTIVE = Number(process.env.BENCH_ACTIVE ?? 10_000);
// Requests come from many users, as on a real broker: one user with thousands of live grants would
// make the per-user quota count (bounded by grants.maxActivePerUser in production) the whole bench.
const USERS = 100;

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const tmp = tempDir('portcullis-bench-');
  const users = Object.fromEntries(Array.from({ length: USERS }, (_, i) => [`u${i}`, { email: `u${i}@example.test`, groups: ['engineers'] }]));
  const idp = await startTestIdp({ mfa: 'amr-otp', users });
  try {
    const config = parseConfig({
      oidc: { issuer: idp.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } } },
      store: { url: `sqlite:${join(tmp.dir, 'bench.db')}` },
      targets: [{ id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } }],
    });
    const verifier = createTokenVerifier(config.oidc);
    const tokens = await Promise.all(Object.keys(users).map((u) => idp.getIdToken(u)));
    for (const t of tokens) await verifier.verify(t); // warm the JWKS cache, as a running broker has it

    const db = await openDb(config.store.url);
    const store = new Store(db);
    const fw = createMemoryAdapter();
    const closedAt = new Map<string, number>();
    const close = fw.close.bind(fw);
    fw.close = async (refs) => {
      await close(refs);
      const t = Date.now();
      for (const r of refs) closedAt.set(r, t);
    };
    const policy = loadPolicyEngine({ dir: join(ROOT, 'policies') });
    const log = createLogger('silent');
    const broker = new Broker({
      store,
      policy: () => policy,
      firewalls: new Map([['lab-pc', fw]]),
      targets: config.targets,
      log,
      limits: { minDurationSeconds: 1, maxDurationSeconds: 8 * 3600, pendingTimeoutSeconds: 3600, maxActivePerUser: 1_000_000, maxSource: { ipv4: 32, ipv6: 128 }, mfaMaxAgeSeconds: 12 * 3600, timeZone: 'UTC' },
    });
    const ctx = { channel: 'cli' as const, callerIp: '198.51.100.7' };

    // 1. The decision path, one request after another, as one client sees it.
    let calls = 0;
    const one = async (duration: string) => {
      const p: Principal = await verifier.verify(tokens[calls++ % USERS]!);
      return broker.requestAccess(p, { target: 'lab-pc', duration, reason: 'T-1' }, ctx);
    };
    for (let i = 0; i < 200; i++) await one('1h'); // warm-up (JIT, SQLite page cache)
    const lat: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < DECISIONS; i++) {
      const s = performance.now();
      await one('1h');
      lat.push(performance.now() - s);
    }
    const seqRate = DECISIONS / ((performance.now() - t0) / 1000);
    const l = stats(lat);
    rows.push({ bench: 'decision', metric: 'grants/s, sequential', value: Math.round(seqRate), unit: '1/s', note: `${DECISIONS} requests of ${USERS} users: verify ID token + Cedar + SQLite CAS writes + 4 audit events + memory adapter` });
    rows.push({ bench: 'decision', metric: 'latency median', value: round(l.median), unit: 'ms' });
    rows.push({ bench: 'decision', metric: 'latency p99', value: round(l.p99), unit: 'ms', note: 'budget: < 10 ms' });

    // 2. Concurrent clients (the server's event loop serialises SQLite; this shows the ceiling).
    for (const clients of [8, 16]) {
      const t1 = performance.now();
      let next = 0;
      await Promise.all(Array.from({ length: clients }, async () => {
        while (next++ < DECISIONS) await one('1h');
      }));
      rows.push({ bench: 'decision', metric: `grants/s, ${clients} concurrent`, value: Math.round(DECISIONS / ((performance.now() - t1) / 1000)), unit: '1/s', note: 'budget: >= 1,000/s on 2 cores' });
    }

    // 3. Expiry lag with ACTIVE grants live: all expire within a few seconds of each other.
    await db.kysely.updateTable('grants').set({ state: 'closed', close_reason: 'revoked' }).where('state', '=', 'active').execute();
    await fw.close((await fw.list()).map((r) => r.ref));
    closedAt.clear();
    const reaper = new Reaper(broker, { sweep: '*/15 * * * * *', log });
    await reaper.start();
    const created: { ref: string; expiresAt: number }[] = [];
    const tc = performance.now();
    const holdSeconds = 25;
    while (created.length < ACTIVE) {
      const batch = await Promise.all(Array.from({ length: 16 }, () => one(`${holdSeconds}s`)));
      for (const b of batch) created.push({ ref: b.grant.ruleRef!, expiresAt: b.grant.expiresAt! });
    }
    const createSeconds = (performance.now() - tc) / 1000;
    global.gc?.();
    const rss = process.memoryUsage().rss / 2 ** 20;
    rows.push({ bench: 'expiry', metric: 'RSS with active grants', value: Math.round(rss), unit: 'MiB', note: `${created.length} active grants, timers armed, whole bench process (incl. IdP); budget: < 200 MB` });
    const lastExpiry = Math.max(...created.map((c) => c.expiresAt));
    while (Date.now() < lastExpiry + 3000 && closedAt.size < created.length) await new Promise((r) => setTimeout(r, 100));
    const lags = created.map((c) => (closedAt.get(c.ref) ?? Infinity) - c.expiresAt);
    const e = stats(lags);
    rows.push({ bench: 'expiry', metric: 'removal lag median', value: e.median, unit: 'ms', note: `${created.length} grants created in ${createSeconds.toFixed(1)} s, each held ${holdSeconds} s` });
    rows.push({ bench: 'expiry', metric: 'removal lag p99', value: e.p99, unit: 'ms', note: 'budget: < 1,000 ms' });
    rows.push({ bench: 'expiry', metric: 'adapter close calls', value: fw.calls.close, unit: 'calls', note: `for ${created.length} expiries (batched per tick)` });
    await reaper.stop();
    await db.close();
  } finally {
    await idp.close();
    tmp.cleanup();
  }
  return rows;
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
