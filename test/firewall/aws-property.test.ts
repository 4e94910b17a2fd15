// Property: whatever rule spec the AWS adapter accepts, the rule EC2 records is never wider than its source nor on another port.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import fc from 'fast-check';
import type { GrantId } from '../../src/domain/index.ts';
import { PortcullisError } from '../../src/errors.ts';
import { parseRuleRef } from '../../src/firewall/aws-sg.ts';
import type { RuleSpec } from '../../src/firewall/port.ts';
import { parseCidr, within } from '../ec2-endpoint/cidr.ts';
import { GROUP, harness, type Harness } from '../ec2-endpoint/harness.ts';

let h: Harness;
before(async () => {
  h = await harness();
});
after(async () => {
  await h.close();
});

const v4 = fc.record({ addr: fc.integer({ min: 0, max: 2 ** 32 - 1 }), prefix: fc.integer({ min: 0, max: 32 }), masked: fc.boolean() }).map(({ addr, prefix, masked }) => {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const n = masked ? (addr & mask) >>> 0 : addr;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${prefix}`;
});

const v6 = fc.record({ addr: fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), prefix: fc.integer({ min: 0, max: 128 }), masked: fc.boolean() }).map(({ addr, prefix, masked }) => {
  const host = (1n << BigInt(128 - prefix)) - 1n;
  const n = masked ? addr & ~host : addr;
  const groups = Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return `${groups.join(':')}/${prefix}`;
});

const ruleSpec = fc.record({
  grantId: fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,40}$/),
  source: fc.oneof(v4, v6),
  port: fc.integer({ min: 1, max: 65_535 }),
  ttl: fc.integer({ min: 60_000, max: 8 * 3_600_000 }),
});

it('never opens a rule wider than the spec source or on another port (checked in what EC2 recorded)', async () => {
  let accepted = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(ruleSpec, async ({ grantId, source, port, ttl }) => {
      const spec: RuleSpec = { grantId: grantId as GrantId, targetId: 't', source, port, protocol: 'tcp', expiresAt: Date.now() + ttl };
      const before = h.ep.model.ingressRules(GROUP).length;
      let ref: string;
      try {
        ref = await h.adapter.open(spec);
      } catch (e) {
        // Refusing is always allowed; refusing after writing something is not.
        assert.ok(e instanceof PortcullisError && ['INVALID_SOURCE_IP', 'SOURCE_TOO_WIDE'].includes(e.code), String(e));
        assert.equal(h.ep.model.ingressRules(GROUP).length, before);
        refused++;
        return;
      }
      accepted++;
      const rules = h.ep.model.ingressRules(GROUP);
      assert.equal(rules.length, before + 1, 'exactly one rule added');
      const rule = h.ep.model.findRule(parseRuleRef(ref)!.ruleId);
      assert.ok(rule, 'the ref names the recorded rule');
      assert.equal(rule.protocol, 'tcp');
      assert.equal(rule.fromPort, port);
      assert.equal(rule.toPort, port);
      const recorded = parseCidr(rule.cidrIpv4 ?? rule.cidrIpv6 ?? '');
      const wanted = parseCidr(source);
      assert.ok(recorded && wanted, `${rule.cidrIpv4 ?? rule.cidrIpv6} and ${source} parse`);
      assert.ok(within(recorded, wanted), `${rule.cidrIpv4 ?? rule.cidrIpv6} is within ${source}`);
      assert.ok(recorded.prefix > 0, 'never the whole internet');
      await h.adapter.close([ref]);
      assert.equal(h.ep.model.ingressRules(GROUP).length, before);
    }),
    { numRuns: 200 },
  );
  // Both branches must have been exercised, or the property proved little.
  assert.ok(accepted > 50 && refused > 20, `accepted ${accepted}, refused ${refused}`);
});
