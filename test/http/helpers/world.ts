// A broker with a memory firewall and a real test IdP, for in-process route tests (supertest) and the property campaign.
import request from 'supertest';
import type { PortcullisOptions } from '../../../src/app.ts';
import type { TableFirewall } from '../../../src/firewall/memory.ts';
import { startBroker, tempDir, testConfig, type RunningBroker } from '../../helpers/broker.ts';
import { startTestIdp, type TestIdp } from '../../helpers/idp.ts';

export interface ApiWorld {
  idp: TestIdp;
  broker: RunningBroker;
  /** A valid ID token of alice (engineers, MFA). */
  token: string;
  fw: TableFirewall;
  /** The store's URL (a SQLite file), for a second connection that fails the store from outside. */
  storeUrl: string;
  http: () => ReturnType<typeof request>;
  stop(): Promise<void>;
}

export const USERS = {
  alice: { email: 'alice@example.test', groups: ['engineers'] },
  bob: { email: 'bob@example.test', groups: ['engineers'] },
};

export async function startApiWorld(overrides: (dir: string, idp: TestIdp) => Record<string, unknown> = () => ({}), opts: PortcullisOptions = {}): Promise<ApiWorld> {
  const tmp = tempDir();
  const idp = await startTestIdp({ mfa: 'amr-mfa', users: USERS });
  const oidc = {
    issuer: idp.issuer,
    dangerouslyAllowHttpIssuer: true,
    clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } },
  };
  const raw = testConfig(tmp.dir, { oidc, ...overrides(tmp.dir, idp) });
  const broker = await startBroker(raw, opts);
  const token = await idp.getIdToken('alice');
  return {
    idp,
    broker,
    token,
    fw: broker.app.firewalls.get('lab-pc') as TableFirewall,
    storeUrl: (raw.store as { url: string }).url,
    http: () => request(broker.app.http),
    async stop() {
      await broker.stop();
      await idp.close();
      tmp.cleanup();
    },
  };
}
