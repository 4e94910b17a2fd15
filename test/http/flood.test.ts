// Anonymous traffic cannot grow state: sign-in floods, dead callbacks, refused tokens and step-ups
// leave bounded rows and audit events (counts printed), and limits answer 429 with Retry-After.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { kyselySessionStore, newSecretId } from '../../src/identity/sessions.ts';
import { openDb, type Db } from '../../src/store/db.ts';
import { startBroker, tempDir, testConfig, type RunningBroker } from '../helpers/broker.ts';
import { startTestIdp, type TestIdp } from '../helpers/idp.ts';

// A one-hour window: no limit resets while a flood runs, however slow the machine.
const LIMITS = { window: '1h', signInPerAddress: 40, refusedPerAddress: 20, grantRequestsPerUser: 5, grantRequestsPerAddress: 1000, inFlightSignInsPerAddress: 10, inFlightSignIns: 200 };
const GLOBAL_AUDIT = 50;

describe('floods leave bounded state', () => {
  let idp: TestIdp;
  let broker: RunningBroker;
  let db: Db;
  let offsetMs = 0;
  const base = Date.now();
  const tmp = tempDir();

  before(async () => {
    idp = await startTestIdp({ mfa: 'amr-mfa', users: { alice: { groups: ['engineers'] } } });
    const cfg = testConfig(tmp.dir, {
      server: { listen: '127.0.0.1:0', trustProxy: ['127.0.0.1/32'], refusalAuditPerMinute: 3, refusalAuditGlobalPerMinute: GLOBAL_AUDIT, rateLimits: LIMITS },
      oidc: { issuer: idp.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } } },
    });
    // A controlled clock: the broker's time moves only when a test moves it, so no audit window
    // ends in the middle of a flood however slow the machine is.
    broker = await startBroker(cfg, { clock: () => base + offsetMs });
    db = await openDb((cfg.store as { url: string }).url);
  });
  after(async () => {
    await db?.close();
    await broker?.stop();
    await idp?.close();
    tmp.cleanup();
  });

  const flows = async () => Number((await sql<{ n: number }>`select count(*) as n from login_flows`.execute(db.kysely)).rows[0]!.n);
  const auditCount = async () => (await broker.app.store.verifyAudit()).lastSeq;
  /** The nth distinct /24 (or /64 for IPv6), as a trusted proxy would report it. */
  const addr = (n: number) => (n % 2 ? `10.${(n >> 8) & 255}.${n & 255}.7` : `2001:db8:${n.toString(16)}::7`);

  /** Sends `count` requests, 16 at a time; returns the statuses and the Retry-After of 429s. */
  async function flood(count: number, make: (i: number) => { path: string; headers?: Record<string, string>; method?: string; body?: string }) {
    const statuses = new Map<number, number>();
    const retryAfter = new Set<string>();
    const codes = new Map<string, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < count) {
          const r = make(next++);
          const res = await fetch(`${broker.url}${r.path}`, { method: r.method ?? 'GET', headers: { accept: 'application/json', ...r.headers }, body: r.body, redirect: 'manual' });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const text = await res.text();
          if (res.status === 429) {
            retryAfter.add(res.headers.get('retry-after') ?? 'missing');
            const code = JSON.parse(text).error.code as string;
            codes.set(code, (codes.get(code) ?? 0) + 1);
          }
          assert.ok(res.status < 500, `${r.path} → ${res.status} ${text}`);
        }
      }),
    );
    for (const v of retryAfter) assert.match(v, /^[1-9]\d*$/, 'every 429 says when to come back');
    return { statuses: Object.fromEntries(statuses), codes: Object.fromEntries(codes) };
  }

  test('5,000 sign-ins from one address: at most inFlightSignInsPerAddress flows stored, then 429 with Retry-After', async () => {
    const before = await flows();
    const r = await flood(5000, () => ({ path: '/auth/login' }));
    const stored = (await flows()) - before;
    console.log(`# 5,000 GET /auth/login from one address → login_flows +${stored}; statuses ${JSON.stringify(r.statuses)} ${JSON.stringify(r.codes)}`);
    assert.equal(stored, LIMITS.inFlightSignInsPerAddress);
    assert.equal(r.statuses[303], LIMITS.inFlightSignInsPerAddress);
    assert.equal(r.statuses[429], 5000 - LIMITS.inFlightSignInsPerAddress);
  });

  test('1,500 sign-ins from 1,500 networks: at most inFlightSignIns flows, and the sweep removes them once expired', async () => {
    const r = await flood(1500, (i) => ({ path: '/auth/login', headers: { 'x-forwarded-for': addr(i + 1000) } }));
    const stored = await flows();
    console.log(`# 1,500 GET /auth/login from 1,500 prefixes → login_flows ${stored} (cap ${LIMITS.inFlightSignIns}); statuses ${JSON.stringify(r.statuses)} ${JSON.stringify(r.codes)}`);
    assert.ok(stored <= LIMITS.inFlightSignIns, `${stored} rows`);
    assert.ok((r.codes.SIGN_IN_BUSY ?? 0) > 0);
    offsetMs = 11 * 60_000; // past the 10-minute life of a sign-in
    await broker.app.housekeep();
    console.log(`# after expiry and one housekeeping run → login_flows ${await flows()}`);
    assert.equal(await flows(), 0);
  });

  test('dead callbacks (no or a random flow cookie) from 2,000 networks append at most the global budget + one summary', async () => {
    const start = await auditCount();
    const r = await flood(2000, (i) => ({
      path: '/auth/callback?code=x&state=y',
      headers: { 'x-forwarded-for': addr(i + 5000), ...(i % 2 ? { cookie: `portcullis_login=${newSecretId()}` } : {}) },
    }));
    offsetMs += 61_000;
    await broker.app.housekeep();
    const events = await broker.app.store.auditEvents({ afterSeq: start, limit: 10_000 });
    const summary = events.filter((e) => e.type === 'audit.refusals_suppressed');
    console.log(`# 2,000 GET /auth/callback → ${events.length} audit events (${summary.length} summary: ${JSON.stringify(summary[0]?.detail?.suppressed)}); statuses ${JSON.stringify(r.statuses)}`);
    assert.equal(events.filter((e) => e.type === 'auth.login_failed').length, GLOBAL_AUDIT);
    assert.equal(summary.length, 1);
    assert.equal((summary[0]!.detail!.suppressed as Record<string, number>).sign_in_callback, 2000 - GLOBAL_AUDIT);
    assert.equal(await flows(), 0);
  });

  test('200 networks × 31 refused tokens: the global audit budget, one summary, and 429 past refusedPerAddress', async () => {
    const start = await auditCount();
    const r = await flood(200 * 31, (i) => ({ path: '/api/v1/me', headers: { authorization: 'Bearer not-a-jwt', 'x-forwarded-for': addr(20_000 + (i % 200)) } }));
    offsetMs += 61_000;
    await broker.app.housekeep();
    const events = await broker.app.store.auditEvents({ afterSeq: start, limit: 10_000 });
    console.log(`# 6,200 refused tokens from 200 prefixes → ${events.length} audit events; statuses ${JSON.stringify(r.statuses)} ${JSON.stringify(r.codes)}`);
    assert.equal(events.filter((e) => e.type === 'auth.rejected').length, GLOBAL_AUDIT);
    assert.equal(events.filter((e) => e.type === 'audit.refusals_suppressed').length, 1);
    assert.equal(r.statuses[401], 200 * LIMITS.refusedPerAddress);
    assert.equal(r.codes.RATE_LIMITED, 200 * (31 - LIMITS.refusedPerAddress));
    const metrics = await (await fetch(`${broker.url}/metrics`)).text();
    assert.match(metrics, /portcullis_refusals_unaudited_total\{kind="credential"\} \d+/);
    assert.match(metrics, /portcullis_rate_limited_total\{limit="refused_credentials"\} 2200/);
  });

  test('1,000 step-up requests of one session store at most inFlightSignInsPerAddress flows for that user', async () => {
    // A session without MFA, written through the real session store: the sign-in itself is tested in test/identity/web.test.ts.
    const sid = newSecretId();
    const csrf = newSecretId();
    const t = base + offsetMs;
    const principal = { sub: 'alice', email: null, name: null, groups: ['engineers'], mfa: false, authTime: Math.floor(t / 1000), amr: ['pwd'], acr: null, clientId: idp.clients.web.id };
    await kyselySessionStore(db.kysely).createSession(sid, { principal: principal as never, idToken: null, csrf, createdAt: t, lastSeenAt: t, expiresAt: t + 3600_000 });
    const before = await flows();
    const r = await flood(1000, (i) => ({
      path: '/api/v1/grants',
      method: 'POST',
      headers: { cookie: `portcullis_session=${sid}`, 'x-csrf-token': csrf, 'content-type': 'application/json', 'x-forwarded-for': addr(40_000 + i) },
      body: JSON.stringify({ target: 'lab-pc', duration: '10m', reason: 'T-1' }),
    }));
    const stored = (await flows()) - before;
    console.log(`# 1,000 step-up POSTs of one session → login_flows +${stored}; statuses ${JSON.stringify(r.statuses)} ${JSON.stringify(r.codes)}`);
    assert.equal(stored, LIMITS.inFlightSignInsPerAddress);
    assert.equal(r.statuses[403], LIMITS.inFlightSignInsPerAddress);
    assert.equal(r.codes.SIGN_IN_BUSY, 1000 - LIMITS.inFlightSignInsPerAddress);
  });

  test('grant requests past grantRequestsPerUser → 429 RATE_LIMITED with Retry-After', async () => {
    const token = await idp.getIdToken('alice');
    const r = await flood(LIMITS.grantRequestsPerUser + 3, () => ({
      path: '/api/v1/grants',
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'nope', duration: '10m', reason: 'T-1' }),
    }));
    assert.deepEqual(r.statuses, { 400: LIMITS.grantRequestsPerUser, 429: 3 });
    assert.deepEqual(r.codes, { RATE_LIMITED: 3 });
  });
});
