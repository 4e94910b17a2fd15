// The composition root: the one place that builds the store, policy, identity, firewalls,
// broker, reaper and HTTP app from a Config and wires them together.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import { JsonlSink } from './audit/jsonl.ts';
import { Broker } from './broker/broker.ts';
import { parseDuration } from './config/duration.ts';
import type { Config, FirewallConfig, TargetConfig } from './config/schema.ts';
import { PortcullisError } from './errors.ts';
import type { FirewallAdapter } from './firewall/port.ts';
import { buildFirewalls, defaultSimulatedPath } from './firewall/registry.ts';
import { instrumentFirewalls } from './firewall/instrumented.ts';
import type { DevIdp } from './dev/idp.ts';
import { createHttpApp } from './http/app.ts';
import { bearerAuthn, type Authn } from './http/authn.ts';
import { createWebAuth, type WebAuthSettings } from './http/web-auth.ts';
import { webRouter } from './http/web/router.ts';
import type { TokenVerifier } from './identity/port.ts';
import { kyselySessionStore } from './identity/sessions.ts';
import { createTokenVerifier } from './identity/tokens.ts';
import { createLogger, errorFields, type Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { loadPolicyEngine, type CedarPolicyEngine } from './policy/cedar.ts';
import { Reaper } from './reaper/reaper.ts';
import { openDb } from './store/db.ts';
import { Store } from './store/store.ts';

export interface PortcullisOptions {
  log?: Logger;
  clock?: () => number;
  /** Tests: build some firewall kinds by other means (e.g. a memory twin they can inspect). */
  firewallFactories?: Partial<Record<FirewallConfig['kind'], (cfg: FirewallConfig, target: TargetConfig) => FirewallAdapter>>;
  /** Tests: verify credentials by other means. */
  verifier?: TokenVerifier;
}

export interface Portcullis {
  config: Config;
  store: Store;
  broker: Broker;
  reaper: Reaper;
  policy: CedarPolicyEngine;
  firewalls: Map<string, FirewallAdapter>;
  metrics: Metrics;
  http: express.Express;
  /** Listens on server.listen (port 0 picks a free one), recovers and arms the reaper. */
  start(): Promise<{ url: string; issuer: string; banner: string[] }>;
  stop(): Promise<void>;
}

export async function createPortcullis(config: Config, opts: PortcullisOptions = {}): Promise<Portcullis> {
  const log = opts.log ?? createLogger();
  const db = await openDb(config.store.url);
  const store = new Store(db, opts.clock);
  const closers: (() => Promise<void>)[] = [() => db.close()];
  try {
    if (config.audit.jsonl) {
      const sink = new JsonlSink(config.audit.jsonl);
      const caught = await sink.catchUp(store);
      if (caught) log.warn('audit: appended events the JSONL file was missing', { count: caught });
      store.onAudit((events) => sink.write(events));
    }

    const policy = loadPolicyEngine({ dir: config.policy.dir, timeZone: config.policy.timeZone });
    const firewalls = await buildFirewalls(config.targets, {
      simulatedPath: defaultSimulatedPath(config.store.url),
      factories: opts.firewallFactories,
    });
    for (const fw of new Set(firewalls.values())) if (fw.shutdown) closers.push(() => fw.shutdown!());

    const metrics = new Metrics(() => store.countByState());
    store.onAudit((events) => {
      for (const e of events) metrics.auditEvents.inc({ type: e.type });
    });

    const seconds = (d: string) => parseDuration(d)!;
    const broker = new Broker({
      store,
      policy: () => policy,
      firewalls: instrumentFirewalls(firewalls, metrics),
      targets: config.targets,
      log,
      clock: opts.clock,
      limits: {
        minDurationSeconds: seconds(config.grants.minDuration),
        maxDurationSeconds: seconds(config.grants.maxDuration),
        pendingTimeoutSeconds: seconds(config.grants.pendingTimeout),
        reasonPattern: config.grants.reasonPattern === undefined ? undefined : new RegExp(config.grants.reasonPattern, 'u'),
        maxActivePerUser: config.grants.maxActivePerUser,
        maxSource: config.policy.maxSourcePrefix,
        mfaMaxAgeSeconds: seconds(config.oidc.mfa.maxAge),
        timeZone: config.policy.timeZone,
        adminGroups: config.grants.adminGroups,
      },
    });
    const reaper = new Reaper(broker, {
      sweep: config.reaper.sweep,
      log,
      clock: opts.clock,
      onLag: (ms) => metrics.expiryLagSeconds.observe(ms / 1000),
    });

    // The verifier needs the issuer, which for the embedded IdP is known only once we listen.
    let verifier: TokenVerifier | undefined = opts.verifier;
    let webSettings: WebAuthSettings | undefined;
    let devIdp: DevIdp | undefined;
    const bearer: Authn = {
      principal: (req) => {
        if (!verifier) throw new PortcullisError('IDP_UNAVAILABLE', 'the broker is still starting');
        return bearerAuthn(verifier).principal(req);
      },
    };
    const web = createWebAuth({ settings: () => webSettings, sessions: kyselySessionStore(db.kysely), bearer, audit: (e) => store.audit(e), log, now: opts.clock, scope: config.oidc.scopes.join(' ') });
    const mounts: { path: string; handler: express.RequestHandler | express.Router }[] = [];
    if (config.dev.embeddedIdp) {
      mounts.push({ path: '/idp', handler: (req, res, next) => (devIdp ? devIdp.handler(req, res, next) : next()) });
      closers.push(async () => devIdp?.close());
    }
    mounts.push({ path: '/', handler: web.router });
    mounts.push({ path: '/', handler: webRouter({ authn: web.authn, broker, limits: { minDurationSeconds: seconds(config.grants.minDuration), maxDurationSeconds: seconds(config.grants.maxDuration) }, issuer: () => webSettings?.oidc.issuer, log }) });

    const http = createHttpApp({
      broker,
      store,
      authn: web.authn,
      mounts,
      firewalls,
      metrics,
      log,
      trustProxy: config.server.trustProxy,
      refusalAuditPerMinute: config.server.refusalAuditPerMinute,
      cliClientId: config.oidc.clients.cli?.id,
      auditReaderGroups: [...config.audit.readerGroups, ...config.grants.adminGroups],
      maxDurationMinutes: parseDuration(config.grants.maxDuration)! / 60,
      cliConfig: () => (webSettings ? { issuer: webSettings.oidc.issuer, clientId: webSettings.oidc.clients.cli?.id ?? null, scopes: [...new Set([...config.oidc.scopes, 'offline_access'])] } : undefined),
      ready: async () => ({ policy: { ok: true, detail: `${policy.describe().length} policies (generation ${policy.generation})` } }),
    });

    let server: Server | undefined;
    const app: Portcullis = {
      config,
      store,
      broker,
      reaper,
      policy,
      firewalls,
      metrics,
      http,
      async start() {
        const [host, port] = splitListen(config.server.listen);
        server = createServer(http);
        await new Promise<void>((resolve, reject) => {
          server!.once('error', reject);
          server!.listen(port, host, () => resolve());
        });
        const addr = server.address() as AddressInfo;
        const url = config.server.publicUrl ?? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
        let oidc = { ...config.oidc, issuer: config.oidc.issuer ?? `${url}/idp` };
        let banner: string[] = [];
        if (config.dev.embeddedIdp) {
          // A fresh client secret each start: the development IdP and the broker are one process.
          const webClient = { id: config.oidc.clients.web?.id ?? 'portcullis-web', secret: randomBytes(24).toString('base64url') };
          const cli = { id: config.oidc.clients.cli?.id ?? 'portcullis-cli' };
          // Loaded only for the demo: oidc-provider is not needed against a real IdP.
          const { createDevIdp } = await import('./dev/idp.ts');
          devIdp = await createDevIdp({
            issuer: oidc.issuer,
            publicUrl: url,
            webClient: { ...webClient, redirectUris: [`${url}/auth/callback`], postLogoutRedirectUris: [`${url}/auth/signed-out`] },
            cliClient: cli,
          });
          oidc = { ...oidc, dangerouslyAllowHttpIssuer: true, clients: { web: webClient, cli } };
          banner = devIdp.bannerLines();
        }
        verifier ??= createTokenVerifier(oidc);
        webSettings = { oidc, publicUrl: url, verifier };
        await reaper.start(() => store.grantsInStates(['active']));
        return { url, issuer: oidc.issuer, banner };
      },
      async stop() {
        await reaper.stop();
        if (server) {
          server.closeAllConnections();
          await new Promise<void>((resolve) => server!.close(() => resolve()));
        }
        for (const c of closers.reverse()) await c().catch((e) => log.warn('shutdown step failed', errorFields(e)));
      },
    };
    return app;
  } catch (e) {
    for (const c of closers.reverse()) await c().catch(() => {});
    throw e;
  }
}

function splitListen(listen: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(listen)!;
  return [m[1]!, Number(m[2])];
}
