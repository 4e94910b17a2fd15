// nftables adapter latency in a throwaway network namespace: open, close, and closing 1,000 elements
// in one transaction. Needs root and nft; otherwise it says so and reports nothing.
import { spawnSync } from 'node:child_process';
import { createNftablesAdapter } from '../src/firewall/nftables.ts';
import type { GrantId } from '../src/broker/types.ts';
import { stats, type BenchRow } from './stats.ts';

const SAMPLES = 100;
const BATCH = 1000;

export async function run(): Promise<BenchRow[]> {
  if (process.getuid?.() !== 0 || spawnSync('nft', ['--version']).status !== 0 || spawnSync('ip', ['netns', 'list']).status !== 0) {
    process.stderr.write('bench nft: skipped — needs root, nft and ip netns (no rows reported)\n');
    return [];
  }
  const ns = `pcnft-${process.pid}-bench`;
  spawnSync('ip', ['netns', 'del', ns]);
  if (spawnSync('ip', ['netns', 'add', ns]).status !== 0) {
    process.stderr.write(`bench nft: skipped — cannot create namespace ${ns}\n`);
    return [];
  }
  try {
    const fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis', netns: ns });
    await fw.init();
    const expiresAt = () => Date.now() + 3_600_000;
    const v4 = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`;
    const spec = (i: number) => ({ grantId: `b-${i}` as GrantId, targetId: 'bench', source: v4(i), port: 3389, protocol: 'tcp' as const, expiresAt: expiresAt() });

    const time = async (fn: () => Promise<unknown>) => {
      const t0 = process.hrtime.bigint();
      await fn();
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };

    // Open and close one at a time on an otherwise empty table.
    const opens: number[] = [];
    const refs: string[] = [];
    for (let i = 0; i < SAMPLES; i++) opens.push(await time(async () => refs.push(await fw.open(spec(i)))));
    const closes: number[] = [];
    for (const r of refs) closes.push(await time(() => fw.close([r])));

    // 1,000 live elements written directly (setup, not measured), then the adapter closes all in one call.
    const exp = expiresAt();
    const lines = Array.from({ length: BATCH }, (_, i) =>
      `add element inet portcullis g4_0 { ${v4(i).replace('/32', '')} . 0.0.0.0/0 . tcp . 3389 timeout 3600s comment "portcullis grant=x-${i} exp=${exp}" }`);
    const setup = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: lines.join('\n') + '\n' });
    if (setup.status !== 0) throw new Error(`bench setup failed: ${setup.stderr.toString()}`);
    const listed = await fw.list();
    if (listed.length !== BATCH) throw new Error(`expected ${BATCH} elements, listed ${listed.length}`);
    const openBusy: number[] = [];
    const busyRefs: string[] = [];
    for (let i = 0; i < 20; i++) openBusy.push(await time(async () => busyRefs.push(await fw.open(spec(BATCH + i)))));
    await fw.close(busyRefs);
    const writes = fw.calls.write;
    const batchMs = await time(() => fw.close(listed.map((r) => r.ref)));
    const batchWrites = fw.calls.write - writes;
    if ((await fw.list()).length !== 0) throw new Error('batch close left elements behind');

    const o = stats(opens);
    const c = stats(closes);
    const ob = stats(openBusy);
    const note = `netns, nft ${nftVersion()}, via ip netns exec`;
    return [
      { bench: 'nft', metric: 'open latency median', value: round(o.median), unit: 'ms', note: `${SAMPLES} opens, empty table; ${note}` },
      { bench: 'nft', metric: 'open latency p99', value: round(o.p99), unit: 'ms', note: 'list + create element' },
      { bench: 'nft', metric: `open latency median (${BATCH} live)`, value: round(ob.median), unit: 'ms', note: 'open lists the table first (idempotency, slot choice)' },
      { bench: 'nft', metric: 'close latency median', value: round(c.median), unit: 'ms', note: `${SAMPLES} single closes` },
      { bench: 'nft', metric: 'close latency p99', value: round(c.p99), unit: 'ms', note: 'list + delete element' },
      { bench: 'nft', metric: `close ${BATCH} elements`, value: round(batchMs), unit: 'ms', note: 'one close() call' },
      { bench: 'nft', metric: `nft transactions for ${BATCH} closes`, value: batchWrites, unit: 'calls', note: 'one nft -f run = one kernel transaction' },
    ];
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function nftVersion(): string {
  return /v[\d.]+/.exec(spawnSync('nft', ['--version']).stdout.toString())?.[0] ?? '?';
}
