// The audit budget of anonymous refusals: N per address prefix and M in all per window; the rest
// are counted and summarised once per window.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressPrefix } from '../../src/http/rate-limit.ts';
import { RefusalBudget, summaryEvent } from '../../src/http/refusal-budget.ts';

test('audits the first N refusals of an address prefix per window and summarises the rest once', () => {
  let now = 0;
  const counted: string[] = [];
  const b = new RefusalBudget({ perPrefix: 3, global: 100, now: () => now, onSuppressed: (k) => counted.push(k) });
  assert.deepEqual([1, 2, 3].map(() => b.take('198.51.100.7')), [true, true, true]);
  assert.equal(b.take('198.51.100.7'), false);
  assert.equal(b.take('198.51.100.200'), false, 'another address of the same /24 shares the budget');
  assert.equal(b.take('203.0.113.9'), true, 'another prefix has its own budget');
  assert.equal(b.flush(), undefined, 'no summary before the window ends');
  now = 60_000;
  const s = b.flush();
  assert.deepEqual(s, { from: 0, to: 60_000, suppressed: { credential: 2 }, top: [{ prefix: '198.51.100.0/24', count: 2 }] });
  assert.equal(b.flush(), undefined, 'one summary per window');
  assert.deepEqual(counted, ['credential', 'credential']);
  assert.equal(b.take('198.51.100.7'), true, 'a new window, a new budget');
  assert.equal(summaryEvent(s!).type, 'audit.refusals_suppressed');
});

test('IPv6 addresses count per /64: rotating the interface id does not buy more audit events', () => {
  const b = new RefusalBudget({ perPrefix: 2, global: 100, now: () => 0 });
  const audited = Array.from({ length: 50 }, (_, i) => b.take(`2001:db8:1:2::${(i + 1).toString(16)}`)).filter(Boolean).length;
  assert.equal(audited, 2);
  assert.equal(addressPrefix('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
  assert.equal(addressPrefix('10.213.7.9'), '10.213.7.0/24');
});

test('a global cap bounds the audited refusals of a window whatever the number of prefixes', () => {
  let now = 0;
  const b = new RefusalBudget({ perPrefix: 31, global: 50, now: () => now });
  let audited = 0;
  // The flood: 200 addresses × 31 refused tokens, here from 200 different /24s.
  for (let a = 0; a < 200; a++) for (let i = 0; i < 31; i++) if (b.take(`10.${a}.0.1`)) audited++;
  assert.equal(audited, 50);
  now = 61_000;
  const s = b.flush()!;
  assert.equal(s.suppressed.credential, 200 * 31 - 50);
  assert.ok(s.top.length <= 5);
  console.log(`# 6,200 refusals from 200 prefixes → ${audited} audited + 1 summary event`);
});
