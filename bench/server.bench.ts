// The real server process (`portcullis serve`) over HTTP: grants/s through the whole stack, and its
// resident memory holding 10,000 active grants (DESIGN.md budget: under 200 MB).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { spawnBroker, tempDir, testConfig, ROOT } from '../test/helpers/broker.ts';
import { startTestIdp } from '../test/helpers/idp.ts';
import { stats, type BenchRow } from './stats.ts';

const ACTIVE = Number(process.env.BENCH_ACTIVE ?? 10_000);
const SINGLE = 1000;
const BARE = 5000;

// The reference: a bare express app in its own process answering the same POST with a JSON body.
const BARE_APP = `
const express = require('express');
const app = express();
app.post('/api/v1/grants', express.json(), (req, res) => res.status(201).json({ grant: { id: 'g_1', target: req.body.target, state: 'active' }, outcome: 'active' }));
const s = app.listen(0, '127.0.0.1', () => console.log('http://127.0.0.1:' + s.address().port));
`;

async function startBare(): Promise<{ url: string; kill(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', BARE_APP], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { url: line.toString().trim(), kill: async () => { child.kill('SIGTERM'); await once(child, 'exit'); } };
}

/** Requests/s and latencies of `post` with `clients` concurrent callers, `n` requests in all. */
async function load(post: () => Promise<number>, clients: number, n: number): Promise<{ rate: number; median: number; p99: number }> {
  const lat: number[] = [];
  let started = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (started < n) {
      started++;
      lat.push(await post());
    }
  }));
  const l = stats(lat);
  return { rate: lat.length / ((performance.now() - t0) / 1000), median: l.median, p99: l.p99 };
}

const ms = (v: number) => Math.round(v * 100) / 100;

async function rss(url: string): Promise<{ rss: number; heap: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
  return { rss: read('portcullis_process_resident_memory_bytes'), heap: read('portcullis_nodejs_heap_size_used_bytes') };
}

export async function run(): Promise<BenchRow[]> {
  const tmp = tempDir('portcullis-bench-');
  const idp = await startTestIdp({ mfa: 'amr-otp', users: { alice: { email: 'alice@example.test', groups: ['engineers'] } } });
  const config = testConfig(tmp.dir, {
    // One user from one address makes every request: the per-user and per-address limits would answer 429.
    server: { listen: '127.0.0.1:0', rateLimits: { grantRequestsPerUser: 1_000_000, grantRequestsPerAddress: 1_000_000 } },
    oidc: { issuer: idp.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } } },
    grants: { minDuration: '1m', maxDuration: '8h', maxActivePerUser: ACTIVE + SINGLE + 1000 },
    reaper: { sweep: '*/15 * * * * *' },
    targets: [{ id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'simulated' } }],
  });
  // As production runs it: compiled JavaScript (`npm run bench` builds dist/ first).
  const broker = await spawnBroker(config, tmp.dir, { PORTCULLIS_LOG: 'warn' }, { compiled: true });
  const bare = await startBare();
  const rows: BenchRow[] = [];
  try {
    const token = await idp.getIdToken('alice');
    const post = (base: string) => async () => {
      const s = performance.now();
      const res = await fetch(`${base}/api/v1/grants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ target: 'lab-pc', duration: '2h', reason: 'T-1' }),
      });
      if (res.status !== 201) throw new Error(`grant request answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
      return performance.now() - s;
    };
    const grant = post(broker.url);
    for (let i = 0; i < 100; i++) await grant();
    await new Promise((r) => setTimeout(r, 3000)); // let start-up garbage (wasm compilation) go
    const idle = await rss(broker.url);
    rows.push({ bench: 'server', metric: 'RSS idle', value: Math.round(idle.rss), unit: 'MiB', note: `after start and 100 grants; heap used ${Math.round(idle.heap)} MiB` });

    // The reference first, warmed the same way: what the HTTP client, loopback and express cost alone.
    const reference = post(bare.url);
    for (let i = 0; i < 200; i++) await reference();
    const bareOne = await load(reference, 1, SINGLE);
    const bareEight = await load(reference, 8, BARE);

    const one = await load(grant, 1, SINGLE);
    rows.push({ bench: 'server', metric: 'HTTP latency median, 1 client', value: ms(one.median), unit: 'ms', note: `${SINGLE} POST /api/v1/grants one after another; bare express ${ms(bareOne.median)} ms (×${(one.median / bareOne.median).toFixed(1)}); budget: <= 2 ms` });
    rows.push({ bench: 'server', metric: 'HTTP latency p99, 1 client', value: ms(one.p99), unit: 'ms', note: `bare express ${ms(bareOne.p99)} ms` });
    const eight = await load(grant, 8, ACTIVE - SINGLE - 100);
    rows.push({ bench: 'server', metric: 'grants/s over HTTP, 8 clients', value: Math.round(eight.rate), unit: '1/s', note: `POST /api/v1/grants, bearer ID token, simulated firewall (durable SQLite); bare express ${Math.round(bareEight.rate)}/s, ratio ${(eight.rate / bareEight.rate).toFixed(2)}; budget: >= 1,000/s` });
    rows.push({ bench: 'server', metric: 'HTTP latency median', value: ms(eight.median), unit: 'ms', note: `8 concurrent clients, so includes queueing; bare express ${ms(bareEight.median)} ms` });
    rows.push({ bench: 'server', metric: 'HTTP latency p99', value: ms(eight.p99), unit: 'ms', note: `bare express ${ms(bareEight.p99)} ms` });
    await new Promise((r) => setTimeout(r, 3000));
    const full = await rss(broker.url);
    rows.push({ bench: 'server', metric: 'RSS with active grants', value: Math.round(full.rss), unit: 'MiB', note: `${ACTIVE} active grants (one reaper timer); heap used ${Math.round(full.heap)} MiB; budget: < 200 MB` });
  } finally {
    await broker.kill('SIGTERM');
    await bare.kill();
    await idp.close();
    tmp.cleanup();
  }
  return rows;
}
