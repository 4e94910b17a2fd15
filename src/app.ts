// The composition root: the one place that builds the store, policy, identity, firewalls,
// broker, reaper and HTTP app from a Config and wires them together.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import type express from 'express';
import { JsonlSink } from './audit/jsonl.ts';
import { Broker } from './broker/broker.ts';
import { GateKeeper } from './broker/gate.ts';
import { AttemptWatcher } from './broker/attempts.ts';
import { IdleWatcher } from './broker/idle.ts';
import { ExposureWatch } from './broker/exposure-watch.ts';
import { parseDuration } from './config/duration.ts';
import type { Config, FirewallConfig, TargetConfig } from './config/schema.ts';
import { PortcullisError } from './errors.ts';
import type { FirewallAdapter } from './firewall/port.ts';
import { buildFirewalls, defaultSimulatedPath } from './firewall/registry.ts';
import { instrumentFirewalls } from './firewall/instrumented.ts';
import type { DevIdp } from './dev/idp.ts';
import { createHttpApp } from './http/app.ts';
import { clientErrorHandler } from './http/errors.ts';
import { RateLimits } from './http/rate-limit.ts';
import { RefusalBudget, summaryEvent } from './http/refusal-budget.ts';
import { bearerAuthn, type Authn } from './http/authn.ts';
import { createWebAuth, type WebAuthSettings } from './http/web-auth.ts';
import { webRouter } from './http/web/router.ts';
import { securityHeaders } from './http/web/security.ts';
import type { TokenVerifier } from './identity/port.ts';
import { kyselySessionStore } from './identity/sessions.ts';
import { createTokenVerifier } from './identity/tokens.ts';
import { createLogger, errorFields, type Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { loadPolicyEngine, type CedarPolicyEngine } from './policy/cedar.ts';
import { Reaper } from './reaper/reaper.ts';
import { openCoordination } from './store/coordination.ts';
import { openDb } from './store/db.ts';
import { Store } from './store/store.ts';
import type { SlackWiring } from './slack/wire.ts';

export interface PortcullisOptions {
  log?: Logger;
  clock?: () => number;
  /** Tests: build some firewall kinds by other means (e.g. a memory twin they can inspect). */
  firewallFactories?: Partial<Record<FirewallConfig['kind'], (cfg: FirewallConfig, target: TargetConfig) => FirewallAdapter>>;
  /** Tests: verify credentials by other means. */
  verifier?: TokenVerifier;
  /** Tests: notification retry timing and Slack's acknowledgement deadline. */
  slack?: { retry?: { baseMs?: number; maxMs?: number; maxAttempts?: number }; ackMs?: number };
}

export interface Portcullis {
  config: Config;
  store: Store;
  broker: Broker;
  reaper: Reaper;
  policy: CedarPolicyEngine;
  firewalls: Map<string, FirewallAdapter>;
  /** Verifies and restores the backends' baselines (the reaper runs it every sweep). */
  gate: GateKeeper;
  /** Reads the gate's attempt counters each sweep; `flush()` audits the current window now. */
  attempts: AttemptWatcher;
  metrics: Metrics;
  http: express.Express;
  /** Removes expired sign-ins and sessions and writes the summary of suppressed refusals; runs every minute. */
  housekeep(): Promise<void>;
  /** The Slack transport and notification outbox, when configured. */
  slack?: SlackWiring | undefined;
  /** Recovers and arms the reaper, then listens on server.listen (port 0 picks a free one). */
  start(): Promise<{ url: string; issuer: string; banner: string[] }>;
  stop(): Promise<void>;
}

export async function createPortcullis(config: Config, opts: PortcullisOptions = {}): Promise<Portcullis> {
  const log = opts.log ?? createLogger();
  const db = await openDb(config.store.url);
  const store = new Store(db, opts.clock);
  const closers: (() => Promise<void>)[] = [() => db.close()];
  // Several replicas on PostgreSQL: liveness, one reconciler at a time, and each other's grants' expiries.
  const coordination = db.dialect === 'postgres' ? await openCoordination(config.store.url, log).catch(async (e) => {
    await db.close();
    throw e;
  }) : undefined;
  if (coordination) {
    store.coordinate(coordination);
    closers.push(() => coordination.close());
  }
  try {
    // Counted once the metrics exist; a sink failure before that is only logged.
    let sinkFailed = (e: unknown) => log.error('audit: a listener failed; the store has the events and the sink catches up', errorFields(e));
    store.onListenerFailure((e) => sinkFailed(e));
    if (config.audit.jsonl) {
      const sink = new JsonlSink(config.audit.jsonl);
      sink.follow(store, (e) => sinkFailed(e));
      closers.push(async () => sink.close());
      // A full disk at start must not stop the broker: the store is the source of truth.
      const caught = await sink.catchUp(store).catch((e) => {
        sinkFailed(e);
        return 0;
      });
      if (caught) log.warn('audit: appended events the JSONL file was missing', { count: caught });
    }

    const policy = loadPolicyEngine({ dir: config.policy.dir, timeZone: config.policy.timeZone });
    const firewalls = await buildFirewalls(config.targets, {
      simulatedPath: defaultSimulatedPath(config.store.url),
      factories: opts.firewallFactories,
      attempts: { size: config.watch.attempts.setSize, timeoutSeconds: parseDuration(config.watch.attempts.timeout)! },
    });
    for (const fw of new Set(firewalls.values())) if (fw.shutdown) closers.push(() => fw.shutdown!());

    const metrics = new Metrics(() => store.countByState());
    const logSinkFailure = sinkFailed;
    sinkFailed = (e) => {
      metrics.auditSinkFailures.inc();
      logSinkFailure(e);
    };
    store.onAudit((events) => {
      for (const e of events) metrics.auditEvents.inc({ type: e.type });
    });

    const seconds = (d: string) => parseDuration(d)!;
    const attempts = new AttemptWatcher({
      store,
      firewalls,
      log,
      now: opts.clock,
      settings: { windowMs: seconds(config.watch.attempts.window) * 1000, top: config.watch.attempts.top, alertPerMinute: config.watch.attempts.alertPerMinute, alertOpenWindow: config.watch.attempts.alertOpenWindow },
      hooks: {
        onAttempts: (target, port, protocol, n) => metrics.gateBlockedAttempts.inc({ target, port: String(port), protocol }, n),
        onOverflow: (backend, n) => metrics.gateAttemptsOverflow.inc({ backend }, n),
        onSnapshot: (sources, top) => {
          metrics.gateAttemptSources.reset();
          for (const [target, n] of sources) metrics.gateAttemptSources.set({ target }, n);
          metrics.gateAttemptsBySource.reset();
          for (const s of top) metrics.gateAttemptsBySource.set({ source: s.source, target: s.target ?? '-', port: String(s.port), protocol: s.protocol }, s.count);
        },
      },
    });
    const broker = new Broker({
      store,
      policy: () => policy,
      firewalls: instrumentFirewalls(firewalls, metrics),
      targets: config.targets,
      log,
      clock: opts.clock,
      currentAttempts: () => attempts.current(),
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
        auditReaderGroups: config.audit.readerGroups,
      },
    });
    closers.push(() => attempts.flush());
    const gate = new GateKeeper({
      store,
      firewalls,
      log,
      now: opts.clock,
      attempts,
      idle: new IdleWatcher({
        store,
        firewalls,
        timeouts: new Map(config.targets.filter((t) => t.idleTimeout !== undefined).map((t) => [t.id, seconds(t.idleTimeout!) * 1000])),
        close: (grants, reason, actor) => broker.close(grants, reason, actor),
        log,
        now: opts.clock,
      }),
      onRestored: (backend) => metrics.gateRestored.inc({ backend }),
      onChecked: (backend, ok) => metrics.gateUp.set({ backend }, ok ? 1 : 0),
    });
    const reaper = new Reaper(broker, {
      sweep: config.reaper.sweep,
      log,
      clock: opts.clock,
      onLag: (ms) => metrics.expiryLagSeconds.observe(ms / 1000),
      gate: () => gate.sweep(),
    });
    coordination?.onGrantActive((_id, expiresAt) => reaper.wake(expiresAt));

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
    const limitsCfg = config.server.rateLimits;
    const limits = new RateLimits(
      {
        windowSeconds: seconds(limitsCfg.window),
        signInPerAddress: limitsCfg.signInPerAddress,
        refusedPerAddress: limitsCfg.refusedPerAddress,
        grantRequestsPerUser: limitsCfg.grantRequestsPerUser,
        grantRequestsPerAddress: limitsCfg.grantRequestsPerAddress,
        inFlightSignInsPerAddress: limitsCfg.inFlightSignInsPerAddress,
        inFlightSignIns: limitsCfg.inFlightSignIns,
      },
      (limit) => metrics.rateLimited.inc({ limit }),
    );
    const refusals = new RefusalBudget({
      perPrefix: config.server.refusalAuditPerMinute,
      global: config.server.refusalAuditGlobalPerMinute,
      now: opts.clock,
      onSuppressed: (kind) => metrics.refusalsUnaudited.inc({ kind }),
    });
    const sessions = kyselySessionStore(db.kysely);
    const web = createWebAuth({ settings: () => webSettings, sessions, bearer, audit: (e) => store.audit(e), signedIn: (p) => broker.noteSignIn(p), log, now: opts.clock, scope: config.oidc.scopes.join(' '), limits, refusals });
    const mounts: { path: string; handler: express.RequestHandler | express.Router }[] = [{ path: '/', handler: securityHeaders(() => webSettings?.oidc.issuer) }];
    // Slack's signature covers the raw body: its router is mounted before anything that parses bodies.
    // Loaded only when configured: a broker without Slack does not pay for its modules.
    const slack = config.slack || config.dev.simulatedSlack ? (await import('./slack/wire.ts')).wireSlack({ config, db: db.kysely, store, broker, policy: () => policy, authn: web.authn, sessions, log, clock: opts.clock, retry: opts.slack?.retry, ackMs: opts.slack?.ackMs }) : undefined;
    let devSlack: import('./dev/slack/workspace.ts').SlackWorkspace | undefined;
    if (slack) {
      mounts.push({ path: '/slack', handler: slack.router });
      closers.push(() => slack.outbox.stop());
    }
    if (slack?.simulated) mounts.push({ path: '/dev/slack', handler: (req, res, next) => (devSlack ? devSlack.router(req, res, next) : next()) });
    if (config.dev.embeddedIdp) {
      mounts.push({ path: '/idp', handler: (req, res, next) => (devIdp ? devIdp.handler(req, res, next) : next()) });
      closers.push(async () => devIdp?.close());
    }
    mounts.push({ path: '/', handler: web.router });
    mounts.push({
      path: '/',
      handler: webRouter({
        authn: web.authn,
        broker,
        firewalls,
        limits: { minDurationSeconds: seconds(config.grants.minDuration), maxDurationSeconds: seconds(config.grants.maxDuration), pendingTimeoutSeconds: seconds(config.grants.pendingTimeout) },
        issuer: () => webSettings?.oidc.issuer,
        policies: () => policy.describe(),
        timeZone: config.policy.timeZone,
        log,
      }),
    });

    const http = createHttpApp({
      broker,
      authn: web.authn,
      mounts,
      firewalls,
      metrics,
      log,
      trustProxy: config.server.trustProxy,
      refusalAuditPerMinute: config.server.refusalAuditPerMinute,
      refusals,
      limits,
      cliClientId: config.oidc.clients.cli?.id,
      maxDurationMinutes: parseDuration(config.grants.maxDuration)! / 60,
      cliConfig: () => (webSettings ? { issuer: webSettings.oidc.issuer, clientId: webSettings.oidc.clients.cli?.id ?? null, scopes: [...new Set([...config.oidc.scopes, 'offline_access'])] } : undefined),
      ready: async () => ({ policy: { ok: true, detail: `${policy.describe().length} policies (generation ${policy.generation})` }, gate: gate.readiness() }),
    });

    let server: Server | undefined;
    let housekeeping: NodeJS.Timeout | undefined;
    const clock = opts.clock ?? Date.now;
    const app: Portcullis = {
      config,
      store,
      broker,
      reaper,
      policy,
      firewalls,
      gate,
      attempts,
      metrics,
      http,
      async housekeep() {
        try {
          await sessions.sweep(clock());
          const summary = refusals.flush();
          if (summary) await store.audit(summaryEvent(summary));
        } catch (e) {
          log.warn('housekeeping failed; the next run retries', errorFields(e));
        }
      },
      slack,
      async start() {
        // Recovery first (reconcile at start: stale `opening` grants failed or adopted, `approved`
        // ones activated, orphans removed, timers armed): no request is accepted before it is done.
        await reaper.start();
        const [host, port] = splitListen(config.server.listen);
        // Headers up to 32 KiB reach the app, which refuses an oversized token by name; beyond
        // that Node refuses, and clientErrorHandler gives that refusal a JSON body and a code.
        server = createServer({ maxHeaderSize: 32 * 1024 }, http);
        server.on('clientError', clientErrorHandler);
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
            // Beside the store (./data for `npm start`): its keys and enrolments outlive a restart.
            stateDir: dirname(defaultSimulatedPath(config.store.url)),
          });
          oidc = { ...oidc, dangerouslyAllowHttpIssuer: true, clients: { web: webClient, cli } };
          banner = devIdp.bannerLines();
        }
        verifier ??= createTokenVerifier(oidc);
        webSettings = { oidc, publicUrl: url, verifier };
        housekeeping = setInterval(() => void app.housekeep(), 60_000);
        housekeeping.unref();
        if (config.exposure.schedule) closers.push(await scheduleExposureScan(config, store, log));
        if (slack) {
          const s = slack.resolve(url);
          if (slack.simulated) {
            const { createDemoWorkspace } = await import('./dev/slack/workspace.ts');
            devSlack = createDemoWorkspace({ brokerUrl: url, signingSecret: s.signingSecret, botToken: s.botToken, teamId: slack.simulated.teamId, approvalsChannel: slack.simulated.approvalsChannel, hookBase: `${url}/dev/slack` });
            banner.push(`SIMULATED SLACK: a demo workspace at ${url}/dev/slack (type /rdp help); no real Slack is contacted`);
          }
          await slack.outbox.start();
        }
        return { url, issuer: oidc.issuer, banner };
      },
      async stop() {
        await reaper.stop();
        if (housekeeping) clearInterval(housekeeping);
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

/** `exposure.schedule`: the region-wide scan on a cron; AWS code is loaded only when it is configured. */
async function scheduleExposureScan(config: Config, store: Store, log: Logger): Promise<() => Promise<void>> {
  const cron = (await import('node-cron')).default;
  const expr = config.exposure.schedule!;
  if (!cron.validate(expr)) throw new PortcullisError('CONFIG_INVALID', `exposure.schedule "${expr}" is not a cron expression`, { field: 'exposure.schedule' });
  const { scanRegion } = await import('./firewall/aws-region-scan.ts');
  const aws = config.targets.map((t) => t.firewall).filter((f): f is Extract<typeof f, { kind: 'aws-security-group' }> => f.kind === 'aws-security-group');
  const regions = config.exposure.regions ?? [...new Set(aws.map((f) => f.region))];
  const ports = [...new Set(config.targets.flatMap((t) => t.ports))];
  const watch = new ExposureWatch({
    store,
    regions,
    log,
    scan: (region) => scanRegion({ region, ports: ports.length ? ports : [3389], endpoint: aws.find((f) => f.region === region && f.endpoint)?.endpoint }),
  });
  const task = cron.schedule(expr, () => void watch.run().catch((e: unknown) => log.warn('exposure: scheduled scan failed', errorFields(e))), { noOverlap: true, name: 'portcullis-exposure' });
  return async () => {
    await task.stop();
  };
}
