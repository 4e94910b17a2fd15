// The audit budget for refused credentials: N per address per window, the rest counted and reported.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RefusalBudget } from '../../src/http/refusal-budget.ts';

test('audits the first N refusals of an address per window, counts the rest, reports them with the next audited one', () => {
  let now = 0;
  const b = new RefusalBudget(3, 60_000, () => now);
  assert.deepEqual([1, 2, 3].map(() => b.take('198.51.100.7').audit), [true, true, true]);
  assert.deepEqual(b.take('198.51.100.7'), { audit: false, suppressed: 0 });
  assert.deepEqual(b.take('198.51.100.7'), { audit: false, suppressed: 0 });
  assert.equal(b.take('203.0.113.9').audit, true, 'other addresses have their own budget');
  now = 60_000;
  assert.deepEqual(b.take('198.51.100.7'), { audit: true, suppressed: 2 });
  assert.deepEqual(b.take('198.51.100.7'), { audit: true, suppressed: 0 });
});
