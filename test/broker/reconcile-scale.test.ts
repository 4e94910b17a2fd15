// Reconcile above 100,000 live grants: every live grant's rule stays. The store's live-grant read
// used to stop at 100,000 rows, and the reconciler took the rules of the grants past that cap for
// orphans and removed them (closing live users out).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Broker, type BrokerLimits } from '../../src/broker/broker.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createMemoryAdapter } from '../../src/firewall/memory.ts';
import { createLogger } from '../../src/log.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { openDb } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { ROOT, tempDir } from '../helpers/broker.ts';
import { activeGrant, insertActive, sourceOf } from '../helpers/grants.ts';

/** Past the old cap of 100,000 rows. */
const LIVE = 100_050;

const limits: BrokerLimits = { minDurationSeconds: 1, maxDurationSeconds: 8 * 3600, pendingTimeoutSeconds: 3600, maxActivePerUser: 3, maxSource: { ipv4: 32, ipv6: 128 }, mfaMaxAgeSeconds: 12 * 3600, timeZone: 'UTC' };
const tmp = tempDir();
after(() => tmp.cleanup());

test(`reconcile with ${LIVE.toLocaleString('en')} live grants on one backend keeps every live grant's rule`, async () => {
  const db = await openDb(`sqlite:${join(tmp.dir, 'scale.db')}`);
  try {
    const store = new Store(db);
    const fw = createMemoryAdapter();
    const targets = parseConfig({
      oidc: { issuer: 'https://idp.example.test', clients: { cli: { id: 'cli' } } },
      targets: [{ id: 'lab-pc', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } }],
    }).targets;
    const broker = new Broker({ store, policy: () => loadPolicyEngine({ dir: join(ROOT, 'policies') }), firewalls: new Map([['lab-pc', fw]]), targets, limits, log: createLogger('silent') });
    const expiresAt = Date.now() + 3600_000;
    const created = Date.now() - 1000;
    await insertActive(
      store,
      Array.from({ length: LIVE }, (_, i) => activeGrant({ targetId: 'lab-pc', source: sourceOf(i), expiresAt, createdAt: created + i, updatedAt: created })),
      () => fw,
    );
    assert.equal((await fw.list()).length, LIVE);

    const result = await broker.reconcile();
    assert.equal(result.orphansRemoved, 0, 'no live grant\'s rule is an orphan');
    assert.equal(result.reopened, 0);
    assert.equal((await fw.list()).length, LIVE, 'every rule is still there');
    assert.equal(fw.calls.close, 0);
    assert.equal((await store.countByState()).active, LIVE);
  } finally {
    await db.close();
  }
});
