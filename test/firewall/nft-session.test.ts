// The long-lived `nft -i` session against real nft in a namespace the test creates: outcomes come back
// in order, a line is one transaction, the process is replaced when worn out, and nothing writes a history.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { NftSession, sessionOutcome } from '../../src/firewall/nft-session.ts';
import { nftFailure } from '../../src/firewall/nft-exec.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { labId, netnsUnavailable, nftIn, removeLeftoverNamespaces } from '../helpers/netns.ts';

const unavailable = netnsUnavailable();
const SETUP = 'add table inet t\nadd set inet t s { type ipv4_addr . inet_service; flags interval,timeout; }\n';
const elems = (ns: string) => ((JSON.parse(nftIn(ns, ['-j', 'list', 'set', 'inet', 't', 's'])).nftables as { set?: { elem?: unknown[] } }[]).find((i) => i.set)?.set?.elem ?? []).length;
const historyStamp = () => {
  try {
    const s = statSync(`${homedir()}/.nft.history`);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return 'absent';
  }
};

describe('nft session', { concurrency: false }, () => {
  let ns = '';
  const ready = (t: Parameters<typeof requireOrSkip>[0]) => requireOrSkip(t, unavailable === undefined, unavailable ?? '');
  before(() => {
    if (unavailable) return;
    removeLeftoverNamespaces();
    ns = `${labId()}-s`;
    assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
    nftIn(ns, ['-f', '-'], SETUP);
  });
  after(() => {
    if (ns) spawnSync('ip', ['netns', 'del', ns]);
  });

  it('answers each command in order: done, File exists, No such file; a multi-line script is one transaction', async (t) => {
    if (!ready(t)) return;
    const s = new NftSession({ netns: ns });
    try {
      await s.run('create element inet t s { 10.0.0.1 . 80 timeout 60s }');
      const results = await Promise.allSettled([
        s.run('create element inet t s { 10.0.0.1 . 80 timeout 60s }'),
        s.run('add element inet nope s { 10.0.0.1 . 80 }'),
        s.run('create element inet t s { 10.0.0.2 . 80 timeout 60s }'),
        // One transaction: the second line fails, so the first is not committed either.
        s.run('create element inet t s { 10.0.0.3 . 80 timeout 60s }\ncreate element inet t s { 10.0.0.1 . 80 timeout 60s }\n'),
      ]);
      assert.equal(results[0].status, 'rejected');
      assert.equal(nftFailure((results[0] as PromiseRejectedResult).reason), 'exists');
      assert.equal(nftFailure((results[1] as PromiseRejectedResult).reason), 'missing');
      assert.equal(results[2].status, 'fulfilled');
      assert.equal(nftFailure((results[3] as PromiseRejectedResult).reason), 'exists');
      assert.equal(elems(ns), 2, '10.0.0.1 and 10.0.0.2; 10.0.0.3 was rolled back with its batch');
      // Hundreds of pipelined commands keep their order.
      const many = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => s.run(`create element inet t s { 10.1.${i >> 8}.${i & 255} . ${i % 2 ? 80 : 81} timeout 60s }`)));
      assert.ok(many.every((r) => r.status === 'fulfilled'));
      const again = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => s.run(`create element inet t s { 10.1.${i >> 8}.${i & 255} . ${i % 2 ? 80 : 81} timeout 60s }`)));
      assert.ok(again.every((r) => r.status === 'rejected' && nftFailure(r.reason) === 'exists'));
    } finally {
      await s.close();
      nftIn(ns, ['flush', 'set', 'inet', 't', 's']);
    }
  });

  it('runs with HOME pointing nowhere and writes no ~/.nft.history; a worn-out process is replaced', async (t) => {
    if (!ready(t)) return;
    const before = historyStamp();
    const s = new NftSession({ netns: ns, maxCommands: 3 });
    try {
      await s.run('add element inet t s { 10.2.0.1 . 80 timeout 60s }');
      const first = s.pid!;
      assert.match(readFileSync(`/proc/${first}/environ`, 'utf8'), /(^|\0)HOME=\/nonexistent\0/);
      await s.run('add element inet t s { 10.2.0.2 . 80 timeout 60s }');
      await s.run('add element inet t s { 10.2.0.3 . 80 timeout 60s }');
      assert.equal(s.pid, first);
      await s.run('add element inet t s { 10.2.0.4 . 80 timeout 60s }');
      assert.notEqual(s.pid, first, 'replaced after maxCommands');
      assert.equal(elems(ns), 4);
    } finally {
      await s.close();
      nftIn(ns, ['flush', 'set', 'inet', 't', 's']);
    }
    assert.equal(historyStamp(), before, 'no history written on exit');
  });

  it('a namespace that does not exist fails plainly, with nothing run', async (t) => {
    if (!ready(t)) return;
    const s = new NftSession({ netns: `${ns}-missing` });
    const e = await s.run('list tables').then(() => undefined, (x: unknown) => x);
    assert.equal((e as { code?: string }).code, 'FIREWALL_UNAVAILABLE');
    assert.equal(sessionOutcome(e), 'not-run');
    assert.match((e as Error).message, /does not exist/);
  });
});
