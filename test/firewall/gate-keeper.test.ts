// The gate use case without a kernel: a backend whose nft is missing is not ready (naming its targets),
// opens nothing, is audited once per fall rather than once per sweep; backends without a baseline are ignored.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { GateKeeper } from '../../src/broker/gate.ts';
import type { GrantId } from '../../src/domain/index.ts';
import { createMemoryAdapter } from '../../src/firewall/memory.ts';
import { createNftablesAdapter } from '../../src/firewall/nftables.ts';
import type { FirewallAdapter } from '../../src/firewall/port.ts';
import { createLogger } from '../../src/log.ts';
import { openDb } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { tempDir } from '../helpers/broker.ts';

describe('gate keeper', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('nft missing: not ready naming both targets of the table, grants refused with FIREWALL_UNAVAILABLE, one gate.unavailable per fall', async () => {
    const db = await openDb(`sqlite:${join(tmp.dir, 'gate.db')}`);
    try {
      const store = new Store(db);
      const nft = createNftablesAdapter({ kind: 'nftables', table: 'portcullis' }, {
        nftPath: '/nonexistent/nft',
        targets: [
          { id: 'dc-a', destinations: ['203.0.113.10'], ports: [3389] },
          { id: 'dc-b', destinations: ['203.0.113.11'], ports: [3389] },
        ],
      });
      const memory = createMemoryAdapter('memory:pc');
      const restored: string[] = [];
      const up: [string, boolean][] = [];
      const gate = new GateKeeper({
        store,
        firewalls: new Map<string, FirewallAdapter>([['dc-a', nft], ['dc-b', nft], ['pc', memory]]),
        log: createLogger('silent'),
        onRestored: (scope) => restored.push(scope),
        onChecked: (scope, ok) => up.push([scope, ok]),
      });
      assert.equal(gate.readiness().ok, false, 'not ready before the first check');
      const states = await gate.sweep();
      assert.deepEqual(states.map((s) => [s.scope, s.targets, s.ok]), [[nft.scope, ['dc-a', 'dc-b'], false]], 'only backends with a baseline are judged');
      const r = gate.readiness();
      assert.equal(r.ok, false);
      assert.match(r.detail, /gate not in place for dc-a, dc-b \(nftables: \/nonexistent\/nft is not installed or not on PATH\)/);
      await assert.rejects(
        nft.open({ grantId: 'g1' as GrantId, targetId: 'dc-a', source: '198.51.100.7/32', port: 3389, protocol: 'tcp', expiresAt: Date.now() + 60_000 }),
        (e: { code?: string }) => e.code === 'FIREWALL_UNAVAILABLE',
      );
      await gate.sweep();
      const audited = (await store.auditEvents()).filter((e) => e.type.startsWith('gate.'));
      assert.deepEqual(audited.map((e) => [e.type, (e.detail as { targets: string[] }).targets]), [['gate.unavailable', ['dc-a', 'dc-b']]]);
      assert.deepEqual(up, [[nft.scope, false], [nft.scope, false]]);
      assert.deepEqual(restored, []);
      assert.equal((await store.verifyAudit()).ok, true);
    } finally {
      await db.close();
    }
  });
});
