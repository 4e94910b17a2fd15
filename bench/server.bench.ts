// The real server process (`portcullis serve`) over HTTP: grants/s through the whole stack, and its
// resident memory holding 10,000 active grants (DESIGN.md budget: under 200 MB).
import { spawnBroker, tempDir, testConfig } from '../test/helpers/broker.ts';
import { startTestIdp } from '../test/helpers/idp.ts';
import { stats, type BenchRow } from './stats.ts';

const ACTIVE = Number(process.env.BENCH_ACTIVE ?? 10_000);

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
    grants: { minDuration: '1m', maxDuration: '8h', maxActivePerUser: ACTIVE + 1000 },
    reaper: { sweep: '*/15 * * * * *' },
    targets: [{ id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'simulated' } }],
  });
  // As production runs it: compiled JavaScript (`npm run bench` builds dist/ first).
  const broker = await spawnBroker(config, tmp.dir, { PORTCULLIS_LOG: 'warn' }, { compiled: true });
  const rows: BenchRow[] = [];
  try {
    const token = await idp.getIdToken('alice');
    const post = async () => {
      const s = performance.now();
      const res = await fetch(`${broker.url}/api/v1/grants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ target: 'lab-pc', duration: '2h', reason: 'T-1' }),
      });
      if (res.status !== 201) throw new Error(`grant request answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
      return performance.now() - s;
    };
    for (let i = 0; i < 100; i++) await post();
    await new Promise((r) => setTimeout(r, 3000)); // let start-up garbage (wasm compilation) go
    const idle = await rss(broker.url);
    rows.push({ bench: 'server', metric: 'RSS idle', value: Math.round(idle.rss), unit: 'MiB', note: `after start and 100 grants; heap used ${Math.round(idle.heap)} MiB` });

    const lat: number[] = [];
    let made = 100;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (made < ACTIVE) {
        made++;
        lat.push(await post());
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    const l = stats(lat);
    rows.push({ bench: 'server', metric: 'grants/s over HTTP, 8 clients', value: Math.round(lat.length / seconds), unit: '1/s', note: `${lat.length} POST /api/v1/grants, bearer ID token, simulated firewall (durable SQLite)` });
    rows.push({ bench: 'server', metric: 'HTTP latency median', value: Math.round(l.median * 100) / 100, unit: 'ms', note: '8 concurrent clients, so includes queueing' });
    rows.push({ bench: 'server', metric: 'HTTP latency p99', value: Math.round(l.p99 * 100) / 100, unit: 'ms' });
    await new Promise((r) => setTimeout(r, 3000));
    const full = await rss(broker.url);
    rows.push({ bench: 'server', metric: 'RSS with active grants', value: Math.round(full.rss), unit: 'MiB', note: `${ACTIVE} active grants (one reaper timer); heap used ${Math.round(full.heap)} MiB; budget: < 200 MB` });
  } finally {
    await broker.kill('SIGTERM');
    await idp.close();
    tmp.cleanup();
  }
  return rows;
}
