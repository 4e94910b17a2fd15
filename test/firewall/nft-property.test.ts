// Property: whatever spec the nftables adapter accepts, the element nft then holds admits no more
// than the spec's source and only the spec's port. Checked against what nft itself lists.
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createNftablesAdapter, type NftablesAdapter } from '../../src/firewall/nftables.ts';
import { cidrRange, parseCidr, toBigInt } from '../../src/firewall/nft-values.ts';
import type { RuleSpec } from '../../src/firewall/port.ts';
import type { GrantId } from '../../src/domain/index.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { createLab, netnsUnavailable, nftIn, type Lab } from '../helpers/netns.ts';

const GUARDED = [3389, 8443];

/** Host bits cleared four times in five: the rest must be refused. */
const mostlyClean = fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 });

/** Sources as a caller might send them: sometimes with host bits, odd spellings, or whole-internet prefixes. */
const v4 = fc.tuple(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 }), mostlyClean)
  .map(([o, len, clean]) => {
    const n = o.reduce((a, b) => a * 256 + b, 0);
    const masked = clean ? (len === 0 ? 0 : Math.floor(n / 2 ** (32 - len)) * 2 ** (32 - len)) : n;
    const addr = [24, 16, 8, 0].map((s) => Math.floor(masked / 2 ** s) % 256).join('.');
    return `${addr}/${len}`;
  });
const v6 = fc.tuple(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 128 }), mostlyClean)
  .map(([g, len, clean]) => {
    let n = g.reduce((a, b) => (a << 16n) | BigInt(b), 0n);
    if (clean) n = len === 0 ? 0n : (n >> BigInt(128 - len)) << BigInt(128 - len);
    const groups = [...Array(8).keys()].map((i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
    return `${groups.join(':')}/${len}`;
  });
const specArb = fc.record({
  source: fc.oneof(v4, v6, fc.constantFrom('198.51.100.7', '2001:db8::1', '0.0.0.0/0', '::/0', '10.0.0.1/33')),
  port: fc.oneof({ arbitrary: fc.constantFrom(...GUARDED), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 70_000 }), weight: 1 }),
  grantId: fc.oneof({ arbitrary: fc.stringMatching(/^[a-z][A-Za-z0-9._:-]{0,20}$/), weight: 4 }, { arbitrary: fc.string({ maxLength: 12 }), weight: 1 }),
});

interface Listed {
  set: string;
  saddr: [bigint, bigint];
  dport: unknown;
  comment: string | undefined;
}

/** Reads the grant sets with the test's own parser, independent of the adapter's. */
function listElements(lab: Lab): Listed[] {
  const doc = JSON.parse(nftIn(lab.gw, ['-j', 'list', 'table', 'inet', 'portcullis'])) as { nftables: { set?: { name: string; elem?: unknown[] } }[] };
  const out: Listed[] = [];
  for (const s of doc.nftables.flatMap((i) => (i.set && /^g[46]_/.test(i.set.name) ? [i.set] : []))) {
    const fam = s.name[1] === '4' ? 4 : 6;
    for (const raw of s.elem ?? []) {
      const e = (raw as { elem?: { val: { concat: unknown[] }; comment?: string } }).elem ?? { val: raw as { concat: unknown[] } };
      const [sa, , , dp] = e.val.concat;
      let range: [bigint, bigint];
      if (typeof sa === 'string') range = [toBigInt(sa, fam), toBigInt(sa, fam)];
      else if ((sa as { prefix?: unknown }).prefix) {
        const p = (sa as { prefix: { addr: string; len: number } }).prefix;
        range = cidrRange({ family: fam, address: p.addr, prefix: p.len });
      } else {
        const [a, b] = (sa as { range: [string, string] }).range;
        range = [toBigInt(a, fam), toBigInt(b, fam)];
      }
      out.push({ set: s.name, saddr: range, dport: dp, comment: e.comment });
    }
  }
  return out;
}

describe('nftables adapter: never wider than the spec, never another port (property)', { concurrency: false }, () => {
  const unavailable = netnsUnavailable();
  let lab: Lab | undefined;
  let fw: NftablesAdapter;
  before(async () => {
    if (unavailable) return;
    lab = await createLab();
    fw = createNftablesAdapter({ kind: 'nftables', table: 'portcullis', netns: lab.gw }, { ports: GUARDED });
    await fw.init();
  });
  after(async () => lab?.destroy());

  it('every accepted spec yields one element per protocol: same source range, same port, right family', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    let accepted = 0;
    let refused = 0;
    let seq = 0;
    await fc.assert(
      fc.asyncProperty(specArb, async (s) => {
        // Each run starts from empty grant sets, so a failure shrinks to its own cause.
        nftIn(lab!.gw, ['-f', '-'], ['4_0', '4_1', '4_2', '4_3', '6_0', '6_1', '6_2', '6_3'].map((x) => `flush set inet portcullis g${x}`).join('\n') + '\n');
        const grantId = `${s.grantId}-${seq++}`;
        const spec: RuleSpec = { grantId: grantId as GrantId, targetId: 't', source: s.source, port: s.port, protocol: 'tcp', expiresAt: Date.now() + 60_000 };
        let ref: string;
        try {
          ref = await fw.open(spec);
        } catch (e) {
          refused++;
          assert.ok(['INVALID_REQUEST', 'INVALID_PORT', 'SOURCE_TOO_WIDE'].includes((e as { code?: string }).code ?? ''), String(e));
          assert.deepEqual(listElements(lab!), [], 'a refused spec leaves nothing behind');
          return;
        }
        accepted++;
        try {
          const want = parseCidr(s.source);
          const [lo, hi] = cidrRange(want);
          const els = listElements(lab!);
          assert.equal(els.length, 2, 'one element per protocol (tcp, udp)');
          assert.deepEqual(els[0]!.saddr, els[1]!.saddr);
          const el = els[0]!;
          assert.ok(el.saddr[0] >= lo && el.saddr[1] <= hi, `element ${el.saddr} is wider than ${s.source}`);
          assert.deepEqual(el.saddr, [lo, hi], 'and it is not narrower either (the grant would not work)');
          assert.equal(el.dport, s.port);
          assert.ok(GUARDED.includes(s.port));
          assert.equal(el.set[1], String(want.family));
          assert.equal(el.comment, `portcullis grant=${grantId} exp=${spec.expiresAt}`);
          assert.ok(want.prefix > 0, '/0 must never be accepted');
        } finally {
          await fw.close([ref]);
        }
      }),
      { numRuns: 40, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) },
    );
    t.diagnostic(`accepted ${accepted}, refused ${refused}`);
    assert.ok(accepted > 5 && refused > 5, 'the generator exercises both sides');
  });
});
