// A live broker (in this process) and a real oidc-provider for CLI tests, plus sign-in through the CLI's device flow.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TableFirewall } from '../../../src/firewall/memory.ts';
import { startBroker, tempDir, testConfig, type RunningBroker } from '../../helpers/broker.ts';
import { CookieJar, startTestIdp, type MfaMode, type TestIdp, type TestUser } from '../../helpers/idp.ts';
import { CliRunner, show, type CliResult } from './cli.ts';

/** The test IdP releases `groups` only for the groups scope, as Keycloak does with a mapper scope. */
export const SCOPE = 'openid email profile groups offline_access';

export const USERS: Record<string, TestUser> = {
  alice: { email: 'alice@example.test', name: 'Alice', groups: ['engineers'] },
  bob: { email: 'bob@example.test', name: 'Bob', groups: ['approvers', 'engineers', 'auditors'] },
  nina: { email: 'nina@example.test', groups: ['engineers'] },
};

export interface World {
  idp: TestIdp;
  broker: RunningBroker;
  cli: CliRunner;
  dir: string;
  configHome: string;
  firewall(target: string): TableFirewall;
  /** `portcullis login` as `user` into `profile`, approved at the provider's device page; returns the CLI's result. */
  login(profile: string, user: string, o?: { mfa?: MfaMode; args?: string[] }): Promise<CliResult>;
  /** Every token value the CLI has stored so far (read from its files), for leak checks. */
  tokensSeen: Set<string>;
  readTokens(profile: string): { idToken: string; refreshToken?: string; expiresAt: number };
  stop(): Promise<void>;
}

export async function startWorld(o: { idTokenTtlSeconds?: number } = {}): Promise<World> {
  const tmp = tempDir('portcullis-cli-');
  const idp = await startTestIdp({ mfa: 'amr-mfa', users: USERS, ...(o.idTokenTtlSeconds ? { idTokenTtlSeconds: o.idTokenTtlSeconds } : {}) });
  const broker = await startBroker(
    testConfig(tmp.dir, {
      oidc: {
        issuer: idp.issuer,
        dangerouslyAllowHttpIssuer: true,
        clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } },
      },
      audit: { jsonl: join(tmp.dir, 'audit.jsonl'), readerGroups: ['auditors'] },
      targets: [
        { id: 'lab-pc', description: 'Lab desktop', connect: 'lab-pc.example.test:3389', ports: [3389], tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } },
        { id: 'prod-db', description: 'Production database server', connect: 'prod-db.example.test', ports: [3389, 3390], tags: { env: 'prod', customer: 'internal' }, firewall: { kind: 'memory' } },
      ],
    }),
  );
  const configHome = join(tmp.dir, 'xdg');
  const cli = new CliRunner(configHome);
  const tokensSeen = new Set<string>();
  const world: World = {
    idp,
    broker,
    cli,
    dir: tmp.dir,
    configHome,
    tokensSeen,
    firewall: (t) => broker.app.firewalls.get(t) as TableFirewall,
    readTokens(profile) {
      const t = JSON.parse(readFileSync(join(configHome, 'portcullis', 'credentials', `${profile}.json`), 'utf8'));
      tokensSeen.add(t.idToken);
      if (t.refreshToken) tokensSeen.add(t.refreshToken);
      return t;
    },
    async login(profile, user, lo = {}) {
      const p = cli.start(['login', '--server', broker.url, '--profile', profile, '--scope', SCOPE, ...(lo.args ?? [])]);
      const code = await p.waitFor(/code: (\S+)/);
      await idp.approveDevice(code[1]!, new CookieJar(), { user, mfa: lo.mfa });
      const r = await p.done;
      if (r.code === 0) world.readTokens(profile);
      return r;
    },
    async stop() {
      await broker.stop();
      await idp.close();
      tmp.cleanup();
    },
  };
  return world;
}

export function assertExit(r: CliResult, code: number, seen?: Set<number>): void {
  if (r.code !== code) throw new Error(`expected exit ${code}, got ${show(r)}`);
  seen?.add(code);
}
