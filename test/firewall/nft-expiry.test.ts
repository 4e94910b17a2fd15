// onExpiry in real namespaces: a connection established during a grant is cut when the grant ends
// (`cut`, the default) or keeps working past it while new connections are refused (`keep`). The grant
// ends by close() (the same removal the kernel's timeout does), so "after the end" is exact, not timed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { requireOrSkip } from '../helpers/env.ts';
import { createLab, LAB_ADDR, netnsUnavailable, nftIn } from '../helpers/netns.ts';
import { NftablesAdapter } from '../../src/firewall/nftables.ts';
import type { GrantId } from '../../src/domain/index.ts';

const unavailable = netnsUnavailable();
const PORT = 3390;

describe('onExpiry: cut and keep', { concurrency: false }, () => {
  it('cut ends the established connection when the grant ends; keep lets it finish and refuses a new one', async (t) => {
    if (!requireOrSkip(t, unavailable === undefined, unavailable ?? '')) return;
    const lab = await createLab([]);
    try {
      await lab.echo(PORT);
      // Two machines behind the gateway: one kept, one cut (the default), in one table.
      const fw = new NftablesAdapter({ kind: 'nftables', netns: lab.gw, table: 'portcullis' }, {
        targets: [
          { id: 'keep-pc', destinations: [LAB_ADDR.gw4], ports: [PORT], protocols: ['tcp'], onExpiry: 'keep' },
          { id: 'cut-pc', destinations: [LAB_ADDR.other4], ports: [PORT], protocols: ['tcp'] },
        ],
      });
      await fw.init();
      const grant = (id: string, targetId: string) => fw.open({ grantId: id as GrantId, targetId, source: `${LAB_ADDR.client4}/32`, port: PORT, protocol: 'tcp', expiresAt: Date.now() + 600_000 });

      assert.equal(await lab.probe(LAB_ADDR.gw4, { port: PORT }), false, 'closed before any grant');
      assert.equal(await lab.probe(LAB_ADDR.other4, { port: PORT }), false, 'closed before any grant');
      const keepRef = await grant('g_keep', 'keep-pc');
      const cutRef = await grant('g_cut', 'cut-pc');
      const kept = await lab.session(LAB_ADDR.gw4, PORT);
      const cut = await lab.session(LAB_ADDR.other4, PORT);
      assert.equal(await kept.send('during-1'), true);
      assert.equal(await cut.send('during-1'), true);

      await fw.close([keepRef, cutRef]);
      assert.equal((await fw.list()).length, 0, 'both grants are gone from the table');
      assert.equal(await kept.send('after-1'), true, 'keep: the connection established during the grant still works');
      assert.equal(await kept.send('after-2'), true);
      assert.equal(await lab.probe(LAB_ADDR.gw4, { port: PORT }), false, 'keep: a new connection is refused');
      assert.equal(await cut.send('after-1'), false, 'cut: the established connection no longer carries data');
      assert.equal(await lab.probe(LAB_ADDR.other4, { port: PORT }), false, 'cut: a new connection is refused');
      // The keep rule is part of the verified baseline.
      assert.equal((await fw.check()).ok, true);
      assert.match(nftIn(lab.gw, ['list', 'chain', 'inet', 'portcullis', 'gate']), /ct state established,related ip daddr \. meta l4proto \. th dport @keep4 accept/);
      kept.close();
      cut.close();
    } finally {
      await lab.destroy();
    }
  });
});
