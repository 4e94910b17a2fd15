// The nftables adapter against real nft in namespaces the test creates: TCP from a client namespace
// to a listener on 3389 fails before a grant, works during it, and fails after the kernel expires it.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createNftablesAdapter, type NftablesAdapter } from '../../src/firewall/nftables.ts';
import { parseRef } from '../../src/firewall/nft-table.ts';
import type { RuleSpec } from '../../src/firewall/port.ts';
import type { GrantId } from '../../src/domain/index.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { closesAtExpiry, createLab, LAB_ADDR, netnsUnavailable, nftIn, type Lab } from '../helpers/netns.ts';

const unavailable = netnsUnavailable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A ref's first five fields: set, source, destination, port, grant (what list() gives; open adds the timing). */
const name = (ref: string) => ref.split(',').slice(0, 5).join(',');
const spec = (grantId: string, source: string, ms: number, port = 3389): RuleSpec => ({
  grantId: grantId as GrantId,
  targetId: 'lab-gw',
  source,
  port,
  protocol: 'tcp',
  expiresAt: Date.now() + ms,
});

interface JsonElem {
  elem: { val: { concat: unknown[] }; timeout?: number; expires?: number; comment?: string };
}
function elements(lab: Lab, set: string, table = 'portcullis'): JsonElem[] {
  const doc = JSON.parse(nftIn(lab.gw, ['-j', 'list', 'set', 'inet', table, set])) as { nftables: { set?: { elem?: JsonElem[] } }[] };
  return doc.nftables.find((i) => i.set)?.set?.elem ?? [];
}

describe('nftables adapter in network namespaces', { concurrency: false }, () => {
  let lab: Lab | undefined;
  let fw: NftablesAdapter;

  beforeEach(async () => {
    if (unavailable) return;
    lab = await createLab();
    fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis', netns: lab.gw });
  });
  /** Every adapter opens nothing until its gate is verified; these tests start from an installed one. */
  const installed = async () => fw.init();
  afterEach(async () => {
    await lab?.destroy();
    lab = undefined;
  });
  const ready = (t: Parameters<typeof requireOrSkip>[0]) => requireOrSkip(t, unavailable === undefined, unavailable ?? '');

  for (const [family, src, dst] of [
    ['IPv4', `${LAB_ADDR.client4}/32`, LAB_ADDR.gw4],
    ['IPv6', `${LAB_ADDR.client6}/128`, LAB_ADDR.gw6],
  ] as const) {
    it(`${family}: connect fails before the grant, succeeds during it, fails after kernel expiry`, async (t) => {
      if (!ready(t)) return;
      assert.equal(await lab!.connect(dst), true, 'the listener is reachable before any firewall (lab sanity)');
      assert.equal(await lab!.connect(dst, 3389, 700, 'udp'), true, 'UDP 3389 answers before any firewall (lab sanity)');
      await fw.init();
      assert.equal(await lab!.connect(dst), false, 'baseline drops TCP 3389');
      assert.equal(await lab!.connect(dst, 3389, 700, 'udp'), false, 'baseline drops UDP 3389');
      const rule = spec('g-exp-' + family, src, 2500);
      await fw.open(rule);
      assert.equal(await lab!.connect(dst), true, 'open during the grant');
      assert.equal(await lab!.connect(dst, 3389, 700, 'udp'), true, 'UDP admitted too (RDP uses both)');
      // No close() call: the kernel removes the element on its own.
      await closesAtExpiry(lab!, dst, rule.expiresAt);
      assert.deepEqual(await fw.list(), []);
    });
  }

  it('writes one element whose comment names the grant and whose kernel timeout is the remaining time', async (t) => {
    if (!ready(t)) return;
    await installed();
    const rule = spec('g-comment', `${LAB_ADDR.client4}/32`, 60_000);
    const ref = await fw.open(rule);
    const els = elements(lab!, 'g4_0');
    assert.equal(els.length, 2, 'one element per protocol');
    for (const { elem: e } of els) {
      assert.equal(e.comment, `portcullis grant=g-comment exp=${rule.expiresAt}`);
      assert.ok(e.timeout !== undefined && e.timeout >= 58 && e.timeout <= 60, `timeout ${e.timeout}s`);
    }
    assert.deepEqual(els.map((x) => x.elem.val.concat).sort((a, b) => String(a[2]).localeCompare(String(b[2]))), [
      [LAB_ADDR.client4, { prefix: { addr: '0.0.0.0', len: 0 } }, 'tcp', 3389],
      [LAB_ADDR.client4, { prefix: { addr: '0.0.0.0', len: 0 } }, 'udp', 3389],
    ]);
    const listed = await fw.list();
    assert.deepEqual(listed, [{ ref: name(ref), grantIds: ['g-comment'], source: `${LAB_ADDR.client4}/32`, port: 3389, expiresAt: rule.expiresAt }]);
  });

  it('an IPv6 source that nft lists in dotted form (::1.2.3.4) is still found, and closed', async (t) => {
    if (!ready(t)) return;
    await installed();
    const rule = spec('g-dotted', '::102:304/128', 60_000);
    const ref = await fw.open(rule);
    const listed = await fw.list();
    assert.deepEqual(listed.map((r) => [r.ref, r.source, r.grantIds]), [[name(ref), '::102:304/128', ['g-dotted']]]);
    await fw.close([ref]);
    assert.deepEqual(await fw.list(), []);
  });

  it('open is idempotent per grant id: a retry returns the same ref and adds nothing', async (t) => {
    if (!ready(t)) return;
    await installed();
    const rule = spec('g-idem', `${LAB_ADDR.client4}/32`, 60_000);
    const a = await fw.open(rule);
    const b = await fw.open({ ...rule });
    assert.equal(b, name(a), 'the same rule (a retry finds it through a listing: its ref has no timing)');
    assert.equal((await fw.list()).length, 1);
  });

  it('extend replaces the element in one transaction: new timeout and comment, access past the old expiry', async (t) => {
    if (!ready(t)) return;
    await installed();
    const rule = spec('g-ext', `${LAB_ADDR.client4}/32`, 2000);
    const ref = await fw.open(rule);
    const later = Date.now() + 60_000;
    const writes = fw.calls.write;
    const extended = await fw.open({ ...rule, expiresAt: later, extend: true });
    assert.equal(name(extended), name(ref), 'same set, key and grant');
    assert.ok(parseRef(extended).timing!.bound >= later - 1, 'the new ref carries the new kernel expiry');
    assert.equal(fw.calls.write - writes, 1);
    const ext = elements(lab!, 'g4_0');
    assert.equal(ext.length, 2);
    for (const { elem: e } of ext) {
      assert.equal(e.comment, `portcullis grant=g-ext exp=${later}`);
      assert.ok(e.timeout !== undefined && e.timeout >= 58, `timeout ${e.timeout}s`);
    }
    await sleep(rule.expiresAt - Date.now() + 500);
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true, 'still open after the original expiry');
    assert.deepEqual((await fw.list()).map((r) => r.expiresAt), [later]);
  });

  it('two live grants for the same source and port hold separate elements; closing one keeps the other', async (t) => {
    if (!ready(t)) return;
    await installed();
    const a = await fw.open(spec('g-a', `${LAB_ADDR.client4}/32`, 60_000));
    const b = await fw.open(spec('g-b', `${LAB_ADDR.client4}/32`, 60_000));
    assert.notEqual(a, b);
    await fw.close([a]);
    assert.deepEqual((await fw.list()).map((r) => r.grantIds), [['g-b']]);
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true, 'the other grant still admits the source');
    await fw.close([b]);
    assert.equal(await lab!.connect(LAB_ADDR.gw4), false);
  });

  it('close removes many elements in one nft transaction, IPv4 and IPv6 together', async (t) => {
    if (!ready(t)) return;
    await installed();
    const refs = [
      await fw.open(spec('g-1', `${LAB_ADDR.client4}/32`, 60_000)),
      await fw.open(spec('g-2', '192.0.2.7/32', 60_000)),
      await fw.open(spec('g-3', '192.0.2.64/26', 60_000)),
      await fw.open(spec('g-4', `${LAB_ADDR.client6}/128`, 60_000)),
      await fw.open(spec('g-5', '2001:db8::/64', 60_000)),
    ];
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true);
    const writes = fw.calls.write;
    await fw.close(refs);
    assert.equal(fw.calls.write - writes, 1, 'one nft -f run, i.e. one transaction');
    assert.deepEqual(await fw.list(), []);
    assert.equal(await lab!.connect(LAB_ADDR.gw4), false);
    assert.equal(await lab!.connect(LAB_ADDR.gw6), false);
  });

  it('close of elements already gone (kernel-expired or deleted by hand) succeeds and removes the rest', async (t) => {
    if (!ready(t)) return;
    await installed();
    const gone = await fw.open(spec('g-gone', '192.0.2.9/32', 60_000));
    const expired = await fw.open(spec('g-short', '192.0.2.10/32', 1000));
    const live = await fw.open(spec('g-live', `${LAB_ADDR.client4}/32`, 60_000));
    nftIn(lab!.gw, ['delete', 'element', 'inet', 'portcullis', 'g4_0', '{ 192.0.2.9 . 0.0.0.0/0 . tcp . 3389 }']);
    await sleep(1300);
    await fw.close([gone, expired, live]);
    assert.deepEqual(await fw.list(), []);
    await fw.close([gone, expired, live]);
  });

  it('close never removes another grant that now holds the same key', async (t) => {
    if (!ready(t)) return;
    await installed();
    const old = await fw.open(spec('g-old', `${LAB_ADDR.client4}/32`, 60_000));
    await fw.close([old]);
    const fresh = await fw.open(spec('g-new', `${LAB_ADDR.client4}/32`, 60_000));
    assert.equal(old.split(',')[0], fresh.split(',')[0], 'same set and key, different grant');
    await fw.close([old]);
    assert.deepEqual((await fw.list()).map((r) => r.grantIds), [['g-new']]);
  });

  // close() without a listing, on what the ref says about the kernel's timeout (parseRef(ref).timing).
  const timing = (ref: string) => parseRef(ref).timing!;
  const counted = async (fn: () => Promise<unknown>) => {
    const [r, w] = [fw.calls.read, fw.calls.write];
    await fn();
    return { read: fw.calls.read - r, write: fw.calls.write - w };
  };
  /** Waits (real time: the kernel's timeout runs on it) until the kernel has certainly removed the ref's elements. */
  const pastBound = (ref: string) => sleep(Math.max(0, timing(ref).bound + 50 - Date.now()));

  it('a close after the kernel expired the element costs no nft call, and the source stays refused', async (t) => {
    if (!ready(t)) return;
    await installed();
    const ref = await fw.open(spec('g-late', `${LAB_ADDR.client4}/32`, 1000));
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true);
    assert.ok(timing(ref).bound >= timing(ref).expiresAt - 1, 'the bound is no earlier than the expiry');
    await pastBound(ref);
    assert.equal(await lab!.connect(LAB_ADDR.gw4), false, 'the kernel expired it by the bound');
    assert.deepEqual(await counted(() => fw.close([ref])), { read: 0, write: 0 });
    assert.equal(await lab!.connect(LAB_ADDR.gw4), false);
    assert.equal(await lab!.connect(LAB_ADDR.gw4, 3389, 700, 'udp'), false);
    assert.deepEqual(await fw.list(), []);
  });

  it('a revoke before expiry is one delete by key and no listing; TCP and UDP are refused after it', async (t) => {
    if (!ready(t)) return;
    await installed();
    const keep = await fw.open(spec('g-other', '192.0.2.30/32', 60_000));
    const ref = await fw.open(spec('g-revoke', `${LAB_ADDR.client4}/32`, 60_000));
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true);
    assert.equal(await lab!.connect(LAB_ADDR.gw4, 3389, 700, 'udp'), true);
    assert.deepEqual(await counted(() => fw.close([ref])), { read: 0, write: 1 });
    assert.equal(await lab!.connect(LAB_ADDR.gw4), false);
    assert.equal(await lab!.connect(LAB_ADDR.gw4, 3389, 700, 'udp'), false);
    assert.deepEqual((await fw.list()).map((r) => r.grantIds), [['g-other']], 'only the revoked grant\'s elements went');
    // A second close of the same ref (a retried close) lists: another grant may hold the key by now.
    assert.deepEqual(await counted(() => fw.close([ref])), { read: 1, write: 0 });
    await fw.close([keep]);
  });

  it('A expired in the kernel, B took its key in slot 0 with a plain create: close(A) leaves B admitting', async (t) => {
    if (!ready(t)) return;
    await installed();
    const a = await fw.open(spec('g-A', `${LAB_ADDR.client4}/32`, 1000));
    await pastBound(a);
    assert.equal(await lab!.connect(LAB_ADDR.gw4), false, 'an expired element is not matched');
    const opened = await counted(async () => {
      const b = await fw.open(spec('g-B', `${LAB_ADDR.client4}/32`, 60_000));
      assert.equal(b.split(',')[0], 'g4_0', 'same set and key as A');
    });
    assert.deepEqual(opened, { read: 0, write: 1 }, 'the expired element did not block the create (no listing, no second slot)');
    assert.deepEqual(await counted(() => fw.close([a])), { read: 0, write: 0 });
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true, 'B still admits');
    assert.deepEqual((await fw.list()).map((r) => r.grantIds), [['g-B']]);
  });

  it('a ref without timing (stored before it existed, or from list()) closes through a listing', async (t) => {
    if (!ready(t)) return;
    await installed();
    const ref = await fw.open(spec('g-old-ref', `${LAB_ADDR.client4}/32`, 60_000));
    const old = name(ref);
    assert.equal(old, (await fw.list())[0]!.ref, 'the first five fields are the ref list() gives');
    assert.deepEqual(await counted(() => fw.close([old])), { read: 1, write: 1 });
    assert.equal(await lab!.connect(LAB_ADDR.gw4), false);
    assert.deepEqual(await fw.list(), []);
  });

  it('a revoke after the target\'s protocols changed lists rather than delete the keys the configuration yields now', async (t) => {
    if (!ready(t)) return;
    await installed();
    const ref = await fw.open(spec('g-cfg', `${LAB_ADDR.client4}/32`, 60_000));
    const tcpOnly = createNftablesAdapter({ kind: 'nftables', table: 'portcullis', netns: lab!.gw }, { protocols: ['tcp'] });
    try {
      const [r, w] = [tcpOnly.calls.read, tcpOnly.calls.write];
      await tcpOnly.close([ref]);
      assert.deepEqual([tcpOnly.calls.read - r, tcpOnly.calls.write - w], [1, 1]);
    } finally {
      await tcpOnly.shutdown();
    }
    assert.equal(await lab!.connect(LAB_ADDR.gw4, 3389, 700, 'udp'), false, 'the UDP element went too');
    assert.deepEqual(await fw.list(), []);
  });

  it('reconcile: an orphan element (unknown grant, or no comment) is listed and close removes it', async (t) => {
    if (!ready(t)) return;
    await fw.init();
    const exp = Date.now() + 60_000;
    nftIn(lab!.gw, ['-f', '-'], `add element inet portcullis g4_0 { ${LAB_ADDR.client4} . 0.0.0.0/0 . tcp . 3389 timeout 60s comment "portcullis grant=orphan-1 exp=${exp}" }\n` +
      'add element inet portcullis g6_2 { 2001:db8::5 . ::/0 . tcp . 3389 timeout 60s }\n');
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true);
    const listed = await fw.list();
    const byGrant = listed.find((r) => r.grantIds[0] === 'orphan-1');
    const bare = listed.find((r) => r.grantIds.length === 0);
    assert.deepEqual(byGrant && { source: byGrant.source, port: byGrant.port, expiresAt: byGrant.expiresAt }, { source: `${LAB_ADDR.client4}/32`, port: 3389, expiresAt: exp });
    assert.equal(bare?.source, '2001:db8::5/128');
    await fw.close(listed.map((r) => r.ref));
    assert.deepEqual(await fw.list(), []);
    assert.equal(await lab!.connect(LAB_ADDR.gw4), false);
  });

  it('reconcile: an element deleted by hand is not in list()', async (t) => {
    if (!ready(t)) return;
    await installed();
    await fw.open(spec('g-keep', '192.0.2.20/32', 60_000));
    const ref = await fw.open(spec('g-vanish', `${LAB_ADDR.client4}/32`, 60_000));
    nftIn(lab!.gw, ['delete', 'element', 'inet', 'portcullis', ref.split(',')[0]!, `{ ${LAB_ADDR.client4} . 0.0.0.0/0 . tcp . 3389, ${LAB_ADDR.client4} . 0.0.0.0/0 . udp . 3389 }`]);
    assert.deepEqual((await fw.list()).map((r) => r.grantIds[0]), ['g-keep']);
  });

  it('never touches other tables: a foreign table is byte-identical after every operation', async (t) => {
    if (!ready(t)) return;
    nftIn(lab!.gw, ['-f', '-'], [
      'table inet othertable {',
      '  set admins { type ipv4_addr; elements = { 198.51.100.1, 198.51.100.2 } }',
      '  chain input { type filter hook input priority 0; policy accept;',
      '    tcp dport 3389 accept',
      '    ip saddr @admins tcp dport { 22, 3389 } accept comment "admins"',
      '    tcp dport 8080 accept',
      '  }',
      '}',
      'table ip legacy {',
      '  chain forward { type filter hook forward priority 0; policy accept;',
      '    ip saddr 203.0.113.0/24 tcp dport 3000-4000 accept',
      '  }',
      '}',
      '',
    ].join('\n'));
    const snap = () => nftIn(lab!.gw, ['list', 'table', 'inet', 'othertable']) + nftIn(lab!.gw, ['list', 'table', 'ip', 'legacy']);
    const before = snap();
    await fw.init();
    // A foreign accept does not override our drop: in nftables only drop is final across tables.
    assert.equal(await lab!.connect(LAB_ADDR.gw4), false);
    const ref = await fw.open(spec('g-x', `${LAB_ADDR.client4}/32`, 60_000));
    await fw.list();
    const found = await fw.scanExposure([3389]);
    assert.deepEqual(
      found.map((e) => [e.ref.replace(/handle \d+/, 'handle N'), e.source, e.why]).sort(),
      [
        ['rule:inet/othertable/input/handle N', 'any', 'world'],
        ['rule:inet/othertable/input/handle N', 'set @admins', 'unmanaged'],
        ['rule:ip/legacy/forward/handle N', '203.0.113.0/24', 'unmanaged'],
      ],
    );
    await assert.rejects(fw.fixExposure(found), (e: { code?: string }) => e.code === 'FORBIDDEN');
    await fw.close([ref]);
    assert.equal(snap(), before);
  });

  it('exposure scan reports a world-wide element in our own table, and fixExposure removes it', async (t) => {
    if (!ready(t)) return;
    await fw.init();
    nftIn(lab!.gw, ['-f', '-'], 'add element inet portcullis g4_1 { 0.0.0.0/0 . 0.0.0.0/0 . tcp . 3389 timeout 60s comment "hand-made" }\n');
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true);
    const found = await fw.scanExposure([3389]);
    assert.deepEqual(found.map((e) => [e.source, e.why]), [['0.0.0.0/0', 'world']]);
    await fw.fixExposure(found);
    assert.deepEqual(await fw.scanExposure([3389]), []);
    assert.equal(await lab!.connect(LAB_ADDR.gw4), false);
  });

  it('check() reports whether the gate is in place, live, naming what is missing', async (t) => {
    if (!ready(t)) return;
    assert.equal((await fw.check()).ok, false);
    await fw.init();
    const h = await fw.check();
    assert.equal(h.ok, true, h.detail);
    nftIn(lab!.gw, ['delete', 'table', 'inet', 'portcullis']);
    assert.match((await fw.check()).detail, /table inet portcullis missing/);
  });

  it('opens nothing before its gate is verified, nor after the table vanished; ensureGate restores it with the live grants', async (t) => {
    if (!ready(t)) return;
    await assert.rejects(fw.open(spec('g-early', `${LAB_ADDR.client4}/32`, 60_000)), (e: { code?: string }) => e.code === 'FIREWALL_UNAVAILABLE');
    await fw.init();
    const live = spec('g-live', `${LAB_ADDR.client4}/32`, 60_000);
    await fw.open(live);
    nftIn(lab!.gw, ['delete', 'table', 'inet', 'portcullis']);
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true, 'no table, no gate (what the sweep must repair)');
    await assert.rejects(fw.open(spec('g-rebuild', '192.0.2.30/32', 60_000)), (e: { code?: string }) => e.code === 'FIREWALL_UNAVAILABLE');
    const report = await fw.ensureGate(async () => [live]);
    assert.deepEqual(report, { restored: true, missing: ['table inet portcullis'], putBack: 1 });
    assert.deepEqual((await fw.list()).map((r) => [r.grantIds, r.expiresAt]), [[['g-live'], live.expiresAt]]);
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true, 'the live grant admits again');
    await fw.open(spec('g-after', '192.0.2.30/32', 60_000));
    assert.deepEqual(await fw.ensureGate(async () => [live]), { restored: false, missing: [], putBack: 0 });
  });

  it('an accept slipped into the gate chain, a changed hook or a retyped set is found and undone; an intact table is left alone', async (t) => {
    if (!ready(t)) return;
    const odd = createNftablesAdapter({ kind: 'nftables', table: 'portcullis', netns: lab!.gw }, {
      targets: [{ id: 'lab', destinations: [LAB_ADDR.gw4, LAB_ADDR.gw6, '::102:304'], ports: [3389] }],
    });
    await odd.init();
    assert.deepEqual(await odd.ensureGate(async () => []), { restored: false, missing: [], putBack: 0 }, 'nft\'s own spelling of an address is not a difference');
    const live = { ...spec('g-keep', `${LAB_ADDR.client4}/32`, 60_000), targetId: 'lab' };
    await odd.open(live);
    const stranger = () => lab!.probe(LAB_ADDR.gw4, { from: LAB_ADDR.stranger4 });
    for (const [what, script, part] of [
      ['an accept rule', 'insert rule inet portcullis gate tcp dport 3389 accept\n', 'chain gate rules'],
      ['a hook moved', 'delete chain inet portcullis input\nadd chain inet portcullis input { type filter hook input priority 100; policy accept; }\n', 'chain input'],
    ] as const) {
      nftIn(lab!.gw, ['-f', '-'], script);
      const writes = odd.calls.write;
      const r = await odd.ensureGate(async () => [live]);
      assert.equal(r.restored, true, what);
      assert.ok(r.missing.some((m) => m.startsWith(part)), `${what}: ${r.missing.join(', ')}`);
      assert.equal(odd.calls.write - writes, 1, `${what}: one transaction`);
      assert.equal(await stranger(), false, `${what}: closed again`);
      assert.equal(await lab!.connect(LAB_ADDR.gw4), true, `${what}: the grant still admits`);
    }
    nftIn(lab!.gw, ['-f', '-'], 'flush chain inet portcullis gate\ndelete set inet portcullis g4_3\nadd set inet portcullis g4_3 { type ipv4_addr . inet_service; }\n');
    const r = await odd.ensureGate(async () => [live]);
    assert.ok(r.missing.includes('set g4_3 definition') && r.missing.includes('chain gate rules'), r.missing.join(', '));
    assert.deepEqual((await odd.list()).map((x) => x.grantIds), [['g-keep']]);
    assert.equal(await stranger(), false);
  });

  it('with a destination, guards only that address and refuses a source of the other family', async (t) => {
    if (!ready(t)) return;
    const d = createNftablesAdapter({ kind: 'nftables', table: 'portcullis', netns: lab!.gw }, { destinations: [LAB_ADDR.gw4] });
    await d.init();
    assert.equal(await lab!.connect(LAB_ADDR.gw4), false);
    assert.equal(await lab!.connect(LAB_ADDR.gw6), true, 'the IPv6 address is not the guarded destination');
    await assert.rejects(d.open(spec('g-v6', `${LAB_ADDR.client6}/128`, 60_000)), (e: { code?: string }) => e.code === 'INVALID_SOURCE_IP');
    await d.open(spec('g-v4', `${LAB_ADDR.client4}/32`, 60_000));
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true);
  });

  it('one table guards several targets by destination: a grant element names its own target\'s address', async (t) => {
    if (!ready(t)) return;
    const both = createNftablesAdapter({ kind: 'nftables', table: 'portcullis', netns: lab!.gw }, {
      targets: [
        { id: 'a', destinations: [LAB_ADDR.gw4], ports: [3389], protocols: ['tcp'] },
        { id: 'b', destinations: ['192.0.2.50', '2001:db8::50'], ports: [3389], protocols: ['tcp'] },
      ],
    });
    await both.init();
    await both.open({ ...spec('g-dest-a', `${LAB_ADDR.client4}/32`, 60_000), targetId: 'a' });
    await both.open({ ...spec('g-dest-b', `${LAB_ADDR.client4}/32`, 60_000), targetId: 'b' });
    const daddrs = (set: string) => elements(lab!, set).map((e) => [e.elem.comment?.split(' ')[1], e.elem.val.concat[1]]).sort();
    assert.deepEqual(daddrs('g4_0'), [['grant=g-dest-a', LAB_ADDR.gw4], ['grant=g-dest-b', '192.0.2.50']]);
    await assert.rejects(both.open({ ...spec('g-c', `${LAB_ADDR.client4}/32`, 60_000), targetId: 'c' }), (e: { code?: string }) => e.code === 'INVALID_REQUEST');
    assert.throws(() => createNftablesAdapter({ kind: 'nftables', table: 'portcullis' }, { targets: [{ id: 'a', ports: [3389] }, { id: 'b', destinations: ['192.0.2.1'], ports: [3389] }] }), (e: { code?: string }) => e.code === 'CONFIG_INVALID');
  });

  it('a missing namespace is FIREWALL_UNAVAILABLE, not an empty table', async (t) => {
    if (!ready(t)) return;
    const ghost = createNftablesAdapter({ kind: 'nftables', table: 'portcullis', netns: 'pcnft-does-not-exist' });
    await assert.rejects(ghost.list(), (e: { code?: string }) => e.code === 'FIREWALL_UNAVAILABLE');
    assert.equal((await ghost.check()).ok, false);
  });

  it('kernel expiry holds when the process that opened the grant is SIGKILLed', async (t) => {
    if (!ready(t)) return;
    const adapterUrl = new URL('../../src/firewall/nftables.ts', import.meta.url).href;
    // The child starts (tsx, imports, init) at its own pace and says so; only then is the expiry set and sent,
    // so a slow start under load cannot eat the window in which the rule must outlive its opener.
    const code = `
      const { createNftablesAdapter } = await import(${JSON.stringify(adapterUrl)});
      const { createInterface } = await import('node:readline');
      const fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis', netns: ${JSON.stringify(lab!.gw)} });
      await fw.init();
      const lines = createInterface({ input: process.stdin });
      console.log('ready');
      for await (const line of lines) {
        const ref = await fw.open({ grantId: 'g-killed', targetId: 'lab-gw', source: '${LAB_ADDR.client4}/32', port: 3389, protocol: 'tcp', expiresAt: Number(line) });
        console.log(ref);
      }
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout });
    const next = () =>
      new Promise<string>((resolve, reject) => {
        lines.once('line', (l) => resolve(l.trim()));
        child.once('exit', (c) => reject(new Error(`opener exited early (${c})`)));
      });
    assert.equal(await next(), 'ready');
    const expiresAt = Date.now() + 3000;
    const answer = next();
    child.stdin.write(`${expiresAt}\n`);
    const ref = await answer;
    assert.match(name(ref), /^g4_0,.*,g-killed$/);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.equal(await lab!.connect(LAB_ADDR.gw4), true, 'open while its opener is dead');
    await closesAtExpiry(lab!, LAB_ADDR.gw4, expiresAt);
    assert.deepEqual(await fw.list(), [], 'the kernel removed the element');
  });
});
