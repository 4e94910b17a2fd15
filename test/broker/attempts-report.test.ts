// The attempts report (one use case for `portcullis attempts` and /admin) on a real SQLite store with a
// controlled clock: periods, the target filter, overflow, the window in progress, and only the period's
// gate.attempts events read.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { attemptsReport } from '../../src/broker/attempts-report.ts';
import type { WindowSummary } from '../../src/broker/attempts.ts';
import { openDb, type Db } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { tempDir } from '../helpers/broker.ts';

const T0 = Date.parse('2026-12-03T12:00:00Z');
const H = 3_600_000;
let now = T0;
let db: Db;
let store: Store;
const tmp = tempDir('portcullis-attempts-report-');

const row = (source: string, target: string, count: number, at: number) => ({ source, target, port: 3389, protocol: 'tcp', count, firstSeen: new Date(at - 60_000).toISOString(), lastSeen: new Date(at).toISOString() });
const windowAt = (at: number, top: ReturnType<typeof row>[], overflow = 0): WindowSummary => ({ from: new Date(at - 300_000).toISOString(), to: new Date(at).toISOString(), total: top.reduce((n, r) => n + r.count, 0) + overflow, sources: new Set(top.map((r) => r.source)).size, overflow, top });

before(async () => {
  db = await openDb(`sqlite:${join(tmp.dir, 'a.db')}`);
  store = new Store(db, () => now);
  // Three windows: 2 days, 3 hours and 10 minutes ago; unrelated events between them.
  for (const [at, w] of [
    [T0 - 48 * H, windowAt(T0 - 48 * H, [row('203.0.113.7', 'dc01', 40, T0 - 48 * H)])],
    [T0 - 3 * H, windowAt(T0 - 3 * H, [row('203.0.113.7', 'dc01', 5, T0 - 3 * H), row('198.51.100.9', 'pc01', 7, T0 - 3 * H)], 11)],
    [T0 - 10 * 60_000, windowAt(T0 - 10 * 60_000, [row('203.0.113.7', 'dc01', 2, T0 - 10 * 60_000)])],
  ] as const) {
    now = at;
    await store.audit({ type: 'gate.attempts', actor: 'system:gate', detail: { ...w } });
    await store.audit({ type: 'auth.rejected', actor: null, sourceIp: '192.0.2.1', detail: { code: 'TOKEN_EXPIRED' } });
  }
  now = T0;
});
after(async () => {
  await db?.close();
  tmp.cleanup();
});

test('per period: windows that ended inside it, summed per source, target and port; first and last seen across windows', async () => {
  const hour = await attemptsReport({ store }, { sinceMs: T0 - H });
  assert.deepEqual([hour.windows, hour.total, hour.overflow, hour.current], [1, 2, 0, false]);
  const day = await attemptsReport({ store }, { sinceMs: T0 - 24 * H });
  assert.deepEqual([day.windows, day.total, day.overflow], [2, 25, 11]);
  assert.deepEqual(day.sources.map((s) => [s.source, s.target, s.count]), [['198.51.100.9', 'pc01', 7], ['203.0.113.7', 'dc01', 7]]);
  const week = await attemptsReport({ store }, { sinceMs: T0 - 7 * 24 * H });
  const dc = week.sources.find((s) => s.source === '203.0.113.7')!;
  assert.equal(dc.count, 47);
  assert.equal(dc.firstSeen, new Date(T0 - 48 * H - 60_000).toISOString());
  assert.equal(dc.lastSeen, new Date(T0 - 10 * 60_000).toISOString());
  assert.equal(week.since, new Date(T0 - 7 * 24 * H).toISOString());
});

test('one target: only its sources and their counts; the overflow belongs to no target', async () => {
  const pc = await attemptsReport({ store }, { sinceMs: T0 - 7 * 24 * H, target: 'pc01' });
  assert.deepEqual([pc.windows, pc.total, pc.overflow], [1, 7, 0]);
  assert.deepEqual(pc.sources.map((s) => s.source), ['198.51.100.9']);
  assert.equal((await attemptsReport({ store }, { sinceMs: T0 - 7 * 24 * H, target: 'nobody' })).total, 0);
});

test('the window in progress is added when the process holds it', async () => {
  const live = windowAt(T0, [row('192.0.2.50', 'pc01', 3, T0), row('203.0.113.7', 'dc01', 1, T0)]);
  const r = await attemptsReport({ store, current: () => live }, { sinceMs: T0 - H });
  assert.deepEqual([r.windows, r.total, r.current], [2, 6, true]);
  assert.equal(r.sources.find((s) => s.source === '203.0.113.7')!.count, 3);
  const other = await attemptsReport({ store, current: () => live }, { sinceMs: T0 - H, target: 'elsewhere' });
  assert.equal(other.current, false, 'a live window without the target is not counted');
  assert.equal((await attemptsReport({ store, current: () => undefined }, { sinceMs: T0 - H })).current, false);
});

test('only gate.attempts events of the period come out of the store', async () => {
  const seen: string[] = [];
  const counting = { auditEvents: async (f: Parameters<Store['auditEvents']>[0]) => {
    const page = await store.auditEvents(f);
    seen.push(...page.map((e) => `${e.type}@${e.time}`));
    return page;
  } };
  await attemptsReport({ store: counting }, { sinceMs: T0 - 24 * H });
  assert.deepEqual(seen, [`gate.attempts@${new Date(T0 - 3 * H).toISOString()}`, `gate.attempts@${new Date(T0 - 10 * 60_000).toISOString()}`]);
});
