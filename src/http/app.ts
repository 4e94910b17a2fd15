// The express app: JSON API under /api/v1, health, readiness and metrics. Controllers stay thin:
// they authenticate, call one use case and shape the answer.
import express, { type Request, type Router } from 'express';
import type { Broker } from '../broker/broker.ts';
import { canonicalAddress, forwardedAddress } from '../broker/source.ts';
import { formatDuration } from '../config/duration.ts';
import type { Grant, GrantId, Principal } from '../domain/index.ts';
import type { TargetConfig } from '../config/schema.ts';
import { isPortcullisError, PortcullisError } from '../errors.ts';
import type { FirewallAdapter } from '../firewall/port.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Authn } from './authn.ts';
import { errorHandler } from './errors.ts';
import { jsonBody } from './body.ts';
import { RateLimits } from './rate-limit.ts';
import { RefusalBudget, summaryEvent } from './refusal-budget.ts';
import { requestId } from './request-id.ts';

export interface HttpDeps {
  broker: Broker;
  authn: Authn;
  firewalls: ReadonlyMap<string, FirewallAdapter>;
  metrics: Metrics;
  log: Logger;
  trustProxy: string[];
  /** Client id of the CLI; bearer tokens issued to it are the `cli` channel. */
  cliClientId?: string | undefined;
  /** Refused credentials audited per source address per minute (the rest are counted). */
  refusalAuditPerMinute?: number;
  /** The audit budget of anonymous refusals, shared with web sign-in (built from refusalAuditPerMinute when absent). */
  refusals?: RefusalBudget;
  /** Rate limits, shared with web sign-in (defaults when absent). */
  limits?: RateLimits;
  /** grants.maxDuration in minutes: the cap of the per-target "longest you may ask for". */
  maxDurationMinutes?: number;
  /** What `portcullis login` needs to find the IdP (public: issuer and the public CLI client id). */
  cliConfig?: () => { issuer: string; clientId: string | null; scopes: string[] } | undefined;
  /** Routers mounted before the API (the development IdP at /idp, web sign-in). */
  mounts?: { path: string; handler: express.RequestHandler | Router }[];
  /** Extra readiness checks (policy engine, IdP). */
  ready?: () => Promise<Record<string, { ok: boolean; detail: string }>>;
}

/** Longer is no ID token we issue or accept; refused by name rather than by Node's bare 431. */
export const MAX_TOKEN_BYTES = 16 * 1024;

const AUTH_CODES = new Set(['AUTH_REQUIRED', 'TOKEN_MALFORMED', 'TOKEN_BAD_SIGNATURE', 'TOKEN_WRONG_ISSUER', 'TOKEN_WRONG_AUDIENCE', 'TOKEN_EXPIRED', 'TOKEN_INVALID', 'TOKEN_NOT_ID_TOKEN', 'TOKEN_BAD_SUBJECT', 'TOKEN_WRONG_AZP', 'TOKEN_ISSUED_IN_FUTURE', 'TOKEN_LIFETIME_TOO_LONG', 'TOKEN_TOO_OLD', 'TOKEN_AUTH_TIME_IN_FUTURE', 'MFA_REQUIRED', 'MFA_TOO_OLD']);

export function createHttpApp(deps: HttpDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy.length ? deps.trustProxy : false);
  app.use(requestId(deps.log));
  app.use((_req, res, next) => {
    res.set('X-Content-Type-Options', 'nosniff');
    res.set('Referrer-Policy', 'same-origin');
    next();
  });
  app.use((req, _res, next) => {
    const auth = req.headers.authorization;
    if (auth !== undefined && auth.length > MAX_TOKEN_BYTES) {
      next(new PortcullisError('HEADER_TOO_LARGE', `the Authorization header is longer than ${MAX_TOKEN_BYTES} bytes; no ID token is that long`, { field: 'authorization' }));
      return;
    }
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, { ok: boolean; detail: string; simulated?: boolean }> = {};
    checks.store = await deps.broker.storeHealth();
    for (const fw of new Set(deps.firewalls.values())) {
      try {
        const h = await fw.check();
        checks[`firewall:${fw.scope}`] = { ...h, simulated: fw.simulated };
      } catch {
        checks[`firewall:${fw.scope}`] = { ok: false, detail: 'backend did not answer', simulated: fw.simulated };
      }
    }
    Object.assign(checks, (await deps.ready?.()) ?? {});
    const simulated = [...deps.firewalls.values()].some((f) => f.simulated);
    const ok = Object.values(checks).every((c) => c.ok);
    res.status(ok ? 200 : 503).json({
      ok,
      ...(simulated ? { warning: 'SIMULATED FIREWALL: at least one target uses a simulated backend; no real port is opened for it' } : {}),
      checks,
    });
  });
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });

  app.get('/auth/cli-config', (_req, res) => {
    const c = deps.cliConfig?.();
    if (!c) {
      res.status(503).json({ error: { code: 'IDP_UNAVAILABLE', message: 'the broker is still starting' } });
      return;
    }
    res.json({ issuer: c.issuer, clientId: c.clientId, scopes: c.scopes });
  });

  for (const m of deps.mounts ?? []) app.use(m.path, m.handler);

  app.use('/api/v1', apiRouter(deps));
  app.use('/api', (_req, res) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: 'no such API route' } });
  });
  app.use(errorHandler(deps.log));
  return app;
}

function apiRouter(deps: HttpDeps): Router {
  const { broker, authn, metrics } = deps;
  const r = express.Router();
  r.use(jsonBody());
  r.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  /** Authenticates the caller; refusals are audited (without the credential, within a budget) and counted. */
  const seen = new Map<string, string>();
  const budget = deps.refusals ?? new RefusalBudget({ perPrefix: deps.refusalAuditPerMinute ?? 30, global: 300, onSuppressed: (kind) => metrics.refusalsUnaudited.inc({ kind }) });
  const limits = deps.limits ?? new RateLimits({}, (limit) => metrics.rateLimited.inc({ limit }));
  const who = async (req: Request): Promise<Principal> => {
    // A prefix that spent its refusal budget is answered before any verification, audit or write.
    await limits.refusedCheck(callerIp(req));
    try {
      const p = await authn.principal(req);
      // Remember group changes (for approval re-checks) without a write on every request.
      const print = JSON.stringify([p.groups, p.authTime, p.mfa]);
      if (seen.get(p.sub) !== print) {
        await broker.noteSignIn(p);
        if (seen.size > 10_000) seen.clear();
        seen.set(p.sub, print);
      }
      return p;
    } catch (e) {
      if (isPortcullisError(e) && AUTH_CODES.has(e.code)) {
        metrics.authFailures.inc({ code: e.code });
        const ip = callerIp(req);
        await limits.refusedNote(ip);
        const audits: (() => Promise<void>)[] = [];
        const summary = budget.flush();
        if (summary) audits.push(() => broker.recordTransportEvent(summaryEvent(summary)));
        if (budget.take(ip)) audits.push(() => broker.recordRefusal({ code: e.code, sourceIp: ip, path: req.path }));
        for (const audit of audits) {
          await audit().catch((err) => deps.log.warn('could not audit a refused credential', { code: (err as PortcullisError).code }));
        }
      }
      throw e;
    }
  };

  r.get('/me', async (req, res) => {
    const p = await who(req);
    res.json({ sub: p.sub, email: p.email, name: p.name, groups: p.groups, mfa: p.mfa, authTime: p.authTime, amr: p.amr, acr: p.acr });
  });

  r.get('/targets', async (req, res) => {
    const p = await who(req);
    const cap = deps.maxDurationMinutes ?? 480;
    res.json({
      targets: broker.listTargets().map((t) => {
        const limit = broker.durationLimit(p, t.id, callerIp(req), channelOf(deps, p), cap);
        return {
          ...targetView(t),
          maxDuration: limit.minutes ? formatDuration(limit.minutes * 60) : null,
          needsApproval: limit.minutes ? limit.approval : null,
          maxImmediateDuration: limit.immediateMinutes ? formatDuration(limit.immediateMinutes * 60) : null,
          // A policy about the reason decides here: the limits above hold for a reason it accepts.
          reasonDependent: limit.reasonDependent ?? false,
        };
      }),
    });
  });

  r.post('/grants', async (req, res) => {
    const p = await who(req);
    await limits.grantRequest(p.sub, callerIp(req));
    const end = metrics.decisionSeconds.startTimer();
    try {
      const { grant, outcome } = await broker.requestAccess(p, req.body ?? {}, { channel: channelOf(deps, p), callerIp: callerIp(req) });
      metrics.requests.inc({ outcome });
      res.status(outcome === 'active' ? 201 : 202).json({ grant: grantView(grant, broker) });
    } catch (e) {
      metrics.requests.inc({ outcome: isPortcullisError(e) ? e.code : 'error' });
      throw e;
    } finally {
      end();
    }
  });

  r.get('/grants', async (req, res) => {
    const p = await who(req);
    const limit = Math.min(Math.max(Number(req.query.limit ?? 100) || 100, 1), 1000);
    const view = req.query.view ?? 'mine';
    let grants: Grant[];
    if (view === 'approvable') grants = await broker.approvable(p, channelOf(deps, p));
    else if (view === 'all') grants = await broker.listGrants(p, { limit, all: true });
    else if (view === 'mine') grants = await broker.listGrants(p, { limit });
    else throw new PortcullisError('INVALID_REQUEST', 'view must be mine, approvable or all', { field: 'view' });
    res.json({ grants: grants.map((g) => grantView(g, broker)) });
  });

  r.get('/grants/:id', async (req, res) => {
    const p = await who(req);
    const { grant, approvals: recorded } = await broker.grantApprovals(p, req.params.id as GrantId, channelOf(deps, p));
    const approvals = recorded.map((a) => ({ approver: a.approver, decision: a.decision, comment: a.comment, at: new Date(a.createdAt).toISOString() }));
    res.json({ grant: { ...grantView(grant, broker), approvals } });
  });

  r.post('/grants/:id/revoke', async (req, res) => {
    const p = await who(req);
    res.json({ grant: grantView(await broker.revoke(p, req.params.id as GrantId), broker) });
  });

  r.post('/grants/:id/approve', async (req, res) => {
    const p = await who(req);
    res.json({ grant: grantView(await broker.approve(p, req.params.id as GrantId, req.body ?? {}, channelOf(deps, p)), broker) });
  });

  r.post('/grants/:id/deny', async (req, res) => {
    const p = await who(req);
    res.json({ grant: grantView(await broker.deny(p, req.params.id as GrantId, req.body ?? {}, channelOf(deps, p)), broker) });
  });

  r.post('/grants/:id/extend', async (req, res) => {
    const p = await who(req);
    await limits.grantRequest(p.sub, callerIp(req));
    res.json({ grant: grantView(await broker.extend(p, req.params.id as GrantId, req.body ?? {}, channelOf(deps, p)), broker) });
  });

  r.get('/audit', async (req, res) => {
    const p = await who(req);
    const after = Math.max(Number(req.query.after ?? 0) || 0, 0);
    const limit = Math.min(Math.max(Number(req.query.limit ?? 500) || 500, 1), 5000);
    const events = await broker.readAudit(p, { afterSeq: after, limit, grant: typeof req.query.grant === 'string' ? req.query.grant : undefined });
    res.json({ events, next: events.length === limit ? events[events.length - 1]!.seq : null });
  });

  r.get('/audit/verify', async (req, res) => {
    const v = await broker.verifyAudit(await who(req));
    res.status(v.ok ? 200 : 409).json(v);
  });

  return r;
}

/**
 * The caller's address after `trustProxy`, IPv4-mapped IPv6 unwrapped. An address a trusted proxy forwarded must be
 * one plain address: CIDR text or a zone id there is refused, never trimmed into something the rule would admit.
 */
export function callerIp(req: Request): string {
  const socket = req.socket.remoteAddress ?? '';
  const ip = req.ip ?? socket;
  if (ip === socket) return canonicalAddress(ip) ?? ip;
  const forwarded = forwardedAddress(ip);
  if (forwarded === undefined) {
    throw new PortcullisError('INVALID_SOURCE_IP', 'X-Forwarded-For names something other than one IP address', { field: 'X-Forwarded-For' });
  }
  return forwarded;
}

export function channelOf(deps: Pick<HttpDeps, 'cliClientId'>, p: Principal): Grant['channel'] {
  if (p.channel) return p.channel;
  return deps.cliClientId !== undefined && p.clientId === deps.cliClientId ? 'cli' : 'api';
}

function targetView(t: TargetConfig) {
  return { id: t.id, description: t.description ?? null, connect: t.connect ?? null, ports: t.ports, tags: t.tags, firewall: t.firewall.kind };
}

export function grantView(g: Grant, broker: Broker) {
  const target = broker.listTargets().find((t) => t.id === g.targetId);
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: g.id,
    target: g.targetId,
    port: g.port,
    source: g.source,
    state: g.state,
    closeReason: g.closeReason,
    reason: g.reason,
    requester: g.requester,
    durationSeconds: g.durationSeconds,
    channel: g.channel,
    policyIds: g.policyIds,
    createdAt: iso(g.createdAt),
    activatedAt: iso(g.activatedAt),
    expiresAt: iso(g.expiresAt),
    closedAt: iso(g.closedAt),
    secondsLeft: g.state === 'active' && g.expiresAt !== null ? Math.max(0, Math.round((g.expiresAt - Date.now()) / 1000)) : null,
    connect: target?.connect ?? null,
    failure: g.failure,
    requiredApprovals: g.requiredApprovals,
  };
}
