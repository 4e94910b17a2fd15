// nftables adapter latency in a throwaway network namespace: open, close, closing 1,000 elements in one
// transaction, and the gate check every sweep runs (verify; restore after a flush). Needs root and nft;
// otherwise it says so and reports nothing.
import { spawnSync } from 'node:child_process';
import { createNftablesAdapter } from '../src/firewall/nftables.ts';
import type { GrantId } from '../src/domain/index.ts';
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

    // The gate check on an intact table with no grants: one listing compared with the baseline.
    const checkEmpty: number[] = [];
    for (let i = 0; i < 30; i++) checkEmpty.push(await time(() => fw.ensureGate(async () => [])));

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

    // The gate check with 1,000 live grants (what every sweep pays), then a restore after `delete table`.
    const live = listed.map((r) => ({ grantId: r.grantIds[0] as GrantId, targetId: 'bench', source: r.source, port: 3389, protocol: 'tcp' as const, expiresAt: exp }));
    const reads = fw.calls.read;
    const checkBusy: number[] = [];
    for (let i = 0; i < 30; i++) checkBusy.push(await time(() => fw.ensureGate(async () => live)));
    const readsPerCheck = (fw.calls.read - reads) / 30;
    const restores: number[] = [];
    for (let i = 0; i < 5; i++) {
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'portcullis']);
      restores.push(await time(async () => {
        const r = await fw.ensureGate(async () => live);
        if (!r.restored || r.putBack !== BATCH) throw new Error(`restore put back ${r.putBack}`);
      }));
    }
    const writes = fw.calls.write;
    const batchMs = await time(() => fw.close(listed.map((r) => r.ref)));
    const batchWrites = fw.calls.write - writes;
    const left = await fw.list();
    if (left.length !== 0) throw new Error(`batch close left ${left.length} elements behind, e.g. ${JSON.stringify(left[0])}`);

    const o = stats(opens);
    const c = stats(closes);
    const ob = stats(openBusy);
    const note = `netns, nft ${nftVersion()}, via ip netns exec`;
    const ce = stats(checkEmpty);
    const cb = stats(checkBusy);
    const rs = stats(restores);
    return [
      { bench: 'nft', metric: 'open latency median', value: round(o.median), unit: 'ms', note: `${SAMPLES} opens, empty table; ${note}` },
      { bench: 'nft', metric: 'open latency p99', value: round(o.p99), unit: 'ms', note: 'list + create element' },
      { bench: 'nft', metric: `open latency median (${BATCH} live)`, value: round(ob.median), unit: 'ms', note: 'open lists the table first (idempotency, slot choice)' },
      { bench: 'nft', metric: 'close latency median', value: round(c.median), unit: 'ms', note: `${SAMPLES} single closes` },
      { bench: 'nft', metric: 'close latency p99', value: round(c.p99), unit: 'ms', note: 'list + delete element' },
      { bench: 'nft', metric: `close ${BATCH} elements`, value: round(batchMs), unit: 'ms', note: 'one close() call' },
      { bench: 'nft', metric: `nft transactions for ${BATCH} closes`, value: batchWrites, unit: 'calls', note: 'one nft -f run = one kernel transaction' },
      { bench: 'nft', metric: 'gate check (every sweep), no grants, median', value: round(ce.median), unit: 'ms', note: `one listing compared with the baseline; p99 ${round(ce.p99)} ms` },
      { bench: 'nft', metric: `gate check (every sweep), ${BATCH} live grants, median`, value: round(cb.median), unit: 'ms', note: `p99 ${round(cb.p99)} ms; ${readsPerCheck} nft listing per check, no write` },
      { bench: 'nft', metric: `gate restore after delete table, ${BATCH} grants put back, median`, value: round(rs.median), unit: 'ms', note: '5 runs; listing + one transaction (table, sets, chains, elements)' },
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
