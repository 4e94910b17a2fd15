// The nftables adapter without a kernel: input fences, error mapping, JSON parsing, exposure scan.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createNftablesAdapter } from '../../src/firewall/nftables.ts';
import { createNftRunner, summarise } from '../../src/firewall/nft-exec.ts';
import { elementRef, keysShape, parseRef, parseTableListing } from '../../src/firewall/nft-table.ts';
import { scanRuleset } from '../../src/firewall/nft-exposure.ts';
import { parseCidr } from '../../src/firewall/nft-values.ts';
import { PortcullisError } from '../../src/errors.ts';
import type { RuleSpec } from '../../src/firewall/port.ts';
import type { GrantId } from '../../src/domain/index.ts';

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

/**
 * A runner that records every call and plays a kernel that holds exactly what the last install
 * script wrote (the baseline), so the adapter's gate check passes without nft.
 */
function recorder() {
  const calls: { args: string[]; stdin: string | undefined }[] = [];
  let installed: unknown[] | undefined;
  const runner = async (args: string[], stdin?: string | (() => string)) => {
    const text = typeof stdin === 'function' ? stdin() : stdin;
    calls.push({ args, stdin: text });
    if (args[0] === '-f' && text?.startsWith('add table')) installed = baselineListing(text);
    if (args[0] === '-j' && installed === undefined) throw new PortcullisError('FIREWALL_ERROR', 'nftables: No such file or directory', { details: { nft: 'missing' } });
    return JSON.stringify({ nftables: [{ metainfo: {} }, { table: { family: 'inet', name: 'portcullis' } }, ...(installed ?? [])] });
  };
  return { calls, runner };
}

/** The JSON `nft -j list table` prints for an install script (the parts the gate check reads). */
function baselineListing(script: string): unknown[] {
  const out: unknown[] = [];
  for (const line of script.split('\n')) {
    let m = /^add set inet \w+ (\w+) \{ type ([^;]+);(?: flags ([^;]+);)?(?: timeout (\d+)s;)?(?: size (\d+);)?( counter;)? \}$/.exec(line);
    if (m) out.push({ set: { name: m[1], type: m[2]!.split(' . '), ...(m[3] ? { flags: m[3].split(',') } : {}), ...(m[4] ? { timeout: Number(m[4]) } : {}), ...(m[5] ? { size: Number(m[5]) } : {}), ...(m[6] ? { stmt: [{ counter: null }] } : {}) } });
    m = /^add element inet \w+ (\w+) \{ (.+) \}$/.exec(line);
    if (m) {
      const set = out.find((x) => (x as { set?: { name: string } }).set?.name === m![1]) as { set: { elem?: unknown[] } };
      set.set.elem = m[2]!.split(', ').map((e) => ({ concat: e.split(' . ').map((v) => (/^\d+$/.test(v) ? Number(v) : v)) }));
    }
    m = /^add chain inet \w+ (\w+)(?: \{ type (\w+) hook (\w+) priority (-?\d+); policy (\w+); \})?$/.exec(line);
    if (m) out.push({ chain: { name: m[1], ...(m[2] ? { type: m[2], hook: m[3], prio: Number(m[4]), policy: m[5] } : {}) } });
    // The blocked chain's statements: the attempt-set update and the overflow counter.
    m = /^add rule inet \w+ (\w+) update @(\w+) \{ (.+) \} drop comment "(.+)"$/.exec(line);
    if (m) {
      const keys = m[3]!.split(' . ').map((k) => { const [a, b] = k.split(' '); return a === 'meta' ? { meta: { key: b } } : { payload: { protocol: a, field: b } }; });
      out.push({ rule: { chain: m[1], comment: m[4], expr: [{ set: { op: 'update', elem: { concat: keys }, set: `@${m[2]}` } }, { drop: null }] } });
      continue;
    }
    m = /^add rule inet \w+ (\w+) counter drop comment "(.+)"$/.exec(line);
    if (m) {
      out.push({ rule: { chain: m[1], comment: m[2], expr: [{ counter: { packets: 0, bytes: 0 } }, { drop: null }] } });
      continue;
    }
    m = /^add rule inet \w+ (\w+) (?:(.+?) @(\w+) )?(accept|drop|jump \w+) comment "(.+)"$/.exec(line);
    if (m) {
      // `ct state a,b` before the lookup (the keep rules) is a match of its own.
      const ct = /^ct state (\S+) (.+)$/.exec(m[2] ?? '');
      if (ct) m[2] = ct[2]!;
      const ctMatch = ct ? [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: ct[1]!.split(',') } }] : [];
      const keys = (m[2] ?? '').split(' . ').filter(Boolean).map((k) => { const [a, b] = k.split(' '); return a === 'meta' ? { meta: { key: b } } : { payload: { protocol: a, field: b } }; });
      const verdict = m[4]!.startsWith('jump') ? { jump: { target: m[4]!.split(' ')[1] } } : { [m[4]!]: null };
      out.push({ rule: { chain: m[1], comment: m[5], expr: [...ctMatch, ...(m[3] ? [{ match: { op: '==', left: keys.length > 1 ? { concat: keys } : keys[0], right: `@${m[3]}` } }] : []), verdict] } });
    }
  }
  return out;
}

const rule = (over: Partial<RuleSpec> = {}): RuleSpec => ({
  grantId: 'g1' as GrantId,
  targetId: 't',
  source: '198.51.100.7/32',
  port: 3389,
  protocol: 'tcp',
  expiresAt: Date.now() + 60_000,
  ...over,
});

describe('nftables adapter input fences', () => {
  for (const [what, over, expected] of [
    ['a grant id with a quote', { grantId: 'g" drop' as GrantId }, 'INVALID_REQUEST'],
    ['a grant id with a newline', { grantId: 'g\nflush ruleset' as GrantId }, 'INVALID_REQUEST'],
    ['a source with host bits', { source: '198.51.100.7/24' }, 'INVALID_REQUEST'],
    ['a source that is a name', { source: 'example.com' }, 'INVALID_REQUEST'],
    ['a source with script in it', { source: '1.2.3.4 } ; flush ruleset ; {' }, 'INVALID_REQUEST'],
    ['an IPv4-mapped IPv6 source', { source: '::ffff:198.51.100.7/128' }, 'INVALID_REQUEST'],
    ['the whole IPv4 internet', { source: '0.0.0.0/0' }, 'SOURCE_TOO_WIDE'],
    ['the whole IPv6 internet', { source: '::/0' }, 'SOURCE_TOO_WIDE'],
    ['a port the target does not guard', { port: 22 }, 'INVALID_PORT'],
    ['a port out of range', { port: 70_000 }, 'INVALID_PORT'],
    ['an expiry in the past', { expiresAt: Date.now() - 1 }, 'INVALID_DURATION'],
  ] as const) {
    it(`refuses ${what} without writing an element`, async () => {
      const { calls, runner } = recorder();
      const fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis' }, { runner });
      await fw.init();
      await assert.rejects(fw.open(rule(over)), code(expected));
      assert.equal(calls.filter((c) => /create element/.test(c.stdin ?? '')).length, 0);
    });
  }

  it('refuses a malformed ref in close() before touching anything', async () => {
    const { calls, runner } = recorder();
    const fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis' }, { runner });
    await assert.rejects(fw.close(['g4_0,198.51.100.7/32,0.0.0.0/0,3389,g1', 'g4_0,1.2.3.4 } flush ruleset,0.0.0.0/0,3389,x']), code('INVALID_REQUEST'));
    assert.equal(calls.length, 0);
  });

  it('refuses a table or netns name that is not an identifier', () => {
    assert.throws(() => createNftablesAdapter({ kind: 'nftables', table: 'x; flush ruleset' }), code('INVALID_REQUEST'));
    assert.throws(() => createNftablesAdapter({ kind: 'nftables', table: 'portcullis', netns: '../etc' }), code('INVALID_REQUEST'));
  });

  it('writes one element per protocol with a millisecond timeout and the grant comment, via create, in one transaction', async () => {
    const { calls, runner } = recorder();
    const expiresAt = Date.now() + 90_000;
    const fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis' }, { runner, now: () => expiresAt - 90_000 });
    await fw.init();
    const ref = await fw.open(rule({ expiresAt, source: '2001:db8:0:0::/64' }));
    // The timing: the kernel's timeout fires by the answer (the fixed clock) + 90,000 ms, for this expiry and these keys.
    const shape = keysShape(['2001:db8::/64 . ::/0 . tcp . 3389', '2001:db8::/64 . ::/0 . udp . 3389']);
    assert.equal(ref, `g6_0,2001:db8::/64,::/0,3389,g1,${expiresAt},${expiresAt},${shape}`);
    const write = calls.at(-1)!;
    assert.deepEqual(write.args, ['-f', '-']);
    assert.equal(
      write.stdin,
      `create element inet portcullis g6_0 { 2001:db8::/64 . ::/0 . tcp . 3389 timeout 90000ms comment "portcullis grant=g1 exp=${expiresAt}" }\n` +
        `create element inet portcullis g6_0 { 2001:db8::/64 . ::/0 . udp . 3389 timeout 90000ms comment "portcullis grant=g1 exp=${expiresAt}" }\n`,
    );
  });

  it('refuses to open, without writing, while its gate is not verified', async () => {
    const { calls, runner } = recorder();
    const fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis' }, { runner });
    await assert.rejects(fw.open(rule()), code('FIREWALL_UNAVAILABLE'));
    assert.equal(calls.length, 0);
  });

  it('a target with destinations admits each destination and protocol, and only those', async () => {
    const { calls, runner } = recorder();
    const expiresAt = Date.now() + 60_000;
    const fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis' }, {
      runner,
      now: () => expiresAt - 60_000,
      targets: [
        { id: 'dc', destinations: ['203.0.113.10', '203.0.113.11', '2001:db8::10'], ports: [3389], protocols: ['tcp'] },
        { id: 'pc', destinations: ['203.0.113.20'], ports: [3389], protocols: ['tcp', 'udp'] },
      ],
    });
    await fw.init();
    const install = calls.find((c) => c.stdin?.startsWith('add table'))!.stdin!;
    assert.match(install, /add element inet portcullis guarded4 \{ 203\.0\.113\.10 \. tcp \. 3389, 203\.0\.113\.11 \. tcp \. 3389, 203\.0\.113\.20 \. tcp \. 3389, 203\.0\.113\.20 \. udp \. 3389 \}/);
    assert.doesNotMatch(install, /add element inet portcullis ports/);
    await fw.open(rule({ targetId: 'dc', expiresAt }));
    assert.deepEqual(calls.at(-1)!.stdin!.trim().split('\n').map((l) => /\{ (.+) timeout/.exec(l)![1]), ['198.51.100.7/32 . 203.0.113.10/32 . tcp . 3389', '198.51.100.7/32 . 203.0.113.11/32 . tcp . 3389']);
    await assert.rejects(fw.open(rule({ targetId: 'other' })), code('INVALID_REQUEST'));
  });
});

describe('nftables close: which path a timed ref takes (controlled clock, recorded runner)', () => {
  it('after a slow restore rewrote a grant, a close past the ref\'s bound lists until the restore\'s latency has passed too', async () => {
    const { calls, runner } = recorder();
    let clock = 1_700_000_000_000;
    let lost = false;
    let slowMs = 0;
    const fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis' }, {
      now: () => clock,
      runner: async (args, stdin) => {
        if (lost && args[0] === '-j') throw new PortcullisError('FIREWALL_ERROR', 'nftables: No such file or directory', { details: { nft: 'missing' } });
        const out = await runner(args, stdin);
        if (args[0] === '-f') {
          clock += slowMs; // the transaction's latency, on the adapter's clock
          lost = false;
        }
        return out;
      },
    });
    await fw.init();
    const a = rule({ expiresAt: clock + 1000 });
    const ref = await fw.open(a);
    assert.equal(parseRef(ref).timing!.bound, a.expiresAt, 'answered at once: the bound is the expiry');
    // The table is lost; the restore puts A back with a timeout computed before a 500 ms transaction.
    lost = true;
    slowMs = 500;
    assert.equal((await fw.ensureGate(async () => [a])).putBack, 1);
    slowMs = 0;
    const closeCalls = async (at: number) => {
      clock = at;
      const before = calls.length;
      await fw.close([ref]);
      return calls.slice(before).map((c) => c.args[0]);
    };
    assert.deepEqual(await closeCalls(a.expiresAt + 100), ['-j'], 'past the ref\'s bound, within the restore\'s latency: a listing');
    assert.deepEqual(await closeCalls(a.expiresAt + 600), [], 'past the restore\'s latency too: nothing to do');
    assert.deepEqual(await closeCalls(a.expiresAt - 10), ['-j'], 'around the expiry: a listing');
  });

  it('a revoke well before expiry deletes every key of the grant in one transaction, with no listing', async () => {
    const { calls, runner } = recorder();
    const clock = 1_700_000_000_000;
    const fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis' }, { runner, now: () => clock });
    await fw.init();
    const ref = await fw.open(rule({ expiresAt: clock + 60_000 }));
    const before = calls.length;
    await fw.close([ref]);
    assert.deepEqual(calls.slice(before).map((c) => c.stdin), [
      'delete element inet portcullis g4_0 { 198.51.100.7/32 . 0.0.0.0/0 . tcp . 3389, 198.51.100.7/32 . 0.0.0.0/0 . udp . 3389 }\n',
    ]);
  });
});

describe('nft process errors', () => {
  it('a missing nft binary is FIREWALL_UNAVAILABLE', async () => {
    const run = createNftRunner({ nftPath: '/nonexistent/nft' });
    await assert.rejects(run(['list', 'ruleset']), code('FIREWALL_UNAVAILABLE'));
  });

  it('nft failing is FIREWALL_ERROR and check() says so without throwing', async () => {
    const run = createNftRunner({ nftPath: '/bin/false' });
    await assert.rejects(run(['list', 'ruleset']), code('FIREWALL_ERROR'));
    const fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis' }, { nftPath: '/bin/false' });
    assert.equal((await fw.check()).ok, false);
  });

  it('summarises nft stderr to its error lines', () => {
    const s = summarise('/dev/stdin:1:20-40: Error: Could not process rule: File exists\ncreate element inet t g4_0 { 1.2.3.4 }\n                   ^^^^^^^^^\n');
    assert.equal(s, '/dev/stdin:1:20-40: Error: Could not process rule: File exists');
  });
});

describe('nft JSON parsing', () => {
  it('reads elements of the grant sets: bare /32, prefixes, ranges, protocol, comment and expiry', () => {
    const now = 1_000_000;
    const doc = {
      nftables: [
        { metainfo: {} },
        { set: { family: 'inet', table: 'portcullis', name: 'g4_0', elem: [
          { elem: { val: { concat: ['198.51.100.7', { prefix: { addr: '0.0.0.0', len: 0 } }, 'tcp', 3389] }, timeout: 60, expires: 59, comment: 'portcullis grant=g1 exp=1059000' } },
          { concat: [{ range: ['10.0.0.0', '10.0.0.255'] }, { prefix: { addr: '0.0.0.0', len: 0 } }, 'udp', 3389] },
          { elem: { val: { concat: [{ range: ['10.0.0.3', '10.0.0.9'] }, '192.0.2.1', 6, { range: [3389, 3390] }] }, expires: 5 } },
          { concat: ['198.51.100.8', { prefix: { addr: '0.0.0.0', len: 0 } }, 3389] },
        ] } },
        { set: { family: 'inet', table: 'portcullis', name: 'ports', elem: [3389] } },
      ],
    };
    const { sets, elements } = parseTableListing(JSON.stringify(doc), now);
    assert.deepEqual([...sets], ['g4_0', 'ports']);
    assert.deepEqual(elements.map((e) => [e.saddr, e.daddr, e.proto, e.dport, e.grantId, e.expiresAt]), [
      ['198.51.100.7/32', '0.0.0.0/0', 'tcp', '3389', 'g1', 1_059_000],
      ['10.0.0.0/24', '0.0.0.0/0', 'udp', '3389', undefined, null],
      ['10.0.0.3-10.0.0.9', '192.0.2.1/32', 'tcp', '3389-3390', undefined, now + 5000],
    ]);
  });

  it('refs round-trip and are rejected when forged', () => {
    assert.deepEqual(parseRef('g6_3,2001:db8::/64,::/0,3389,'), { set: 'g6_3', family: 6, saddr: '2001:db8::/64', daddr: '::/0', dport: '3389', grantId: undefined });
    assert.throws(() => parseRef('g6_3,198.51.100.7/32,::/0,3389,g'), code('INVALID_REQUEST'));
    assert.throws(() => parseRef('ports,198.51.100.7/32,0.0.0.0/0,3389,g'), code('INVALID_REQUEST'));
    assert.throws(() => parseRef('g4_0,198.51.100.07/32,0.0.0.0/0,3389,g'), code('INVALID_REQUEST'));
    // With the timing open adds: round-trips; a partial, malformed or grantless timing is refused.
    const timing = { bound: 1_700_000_000_123, expiresAt: 1_700_000_000_100, shape: '0123456789abcdef' };
    const timed = elementRef({ set: 'g4_1', saddr: '198.51.100.7/32', daddr: '0.0.0.0/0', dport: '3389', grantId: 'g1' }, timing);
    assert.equal(timed, 'g4_1,198.51.100.7/32,0.0.0.0/0,3389,g1,1700000000123,1700000000100,0123456789abcdef');
    assert.deepEqual(parseRef(timed), { set: 'g4_1', family: 4, saddr: '198.51.100.7/32', daddr: '0.0.0.0/0', dport: '3389', grantId: 'g1', timing });
    assert.equal(elementRef({ set: 'g4_1', saddr: '198.51.100.7/32', daddr: '0.0.0.0/0', dport: '3389', grantId: undefined }, timing), 'g4_1,198.51.100.7/32,0.0.0.0/0,3389,', 'an orphan has no timing');
    for (const bad of [
      'g4_1,198.51.100.7/32,0.0.0.0/0,3389,g1,1700000000123',
      'g4_1,198.51.100.7/32,0.0.0.0/0,3389,g1,1700000000123,1700000000100',
      'g4_1,198.51.100.7/32,0.0.0.0/0,3389,g1,17e12,1700000000100,0123456789abcdef',
      'g4_1,198.51.100.7/32,0.0.0.0/0,3389,g1,1700000000123,1700000000100,0123456789ABCDEF',
      'g4_1,198.51.100.7/32,0.0.0.0/0,3389,,1700000000123,1700000000100,0123456789abcdef',
      'g4_1,198.51.100.7/32,0.0.0.0/0,3389,g1,1700000000123,1700000000100,0123456789abcdef,x',
    ]) assert.throws(() => parseRef(bad), code('INVALID_REQUEST'), bad);
  });

  it('canonicalises addresses the way nft prints them', () => {
    assert.deepEqual(parseCidr('2001:DB8:0:0:0:0:0:1'), { family: 6, address: '2001:db8::1', prefix: 128 });
    assert.throws(() => parseCidr('2001:db8::1/64'), code('INVALID_REQUEST'));
  });
});

describe('nft exposure scan (ruleset JSON)', () => {
  it('reports accept rules of other tables that match a managed port, never our own', () => {
    const r = (table: string, handle: number, expr: unknown[], family = 'inet') => ({ rule: { family, table, chain: 'input', handle, expr } });
    const dport = (right: unknown, op = '==') => ({ match: { op, left: { payload: { protocol: 'tcp', field: 'dport' } }, right } });
    const saddr = (right: unknown) => ({ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right } });
    const doc = { nftables: [
      { set: { family: 'inet', table: 'f', name: 'web', elem: [80, 443] } },
      r('portcullis', 1, [dport(3389), { accept: null }]),
      r('f', 2, [dport(3389), { accept: null }]),
      r('f', 3, [saddr({ prefix: { addr: '0.0.0.0', len: 0 } }), dport({ range: [3000, 4000] }), { accept: null }]),
      r('f', 4, [saddr('198.51.100.9'), dport({ set: [22, 3389] }), { accept: null }]),
      r('f', 5, [dport('@web'), { accept: null }]),
      r('f', 6, [dport(22, '!='), { accept: null }]),
      r('f', 7, [dport(3389), { drop: null }]),
      r('f', 8, [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: 'established' } }, { accept: null }]),
    ] };
    const found = scanRuleset(JSON.stringify(doc), { ownTable: 'portcullis', ports: [3389], scope: 's' });
    assert.deepEqual(found.map((e) => [e.ref, e.source, e.why]), [
      ['rule:inet/f/input/handle 2', 'any', 'world'],
      ['rule:inet/f/input/handle 3', '0.0.0.0/0', 'world'],
      ['rule:inet/f/input/handle 4', '198.51.100.9', 'unmanaged'],
      ['rule:inet/f/input/handle 6', 'any', 'world'],
    ]);
  });
});
