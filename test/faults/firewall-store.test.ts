// Fault injection: the firewall backend failing, throttling and timing out in the middle of open and
// of close, and the store failing mid-transition. Each answers a 5xx with a code and no internals,
// and leaves nothing half-done: every rule belongs to a live grant, no active grant lacks its rule,
// no grant is closed while its rule exists; the sweep settles what the failure left in between.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import type { Fault } from '../../src/firewall/memory.ts';
import { startApiWorld, type ApiWorld } from '../http/helpers/world.ts';

describe('faults in the middle of open and close', () => {
  let w: ApiWorld;
  let offsetMs = 0;
  const body = { target: 'lab-pc', duration: '10m', reason: 'T-1' };

  before(async () => {
    w = await startApiWorld(() => ({ reaper: { sweep: '0 0 1 1 *' } }), { clock: () => Date.now() + offsetMs });
  });
  after(async () => {
    await w?.stop();
  });
  beforeEach(() => {
    w.fw.onCall = undefined;
  });

  const post = (path: string, b: unknown = {}) => w.http().post(path).set('authorization', `Bearer ${w.token}`).set('content-type', 'application/json').send(JSON.stringify(b));

  /** A 5xx that names its code and carries none of the backend's words. */
  function assertOpaque5xx(res: { status: number; body: any; text: string }, code: string): void {
    assert.ok(res.status >= 500, `${res.status} ${res.text}`);
    assert.equal(res.body.error.code, code);
    assert.doesNotMatch(res.text, /backend said|injected|secret|SQLITE|ETIMEDOUT|RequestLimitExceeded|stack|\.ts:/i);
  }

  /** The invariants that hold at every moment, whatever failed. */
  async function assertNothingHalfDone(): Promise<void> {
    const rules = await w.fw.list();
    const grants = await w.broker.app.store.listGrants();
    for (const r of rules) {
      const g = grants.find((x) => r.grantIds.includes(x.id));
      assert.ok(g && ['opening', 'active', 'closing'].includes(g.state), `rule ${r.ref} without a live grant (${g?.state})`);
    }
    for (const g of grants) {
      const has = rules.some((r) => r.grantIds.includes(g.id));
      if (g.state === 'active') assert.ok(has, `active grant ${g.id} without its rule`);
      if (['closed', 'failed', 'denied', 'expired'].includes(g.state)) assert.ok(!has, `${g.state} grant ${g.id} still has a rule`);
    }
  }

  /** Time passes beyond the reconciler's patience and the sweep runs, the backend answering again. */
  async function sweep(): Promise<void> {
    offsetMs += 120_000;
    await w.broker.app.reaper.sweep();
    await assertNothingHalfDone();
  }

  async function settledState(id: string) {
    return (await w.broker.app.store.getGrant(id as never))!.state;
  }

  const openFaults: [Fault, string, number][] = [
    ['unavailable', 'FIREWALL_UNAVAILABLE', 503],
    ['throttled', 'FIREWALL_UNAVAILABLE', 503],
    ['timeout', 'FIREWALL_UNAVAILABLE', 503],
    ['error', 'FIREWALL_ERROR', 500],
  ];
  for (const [fault, code, status] of openFaults) {
    test(`open: the backend ${fault === 'timeout' ? 'times out after making the change' : fault} → ${status} ${code}, no rule, the grant failed`, async () => {
      w.fw.inject('open', fault);
      const res = await post('/api/v1/grants', body);
      assert.equal(res.status, status);
      assertOpaque5xx(res, code);
      await assertNothingHalfDone();
      assert.deepEqual(await w.fw.list(), [], fault === 'timeout' ? 'the rule the lost answer hid was found and removed' : 'no rule');
      const [g] = (await w.broker.app.store.listGrants()).filter((x) => x.state !== 'closed').slice(-1);
      assert.equal(g!.state, 'failed');
    });
  }

  test('open: a timeout and then a backend that cannot even be listed → 503; the grant waits in opening and the sweep settles it', async () => {
    w.fw.inject('open', 'timeout');
    w.fw.inject('list', 'unavailable');
    const res = await post('/api/v1/grants', body);
    assertOpaque5xx(res, 'FIREWALL_UNAVAILABLE');
    const g = (await w.broker.app.store.grantsInStates(['opening']))[0]!;
    assert.ok(g, 'the durable intent stays');
    assert.equal((await w.fw.list()).filter((r) => r.grantIds.includes(g.id)).length, 1, 'the rule the timeout hid exists, and belongs to a grant in opening');
    await assertNothingHalfDone();
    await sweep();
    assert.ok(['active', 'failed'].includes(await settledState(g.id)));
  });

  const closeFaults: Fault[] = ['unavailable', 'throttled', 'timeout'];
  for (const fault of closeFaults) {
    test(`close: the backend ${fault === 'timeout' ? 'times out after removing the rule' : fault} → 503; the grant stays closing until the sweep closes it`, async () => {
      const opened = await post('/api/v1/grants', body);
      assert.equal(opened.status, 201, opened.text);
      const id = opened.body.grant.id as string;
      w.fw.inject('close', fault);
      const res = await post(`/api/v1/grants/${id}/revoke`);
      assertOpaque5xx(res, 'FIREWALL_UNAVAILABLE');
      assert.equal(await settledState(id), 'closing', 'never closed while its rule may exist');
      await assertNothingHalfDone();
      await sweep();
      assert.equal(await settledState(id), 'closed');
      assert.deepEqual((await w.fw.list()).filter((r) => r.grantIds.includes(id)), []);
    });
  }

  test('extend: the backend failing → 503; the grant keeps its old expiry in the store and in the backend', async () => {
    const opened = await post('/api/v1/grants', body);
    const id = opened.body.grant.id as string;
    const before = (await w.broker.app.store.getGrant(id as never))!.expiresAt;
    w.fw.inject('open', 'unavailable');
    const res = await post(`/api/v1/grants/${id}/extend`, { duration: '5m' });
    assertOpaque5xx(res, 'FIREWALL_UNAVAILABLE');
    assert.equal((await w.broker.app.store.getGrant(id as never))!.expiresAt, before);
    assert.equal((await w.fw.list()).find((r) => r.grantIds.includes(id))!.expiresAt, before);
    await post(`/api/v1/grants/${id}/revoke`);
    await assertNothingHalfDone();
  });

  /** Another writer holds SQLite's write lock: the broker's next write fails (after its busy timeout) as a real store would. */
  function lockStore(): () => void {
    const other = new SqliteDatabase(w.storeUrl.slice('sqlite:'.length));
    other.exec('BEGIN IMMEDIATE');
    return () => {
      other.exec('ROLLBACK');
      other.close();
    };
  }

  test('the store failing after the rule opened → 503 STORE_UNAVAILABLE; the intent is durable and the sweep adopts or removes the rule', async () => {
    let unlock: (() => void) | undefined;
    w.fw.onCall = (op) => {
      if (op === 'open' && !unlock) unlock = lockStore();
    };
    const res = await post('/api/v1/grants', body);
    unlock?.();
    w.fw.onCall = undefined;
    assertOpaque5xx(res, 'STORE_UNAVAILABLE');
    const g = (await w.broker.app.store.grantsInStates(['opening']))[0]!;
    assert.ok(g, 'the grant is still opening: its rule is accounted for');
    await assertNothingHalfDone();
    await sweep();
    assert.ok(['active', 'failed'].includes(await settledState(g.id)));
  });

  test('the store failing after the rule was removed → 503 STORE_UNAVAILABLE; the grant stays closing and the sweep closes it', async () => {
    const opened = await post('/api/v1/grants', body);
    const id = opened.body.grant.id as string;
    let unlock: (() => void) | undefined;
    w.fw.onCall = (op) => {
      if (op === 'close' && !unlock) unlock = lockStore();
    };
    const res = await post(`/api/v1/grants/${id}/revoke`);
    unlock?.();
    w.fw.onCall = undefined;
    assertOpaque5xx(res, 'STORE_UNAVAILABLE');
    assert.equal(await settledState(id), 'closing');
    await assertNothingHalfDone();
    await sweep();
    assert.equal(await settledState(id), 'closed');
  });

  test('the store failing before anything happened → 503 STORE_UNAVAILABLE and no rule', async () => {
    const unlock = lockStore();
    let res;
    try {
      res = await post('/api/v1/grants', body);
    } finally {
      unlock();
    }
    assertOpaque5xx(res, 'STORE_UNAVAILABLE');
    await assertNothingHalfDone();
  });
});
