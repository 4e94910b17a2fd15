// A JSONL sink on a full disk (the file swapped for a link to /dev/full, which answers ENOSPC):
// the broker keeps serving and starts again, nothing is lost, the sink catches up, both chains verify.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { verifyJsonl } from '../../src/audit/jsonl.ts';
import type { Principal, UserId } from '../../src/domain/index.ts';
import { api, startBroker, tempDir, testConfig, waitFor, type RunningBroker } from '../helpers/broker.ts';
import { requireOrSkip } from '../helpers/env.ts';

const alice: Principal = { sub: 'alice' as UserId, email: 'alice@example.test', groups: ['engineers'], mfa: true, authTime: Math.floor(Date.now() / 1000), amr: ['pwd', 'otp'] };
const ctx = { channel: 'api' as const, callerIp: '198.51.100.7' };

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);

test('an audit sink that throws on every write for a while: no crash, no lost event, the chain verifies', async (t) => {
  if (!requireOrSkip(t, existsSync('/dev/full'), '/dev/full is missing')) return;
  const tmp = tempDir();
  const file = join(tmp.dir, 'audit.jsonl');
  const aside = join(tmp.dir, 'audit.jsonl.real');
  const config = testConfig(tmp.dir, { oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } } });
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  let b: RunningBroker | undefined;
  try {
    b = await startBroker(config);
    const open = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const { grant } = await b!.app.broker.requestAccess(alice, { target: 'lab-pc', duration: '10m', reason: `T-${i}` }, ctx);
        assert.equal(grant.state, 'active');
        await b!.app.broker.revoke(alice, grant.id);
      }
    };
    await open(2);
    const head = async () => (await b!.app.store.verifyAudit()).headSeq;
    await waitFor('the sink to have written the first events', async () => lines(file).length === (await head()));

    // The disk fills up: every append now fails with ENOSPC.
    renameSync(file, aside);
    symlinkSync('/dev/full', file);
    const failuresBefore = b.app.store.listenerFailures;
    await open(5);
    assert.ok(b.app.store.listenerFailures > failuresBefore, 'the failure reached the store and was counted');
    const metrics = await api(b.url, '/metrics');
    assert.match(metrics.body, /portcullis_audit_sink_failures_total [1-9]/);
    assert.equal((await api(b.url, '/healthz')).status, 200);

    // A restart while the disk is still full: the broker starts and serves.
    await b.stop();
    b = await startBroker(config);
    await open(3);
    assert.equal((await api(b.url, '/readyz')).status, 200);

    // Space again: the sink catches up from the store, from the file's own last line.
    rmSync(file);
    renameSync(aside, file);
    await open(1);
    const total = await head();
    await waitFor('the sink to catch up', async () => lines(file).length === total, 10_000);
    const v = await verifyJsonl(file);
    assert.equal(v.ok, true, JSON.stringify(v.broken));
    assert.equal(v.lastSeq, total);
    assert.deepEqual(lines(file).map((l) => (JSON.parse(l) as { seq: number }).seq), Array.from({ length: total }, (_, i) => i + 1));
    assert.equal((await b.app.store.verifyAudit()).ok, true);
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await b?.stop();
    tmp.cleanup();
  }
});
