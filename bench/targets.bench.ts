// GET /api/v1/targets (what the web's request page loads) with 1,000 targets over HTTP: every
// target carries its duration limits for the caller, so this is up to 2 × 8 Cedar decisions per
// target unless the engine's memo answers. Cold: each user's first request; warm: repeats.
import { spawnBroker, tempDir, testConfig } from '../test/helpers/broker.ts';
import { startTestIdp } from '../test/helpers/idp.ts';
import { stats, type BenchRow } from './stats.ts';

const TARGETS = Number(process.env.BENCH_TARGETS ?? 1000);
const USERS = 20;
const WARM = 200;

const ENVS = ['dev', 'test', 'staging', 'lab', 'prod'];
const CUSTOMERS = ['internal', 'acme'];

export async function run(): Promise<BenchRow[]> {
  const tmp = tempDir('portcullis-bench-');
  const users = Object.fromEntries(Array.from({ length: USERS }, (_, i) => [`u${i}`, { email: `u${i}@example.test`, groups: ['engineers'] }]));
  const idp = await startTestIdp({ mfa: 'amr-otp', users });
  // ~10 tag sets (5 envs × 2 customers), one declared port: what a fleet of look-alike machines is.
  const targets = Array.from({ length: TARGETS }, (_, i) => ({
    id: `pc-${String(i).padStart(4, '0')}`,
    tags: { env: ENVS[i % ENVS.length]!, customer: CUSTOMERS[Math.floor(i / ENVS.length) % CUSTOMERS.length]! },
    firewall: { kind: 'simulated' },
  }));
  const config = testConfig(tmp.dir, {
    oidc: { issuer: idp.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } } },
    targets,
  });
  const broker = await spawnBroker(config, tmp.dir, { PORTCULLIS_LOG: 'warn' }, { compiled: true });
  const rows: BenchRow[] = [];
  try {
    const tokens = await Promise.all(Object.keys(users).map((u) => idp.getIdToken(u)));
    const get = async (token: string) => {
      const s = performance.now();
      const res = await fetch(`${broker.url}/api/v1/targets`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as { targets: unknown[] };
      if (res.status !== 200 || body.targets.length !== TARGETS) throw new Error(`GET /api/v1/targets answered ${res.status} with ${body.targets?.length} targets`);
      return performance.now() - s;
    };
    const cold = [];
    for (const t of tokens) cold.push(await get(t));
    const warm = [];
    for (let i = 0; i < WARM; i++) warm.push(await get(tokens[i % tokens.length]!));
    const c = stats(cold.slice(1)); // the very first also pays the JIT and the JWKS fetch
    const w = stats(warm);
    const r = (v: number) => Math.round(v * 10) / 10;
    const note = `${TARGETS} targets, 10 tag sets, engineer with MFA; budget: <= 50 ms`;
    rows.push({ bench: 'targets', metric: 'GET /targets cold median', value: r(c.median), unit: 'ms', note: `first request of each of ${USERS - 1} users (after a first at ${r(cold[0]!)} ms); ${note}` });
    rows.push({ bench: 'targets', metric: 'GET /targets cold p99', value: r(c.p99), unit: 'ms' });
    rows.push({ bench: 'targets', metric: 'GET /targets warm median', value: r(w.median), unit: 'ms', note: `${WARM} requests cycling the users` });
    rows.push({ bench: 'targets', metric: 'GET /targets warm p99', value: r(w.p99), unit: 'ms' });
  } finally {
    await broker.kill('SIGTERM');
    await idp.close();
    tmp.cleanup();
  }
  return rows;
}
