// The reaper's one timer, on a controlled clock: armed for the store's next expiry, never early,
// every grant then due closed in one batch, re-armed when the grant it waits for is extended or
// closed early, a retry after a failed batch. Real broker, SQLite store and memory firewall twin.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, beforeEach, describe, test } from 'node:test';
import { Broker, type BrokerLimits } from '../../src/broker/broker.ts';
import type { Grant, Principal, UserId } from '../../src/domain/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createMemoryAdapter, type TableFirewall } from '../../src/firewall/memory.ts';
import { createLogger } from '../../src/log.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { MIN_BATCH_GAP_MS, Reaper, RETRY_MS, type ReaperTimers } from '../../src/reaper/reaper.ts';
import { openDb, type Db } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { ROOT, tempDir } from '../helpers/broker.ts';

const limits: BrokerLimits = {
  minDurationSeconds: 1,
  maxDurationSeconds: 8 * 3600,
  pendingTimeoutSeconds: 3600,
  maxActivePerUser: 1000,
  maxSource: { ipv4: 32, ipv6: 128 },
  mfaMaxAgeSeconds: 12 * 3600,
  timeZone: 'UTC',
};
const alice: Principal = { sub: 'alice' as UserId, email: 'alice@example.test', groups: ['engineers'], mfa: true, authTime: Math.floor(Date.now() / 1000), amr: ['pwd', 'mfa'] };
/** A sweep that never comes during a test: only the timer closes grants here. */
const NEVER = '0 0 1 1 *';

/** A controlled clock and its timers: time moves only when the test says, timers fire in order. */
class ManualTime implements ReaperTimers {
  now = Date.now();
  private seq = 0;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  set(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.now + ms, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Moves the clock to `t`, firing each timer due on the way at its own time and waiting for the reaper's work. */
  async advanceTo(t: number, reaper: Reaper): Promise<void> {
    for (;;) {
      await reaper.idle();
      const due = [...this.pending].filter(([, p]) => p.at <= t).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.now = Math.max(this.now, due[1].at);
      due[1].fn();
    }
    this.now = t;
    await reaper.idle();
  }
}

describe('reaper: one timer for the next expiry', () => {
  const tmp = tempDir();
  const engine = loadPolicyEngine({ dir: join(ROOT, 'policies') });
  const targets = parseConfig({
    oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } },
    targets: [{ id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } }],
  }).targets;
  let n = 0;
  let db: Db;
  let store: Store;
  let fw: TableFirewall;
  let broker: Broker;
  let time: ManualTime;
  let reaper: Reaper;
  let ip = 0;

  beforeEach(async () => {
    await reaper?.stop();
    await db?.close();
    time = new ManualTime();
    const clock = () => time.now;
    db = await openDb(`sqlite:${join(tmp.dir, `r${n++}.db`)}`);
    store = new Store(db, clock);
    fw = createMemoryAdapter();
    broker = new Broker({ store, policy: () => engine, firewalls: new Map([['lab-pc', fw]]), targets, limits, log: createLogger('silent'), clock });
    reaper = new Reaper(broker, { sweep: NEVER, log: createLogger('silent'), clock, timers: time });
    await reaper.start();
  });
  after(async () => {
    await reaper?.stop();
    await db?.close();
    tmp.cleanup();
  });

  /** An active grant of `duration` from its own caller address (identical grants would share a rule). */
  const open = async (duration: string): Promise<Grant> => {
    ip += 1;
    const { grant, outcome } = await broker.requestAccess(alice, { target: 'lab-pc', duration, reason: 'T-1' }, { channel: 'api', callerIp: `198.51.${100 + Math.floor(ip / 250)}.${(ip % 250) + 1}` });
    assert.equal(outcome, 'active');
    return grant;
  };
  const state = async (g: Grant) => (await store.getGrant(g.id))!;

  test('many grants due at once: nothing before the expiry, all closed in one batch at it, one timer throughout', async () => {
    const grants: Grant[] = [];
    for (let i = 0; i < 40; i++) grants.push(await open('1m'));
    const expiresAt = grants[0]!.expiresAt!;
    assert.ok(grants.every((g) => g.expiresAt === expiresAt));
    assert.equal(reaper.nextWake, expiresAt);
    assert.equal(time.pending.size, 1, 'one timer, not one per grant');

    await time.advanceTo(expiresAt - 1, reaper);
    for (const g of grants) assert.equal((await state(g)).state, 'active', 'never closed before its expiry');
    assert.equal(fw.calls.close, 0);

    await time.advanceTo(expiresAt, reaper);
    for (const g of grants) {
      const s = await state(g);
      assert.equal(s.state, 'closed');
      assert.equal(s.closeReason, 'expired');
      assert.equal(s.closedAt, expiresAt, 'closed at its expiry, not before');
    }
    assert.equal(fw.calls.close, 1, 'one firewall call for the batch');
    assert.deepEqual(await fw.list(), []);
    assert.equal(reaper.nextWake, undefined, 'nothing left to wait for');
    assert.equal(time.pending.size, 0);
  });

  test('spread expiries close each at its own time; expiries closer than the batch gap wait for it, never the other way', async () => {
    const a = await open('1m');
    time.now += 5;
    const b = await open('1m');
    const c = await open('3m');
    assert.equal(reaper.nextWake, a.expiresAt);
    assert.ok(time.pending.size <= 1);

    await time.advanceTo(a.expiresAt!, reaper);
    assert.equal((await state(a)).state, 'closed');
    assert.equal((await state(b)).state, 'active', 'b is due 5 ms later');
    assert.equal(reaper.nextWake, b.expiresAt);
    await time.advanceTo(c.expiresAt! - 1, reaper);
    const sb = await state(b);
    assert.equal(sb.state, 'closed');
    assert.equal(sb.closedAt, a.expiresAt! + MIN_BATCH_GAP_MS, 'the next batch comes the gap after the last');
    assert.equal((await state(c)).state, 'active');
    assert.equal(reaper.nextWake, c.expiresAt);
    await time.advanceTo(c.expiresAt!, reaper);
    assert.equal((await state(c)).closedAt, c.expiresAt);
    assert.ok(time.pending.size <= 1);
  });

  test('a grant extended past the next wake leaves no stale wake: the timer moves to the new soonest expiry', async () => {
    const a = await open('1m');
    const b = await open('5m');
    assert.equal(reaper.nextWake, a.expiresAt);
    const extended = await broker.extend(alice, a.id, { duration: '10m' }, 'api');
    await reaper.idle();
    assert.equal(reaper.nextWake, b.expiresAt, 'armed for b, the soonest now');
    assert.deepEqual([...time.pending.values()].map((p) => p.at), [b.expiresAt]);

    await time.advanceTo(b.expiresAt!, reaper);
    assert.equal((await state(a)).state, 'active', 'a closes at its new expiry, not its old one');
    assert.equal((await state(b)).state, 'closed');
    assert.equal(reaper.nextWake, extended.expiresAt);
    await time.advanceTo(extended.expiresAt! - 1, reaper);
    assert.equal((await state(a)).state, 'active');
    await time.advanceTo(extended.expiresAt!, reaper);
    assert.equal((await state(a)).closedAt, extended.expiresAt);
  });

  test('a grant revoked before its time leaves no stale wake', async () => {
    const a = await open('1m');
    const b = await open('5m');
    await broker.revoke(alice, a.id);
    await reaper.idle();
    assert.equal(reaper.nextWake, b.expiresAt);
    assert.deepEqual([...time.pending.values()].map((p) => p.at), [b.expiresAt]);
    await time.advanceTo(b.expiresAt!, reaper);
    assert.equal((await state(b)).closedAt, b.expiresAt);
  });

  test('a wake for an earlier expiry (another replica\'s grant, told by NOTIFY) re-arms sooner; a later one does not', async () => {
    const a = await open('5m');
    assert.equal(reaper.nextWake, a.expiresAt);
    reaper.wake(a.expiresAt! + 60_000);
    assert.equal(reaper.nextWake, a.expiresAt);
    reaper.wake(a.expiresAt! - 60_000);
    assert.equal(reaper.nextWake, a.expiresAt! - 60_000);
    assert.equal(time.pending.size, 1);
    // Nothing of ours is due then: the batch finds nothing and the timer goes back to a.
    await time.advanceTo(a.expiresAt! - 60_000, reaper);
    assert.equal((await state(a)).state, 'active');
    assert.equal(reaper.nextWake, a.expiresAt);
  });

  test('a failed batch is retried a second later', async () => {
    const a = await open('1m');
    const b = await open('1m');
    await broker.close([b], 'revoked', 'test');
    fw.inject('close', 'unavailable');
    await time.advanceTo(a.expiresAt!, reaper);
    assert.equal((await state(a)).state, 'closing', 'the close intent is durable; the rule is still there');
    assert.equal(reaper.nextWake, a.expiresAt! + RETRY_MS);
  });
});
