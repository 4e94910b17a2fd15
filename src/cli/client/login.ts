// `portcullis login | logout | whoami`: device-flow sign-in per profile, sign-out, and who the broker thinks you are.
import type { Command } from 'commander';
import { ProfileStore, profileName } from '../profiles.ts';
import { BrokerApi } from './api.ts';
import { openBrowser } from './browser.ts';
import { resolveOidc } from './cli-config.ts';
import { clientCommand, openSession, run, type ClientOptions } from './command.ts';
import { hintFor } from '../../errors.ts';
import { CliError, usage } from './cli-error.ts';
import { humanSeconds, note, out, printJson, reportError } from './output.ts';
import { rememberSecret } from './secrets.ts';
import { isLoopbackUrl, normaliseBaseUrl } from './urls.ts';

interface Me {
  sub: string;
  email?: string;
  name?: string;
  groups?: string[];
  mfa?: boolean;
  authTime?: number;
}

export function registerLoginCommands(program: Command): void {
  clientCommand(program, 'login', 'sign in to a broker with your identity provider (device code, MFA at the IdP)', {
    json: false,
    examples: [
      'portcullis login --server https://portcullis.example.com',
      'portcullis login --profile acme --server https://jit.acme.example --issuer https://login.acme.example --client-id portcullis-cli',
      'PORTCULLIS_PROFILE=acme portcullis login          # again, same broker',
    ],
  })
    .option('-s, --server <url>', "the broker's URL (remembered in the profile)")
    .option('--issuer <url>', 'OpenID provider to sign in with (default: what the broker publishes)')
    .option('--client-id <id>', "the CLI's client id at that provider (with --issuer)")
    .option('--scope <scopes>', 'scopes to ask for (default: "openid email profile groups offline_access")')
    .option('--no-browser', 'only print the URL; do not try to open a browser')
    .action((opts: ClientOptions & { server?: string; issuer?: string; clientId?: string; scope?: string; browser: boolean }) => run(opts, () => login(opts)));

  clientCommand(program, 'logout', "forget this profile's tokens (and revoke the refresh token at the identity provider)", {
    json: false,
    examples: ['portcullis logout', 'portcullis logout --profile acme --forget   # also forget the broker address'],
  })
    .option('--forget', "also remove the profile's settings (broker and identity provider)")
    .action((opts: ClientOptions & { forget?: boolean }) => run(opts, () => logout(opts)));

  clientCommand(program, 'whoami', 'show who you are signed in as, and whether your sign-in counts as MFA', {
    json: true,
    examples: ['portcullis whoami', 'portcullis whoami --profile acme --json'],
  }).action((opts: ClientOptions) => run(opts, () => whoami(opts)));
}

async function login(opts: ClientOptions & { server?: string; issuer?: string; clientId?: string; scope?: string; browser: boolean }): Promise<number> {
  const name = profileName(opts.profile);
  const flag = opts.profile ? ` --profile ${name}` : '';
  const store = new ProfileStore();
  const previous = store.readSettings(name);
  const server = opts.server !== undefined ? normaliseBaseUrl(opts.server, '--server') : previous?.server;
  if (!server) throw usage('which broker? this profile has none yet', `portcullis login${flag} --server https://YOUR-BROKER`);
  const oidc = await resolveOidc(server, { issuer: opts.issuer, clientId: opts.clientId, scope: opts.scope, previous: previous?.server === server ? previous : undefined });

  const { startDeviceLogin } = await import('../../identity/device.ts');
  const device = await startDeviceLogin({ issuer: oidc.issuer, clientId: oidc.clientId, scope: oidc.scope, dangerouslyAllowHttp: isLoopbackUrl(oidc.issuer) });
  const direct = device.verificationUriComplete;
  // Installed before the code is shown: whoever reads the code may press Ctrl-C at once. The provider's polling
  // interval can be seconds long, so the cancel does not wait for it.
  process.once('SIGINT', () => process.exit(reportError(new CliError('CANCELLED', 'sign-in cancelled; nothing was saved'), false)));
  out(`Sign in to ${server} (profile ${name}) at ${oidc.issuer}:`);
  out(`  open: ${device.verificationUri}`);
  out(`  code: ${device.userCode}`);
  if (direct) out(`  (or open ${direct} , which fills in the code)`);
  out(`The code expires in ${humanSeconds(device.expiresInSeconds)}. Waiting for you to finish (Ctrl-C to cancel)...`);
  if (opts.browser && process.stdout.isTTY && openBrowser(direct ?? device.verificationUri)) note('(opened your browser)');

  const tokens = await device.wait();
  rememberSecret(tokens.idToken);
  if (tokens.refreshToken) rememberSecret(tokens.refreshToken);
  store.writeSettings(name, { server, issuer: oidc.issuer, clientId: oidc.clientId, scope: oidc.scope });
  store.writeTokens(name, tokens);

  // The broker has the last word on the token (audience, MFA rule); a token it refuses is not kept.
  let me: Me;
  try {
    me = await new BrokerApi({ name, flag, store, settings: { server, issuer: oidc.issuer, clientId: oidc.clientId, scope: oidc.scope } }).get<Me>('/me');
  } catch (e) {
    if (e instanceof CliError && e.exit === 3) {
      store.deleteTokens(name);
      throw new CliError(e.code, `signed in at the identity provider, but the broker refuses the sign-in: ${e.message}`, { hint: hintFor(e.code, flag) });
    }
    throw e;
  }
  out(`Signed in as ${describe(me)}${me.groups?.length ? `; groups: ${me.groups.join(', ')}` : ''}; MFA: ${me.mfa === false ? 'no' : 'yes'}.`);
  out(`Tokens saved in ${store.tokenPath(name)} (readable only by you).`);
  return 0;
}

async function logout(opts: ClientOptions & { forget?: boolean }): Promise<number> {
  const name = profileName(opts.profile);
  const store = new ProfileStore();
  const settings = store.readSettings(name);
  const tokens = store.readTokens(name);
  let revoked = false;
  if (settings && tokens?.refreshToken) {
    rememberSecret(tokens.refreshToken);
    revoked = await revokeRefreshToken(settings.issuer, settings.clientId, tokens.refreshToken);
  }
  const had = store.deleteTokens(name);
  if (opts.forget) store.deleteSettings(name);
  if (!had && !settings) {
    out(`Profile ${name}: nothing to sign out of.`);
    return 0;
  }
  out(`Signed out of profile ${name}${settings ? ` (${settings.server})` : ''}.${tokens?.refreshToken ? (revoked ? ' The refresh token was revoked at the identity provider.' : ' The identity provider could not revoke the refresh token; it expires on its own.') : ''}`);
  if (opts.forget) out('The profile settings were removed too.');
  return 0;
}

/** Best effort: the local copy is deleted whatever the provider says. */
async function revokeRefreshToken(issuer: string, clientId: string, refreshToken: string): Promise<boolean> {
  try {
    const [{ relyingParty }, client] = await Promise.all([import('../../identity/rp.ts'), import('openid-client')]);
    const cfg = await relyingParty({ issuer, clientId, dangerouslyAllowHttp: isLoopbackUrl(issuer) })();
    await client.tokenRevocation(cfg, refreshToken, { token_type_hint: 'refresh_token' });
    return true;
  } catch {
    return false;
  }
}

async function whoami(opts: ClientOptions): Promise<number> {
  const s = openSession(opts);
  const api = new BrokerApi(s);
  const me = await api.get<Me>('/me');
  const expiresAt = s.store.readTokens(s.name)?.expiresAt;
  if (opts.json) {
    printJson({ profile: s.name, server: s.settings.server, issuer: s.settings.issuer, user: me, tokenExpiresAt: expiresAt ? new Date(expiresAt).toISOString() : null });
    return 0;
  }
  out(`${describe(me)}`);
  out(`  profile:   ${s.name}`);
  out(`  broker:    ${s.settings.server}`);
  out(`  issuer:    ${s.settings.issuer}`);
  out(`  groups:    ${me.groups?.length ? me.groups.join(', ') : '(none)'}`);
  out(`  MFA:       ${me.mfa === false ? 'no (requests will be refused; sign in again with MFA)' : 'yes'}`);
  if (me.authTime) out(`  signed in: ${new Date(me.authTime * 1000).toLocaleString()} (${humanSeconds(Date.now() / 1000 - me.authTime)} ago)`);
  return 0;
}

function describe(me: Me): string {
  const who = me.email ?? me.name ?? me.sub;
  return who === me.sub ? me.sub : `${who} (${me.sub})`;
}
