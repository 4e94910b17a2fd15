// Start-up recovery runs before the broker accepts a connection: a stale `opening` grant is
// failed, a grant a crash left `approved` is activated, and only then does the port listen.
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { createPortcullis } from '../../src/app.ts';
import { newGrantId } from '../../src/broker/broker.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Grant, Principal, TargetId, UserId } from '../../src/domain/index.ts';
import { TableFirewall } from '../../src/firewall/memory.ts';
import type { ManagedRule } from '../../src/firewall/port.ts';
import { createLogger } from '../../src/log.ts';
import { openDb } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { tempDir, testConfig } from '../helpers/broker.ts';

const alice: Principal = { sub: 'alice' as UserId, email: 'alice@example.test', groups: ['engineers'], mfa: true, authTime: Math.floor(Date.now() / 1000), amr: ['pwd', 'otp'] };

/** A memory twin whose listing waits for the test: recovery is held at a known point. */
class HeldFirewall extends TableFirewall {
  listing!: Promise<void>;
  private listed!: () => void;
  private releaseGate!: () => void;
  private readonly gate: Promise<void>;
  constructor() {
    super('memory', 'memory:lab-pc');
    this.listing = new Promise((r) => (this.listed = r));
    this.gate = new Promise((r) => (this.releaseGate = r));
  }
  override async list(): Promise<ManagedRule[]> {
    this.listed();
    await this.gate;
    return super.list();
  }
  proceed(): void {
    this.releaseGate();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves with 'connected' or the error code of a TCP connect to the port. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

test('recovery (stale opening failed, approved activated) finishes before the server accepts a connection', async () => {
  const tmp = tempDir();
  const url = `sqlite:${join(tmp.dir, 'portcullis.db')}`;
  const long = Date.now() - 10 * 60_000;
  const base: Grant = {
    id: newGrantId(), targetId: 'lab-pc' as TargetId, port: 3389, source: '198.51.100.7/32', requester: alice.sub, requesterEmail: null, reason: 'T-1',
    durationSeconds: 600, channel: 'api', state: 'opening', closeReason: null, policyIds: [], ruleRef: null, createdAt: long, updatedAt: long,
    activatedAt: null, expiresAt: Date.now() + 600_000, closedAt: null, failure: null, requiredApprovals: 1,
    callerIp: '198.51.100.7', // the request came from the address it names (global/source-is-caller)
  };
  const opening = base;
  const approved: Grant = { ...base, id: newGrantId(), state: 'approved', expiresAt: null };
  // What a crash left behind: one grant between intent and rule, one between approval and intent.
  {
    const db = await openDb(url);
    const store = new Store(db);
    await store.rememberUser(alice, Date.now());
    await store.write(async (w) => {
      await w.insertGrant(opening);
      await w.insertGrant(approved);
      await w.audit({ actor: 'test', type: 'grant.requested', grant: opening.id });
      await w.audit({ actor: 'test', type: 'grant.requested', grant: approved.id });
    });
    await db.close();
  }

  const port = await freePort();
  const fw = new HeldFirewall();
  const config = parseConfig(testConfig(tmp.dir, { server: { listen: `127.0.0.1:${port}` }, oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } } }));
  const app = await createPortcullis(config, { log: createLogger('silent'), firewallFactories: { memory: () => fw } });
  try {
    const started = app.start();
    await fw.listing;
    // Recovery is under way (the reconciler is listing the backend): nothing may connect yet.
    assert.equal(await tryConnect(port), 'ECONNREFUSED');
    assert.equal((await app.store.getGrant(opening.id))!.state, 'opening');
    fw.proceed();
    await started;
    assert.equal(await tryConnect(port), 'connected');
    const o = (await app.store.getGrant(opening.id))!;
    assert.equal(o.state, 'failed');
    assert.equal(o.failure, 'INTERRUPTED');
    const a = (await app.store.getGrant(approved.id))!;
    assert.equal(a.state, 'active', 'the approved grant was activated (re-checked) at start');
    assert.deepEqual((await fw.list()).map((r) => r.grantIds), [[approved.id]]);
    const types = (await app.store.auditEvents({ grant: approved.id })).map((e) => e.type);
    assert.deepEqual(types, ['grant.requested', 'rule.opening', 'rule.opened']);
    assert.equal((await app.store.verifyAudit()).ok, true);
  } finally {
    fw.proceed();
    await app.stop();
    tmp.cleanup();
  }
});
