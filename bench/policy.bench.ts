// Policy engine timings with the example policies: one decision, the broker's request decision
// (OpenPort then RequestPort), maxDuration per target, and loading the set.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPolicyEngine } from '../src/policy/cedar.ts';
import { decideRequest } from '../src/policy/decision.ts';
import { loadFixtures } from '../src/policy/fixtures.ts';
import { maxDuration } from '../src/policy/max-duration.ts';
import type { PolicyQuery } from '../src/policy/port.ts';
import { stats, type BenchRow } from './stats.ts';

const DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'policies');
const DECISIONS = 20_000;

function time(n: number, f: (i: number) => void): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    f(i);
    out[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return out;
}

const round = (v: number) => Math.round(v * 10) / 10;

export async function run(): Promise<BenchRow[]> {
  const loads = time(5, () => loadPolicyEngine({ dir: DIR }));
  const engine = loadPolicyEngine({ dir: DIR });
  // The fixtures are a realistic mix: allows, approvals, denies by forbid and by no permit.
  const fixtures = loadFixtures(DIR);
  const queries: PolicyQuery[] = fixtures.map((f) => ({ ...f.query, action: f.action ?? 'OpenPort' }));
  const requests = fixtures.filter((f) => f.action === undefined).map((f) => f.query);
  const pick = <T>(xs: T[], i: number) => xs[i % xs.length]!;

  time(1_000, (i) => engine.decide(pick(queries, i))); // warm-up: JIT and wasm tiers
  const decide = stats(time(DECISIONS, (i) => engine.decide(pick(queries, i))));
  const request = stats(time(DECISIONS / 4, (i) => decideRequest(engine, pick(requests, i))));
  // Uncached: the engine without its memo (every candidate evaluated); then the memo's hits, as a second
  // GET /targets of the same user sees them (the same query within a sign-in-age band).
  const plain = { decide: engine.decide.bind(engine), describe: engine.describe.bind(engine) };
  const maxDur = stats(time(500, (i) => maxDuration(plain, pick(requests, i), { capMinutes: 480 })));
  requests.forEach((q) => maxDuration(engine, q, { capMinutes: 480 }));
  const maxHit = stats(time(5000, (i) => maxDuration(engine, pick(requests, i), { capMinutes: 480 })));
  const load = stats(loads.map((us) => us / 1000));

  const note = `${engine.describe().length} policies, ${fixtures.length} fixture queries cycled`;
  return [
    { bench: 'policy', metric: 'decide median', value: round(decide.median), unit: 'µs', note: `${DECISIONS} decisions; ${note}` },
    { bench: 'policy', metric: 'decide p99', value: round(decide.p99), unit: 'µs' },
    { bench: 'policy', metric: 'request decision median', value: round(request.median), unit: 'µs', note: 'OpenPort, then RequestPort if refused' },
    { bench: 'policy', metric: 'request decision p99', value: round(request.p99), unit: 'µs' },
    { bench: 'policy', metric: 'maxDuration median', value: round(maxDur.median), unit: 'µs', note: '7 candidates 5 min-8 h, per target, uncached' },
    { bench: 'policy', metric: 'maxDuration p99', value: round(maxDur.p99), unit: 'µs' },
    { bench: 'policy', metric: 'maxDuration memo hit median', value: round(maxHit.median), unit: 'µs', note: 'same answer from the per-set memo (key: the Cedar request, age by policy bands)' },
    { bench: 'policy', metric: 'maxDuration memo hit p99', value: round(maxHit.p99), unit: 'µs' },
    { bench: 'policy', metric: 'load + validate median', value: round(load.median), unit: 'ms', note: 'read, validate, preparse' },
  ];
}
