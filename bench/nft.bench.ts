// nftables adapter latency in a throwaway network namespace: open and close with 0, 1,000 and 100,000
// live elements in the set the opens go to (close three ways: a revoke before expiry, a close after the
// kernel expired the element, and through a listing as refs without timing do), closing 1,000 elements in
// one transaction, and the gate check every sweep runs (verify; restore after a flush). Needs root and nft;
// otherwise it says so and reports nothing.
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { createNftablesAdapter } from '../src/firewall/nftables.ts';
import type { GrantId } from '../src/domain/index.ts';
import { stats, type BenchRow } from './stats.ts';

const SAMPLES = 100;
const BATCH = 1000;
/** Live elements in g4_0 while open and close are timed; a close through a listing lists them all, so fewer samples at 100k. */
const LEVELS = [
  { live: 0, listed: 20 },
  { live: 1_000, listed: 20 },
  { live: 100_000, listed: 10 },
];
/** Grants closed after expiry live this long (their ref's bound passes a few ms later). */
const SHORT_MS = 1000;

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
    const rest = await fw.list();
    if (rest.length !== 0) throw new Error(`batch close left ${rest.length} elements behind, e.g. ${JSON.stringify(rest[0])}`);

    // Open and close one at a time with `live` elements of other grants in the set the opens go to
    // (filled by one `nft -f` run per level, not timed). Sources of the timed opens are outside the fill's.
    const rows: BenchRow[] = [];
    let filled = 0;
    let n = 0;
    const note = `netns, nft ${nftVersion()}, one long-lived nft -i`;
    for (const level of LEVELS) {
      const t0 = Date.now();
      fill(ns, filled, level.live, exp);
      const fillMs = Date.now() - t0;
      filled = level.live;
      const load = loadavg().map((x) => x.toFixed(2)).join(' ');
      const opened: string[] = [];
      const opens: number[] = [];
      const reads0 = fw.calls.read;
      const source = () => `172.${16 + ((n >> 16) & 15)}.${(n >> 8) & 255}.${n & 255}/32`;
      for (let i = 0; i < SAMPLES + level.listed; i++) {
        const s = { ...spec(0), grantId: `o-${n}` as GrantId, source: source() };
        n++;
        opens.push(await time(async () => opened.push(await fw.open(s))));
      }
      const readsPerOpen = (fw.calls.read - reads0) / opens.length;
      // A revoke before expiry: the ref as open returned it.
      const revokes: number[] = [];
      const calls0 = { ...fw.calls };
      for (const r of opened.slice(0, SAMPLES)) revokes.push(await time(() => fw.close([r])));
      const revokeCalls = `${(fw.calls.read - calls0.read) / SAMPLES} listings, ${(fw.calls.write - calls0.write) / SAMPLES} transactions per close`;
      // The same close through a listing: the refs cut to their first five fields (stored before the timing existed, or from list()).
      const listedCloses: number[] = [];
      for (const r of opened.slice(SAMPLES)) listedCloses.push(await time(() => fw.close([r.split(',').slice(0, 5).join(',')])));
      // A close after the kernel expired the element (what the reaper does at expiry): grants opened for SHORT_MS, closed once past their bound.
      const short: string[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        short.push(await fw.open({ ...spec(0), grantId: `e-${n}` as GrantId, source: source(), expiresAt: Date.now() + SHORT_MS }));
        n++;
      }
      const lastBound = Math.max(...short.map((r) => Number(r.split(',')[5])));
      await new Promise((r) => setTimeout(r, Math.max(0, lastBound + 50 - Date.now())));
      const expired: number[] = [];
      const calls1 = { ...fw.calls };
      for (const r of short) expired.push(await time(() => fw.close([r])));
      const expiredCalls = (fw.calls.read - calls1.read + fw.calls.write - calls1.write) / SAMPLES;
      const o = stats(opens);
      const c = stats(revokes);
      const e = stats(expired);
      const l = stats(listedCloses);
      const at = `${level.live.toLocaleString('en')} live`;
      rows.push(
        { bench: 'nft', metric: `open latency median (${at})`, value: round(o.median), unit: 'ms', note: `${opens.length} opens; one create element, ${readsPerOpen} listings per open; ${note}; load ${load}${level.live ? `; fill ${fillMs} ms` : ''}` },
        { bench: 'nft', metric: `open latency p99 (${at})`, value: round(o.p99), unit: 'ms', note: `max ${round(o.max)} ms` },
        { bench: 'nft', metric: `close latency median, revoke before expiry (${at})`, value: round(c.median), unit: 'ms', note: `${SAMPLES} single closes; ${revokeCalls}` },
        { bench: 'nft', metric: `close latency p99, revoke before expiry (${at})`, value: round(c.p99), unit: 'ms', note: `max ${round(c.max)} ms` },
        { bench: 'nft', metric: `close latency median, after kernel expiry (${at})`, value: round(e.median), unit: 'ms', note: `${SAMPLES} single closes; ${expiredCalls} nft calls per close` },
        { bench: 'nft', metric: `close latency p99, after kernel expiry (${at})`, value: round(e.p99), unit: 'ms', note: `max ${round(e.max)} ms` },
        { bench: 'nft', metric: `close latency median, through a listing (${at})`, value: round(l.median), unit: 'ms', note: `${level.listed} single closes of refs without timing; listing + delete element` },
        { bench: 'nft', metric: `close latency p99, through a listing (${at})`, value: round(l.p99), unit: 'ms', note: `max ${round(l.max)} ms` },
      );
    }
    const left = (await fw.list()).length;
    if (left !== filled) throw new Error(`expected only the ${filled} fill elements left, listed ${left}`);
    await fw.shutdown();

    const ce = stats(checkEmpty);
    const cb = stats(checkBusy);
    const rs = stats(restores);
    return [
      ...rows,
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

/** Adds elements `from`..`to` of other grants to g4_0 in one `nft -f` run, 1,000 to a line. */
function fill(ns: string, from: number, to: number, exp: number): void {
  const lines: string[] = [];
  for (let i = from; i < to; i += 1000) {
    const keys: string[] = [];
    for (let j = i; j < Math.min(to, i + 1000); j++) keys.push(`10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255} . 0.0.0.0/0 . tcp . 3389 timeout 3600s comment "portcullis grant=f-${j} exp=${exp}"`);
    lines.push(`add element inet portcullis g4_0 { ${keys.join(', ')} }`);
  }
  if (lines.length === 0) return;
  const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: lines.join('\n') + '\n', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`bench fill failed: ${r.stderr.toString().slice(0, 300)}`);
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function nftVersion(): string {
  return /v[\d.]+/.exec(spawnSync('nft', ['--version']).stdout.toString())?.[0] ?? '?';
}
