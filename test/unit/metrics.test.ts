// Firewall calls the broker makes are measured: latency per backend kind and call, and errors by code; the adapter
// behind the measurement keeps its identity per backend and its own methods.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GrantId } from '../../src/domain/index.ts';
import { instrumentFirewalls } from '../../src/firewall/instrumented.ts';
import { createMemoryAdapter, type TableFirewall } from '../../src/firewall/memory.ts';
import { Metrics } from '../../src/metrics.ts';

test('open, close and list are timed per backend kind; a failed call is counted with its code and still fails', async () => {
  const metrics = new Metrics(async () => ({ active: 2, pending: 1 }));
  const shared = createMemoryAdapter('memory:shared');
  const fws = instrumentFirewalls(new Map([['a', shared], ['b', shared], ['c', createMemoryAdapter('memory:c')]]), metrics);
  assert.equal(fws.get('a'), fws.get('b'), 'targets that share a backend still share one adapter');
  const a = fws.get('a') as TableFirewall;
  assert.equal(a.scope, 'memory:shared');
  assert.equal(typeof a.inject, 'function', "the adapter's own methods pass through");

  const ref = await a.open({ grantId: 'g_1' as GrantId, targetId: 'a', source: '198.51.100.7/32', port: 3389, protocol: 'tcp', expiresAt: Date.now() + 60_000 });
  assert.equal((await a.list()).length, 1);
  a.inject('close', 'unavailable');
  await assert.rejects(a.close([ref]), (e: any) => e.code === 'FIREWALL_UNAVAILABLE');
  await a.close([ref]);
  assert.deepEqual(await shared.list(), []);

  const text = await metrics.registry.metrics();
  assert.match(text, /portcullis_firewall_operation_seconds_count\{kind="memory",op="open"\} 1/);
  assert.match(text, /portcullis_firewall_operation_seconds_count\{kind="memory",op="close"\} 2/);
  assert.match(text, /portcullis_firewall_operation_seconds_count\{kind="memory",op="list"\} 1/);
  assert.match(text, /portcullis_firewall_errors_total\{kind="memory",op="close",code="FIREWALL_UNAVAILABLE"\} 1/);
  assert.match(text, /portcullis_grants\{state="pending"\} 1/);
});
