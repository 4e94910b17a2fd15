// The web UI: the requester's page, the approver's inbox, the grant page, the audit and admin views,
// static files, .rdp downloads, and the product's own 404 and 405 pages.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { AuditEvent } from '../../audit/chain.ts';
import type { AuditFilter } from '../../broker/audit-query.ts';
import { perTarget } from '../../broker/attempts-report.ts';
import type { Broker } from '../../broker/broker.ts';
import { LIVE_STATES, type Grant, type GrantId, type Principal } from '../../domain/index.ts';
import type { TargetConfig } from '../../config/schema.ts';
import { connectEndpoint, rdpFileText, rdpFilename, RdpAddressError } from '../../connect/rdp.ts';
import { isPortcullisError } from '../../errors.ts';
import type { FirewallAdapter } from '../../firewall/port.ts';
import { errorFields, type Logger } from '../../log.ts';
import { callerIp } from '../app.ts';
import type { Authn } from '../authn.ts';
import { loadAssets, type Assets } from './assets.ts';
import { durationLabel, render, type NavItem } from './render.ts';

export interface WebRouterDeps {
  /** The session-aware authn of web-auth: a GET needs no CSRF token. */
  authn: Authn;
  broker: Pick<Broker, 'getGrant' | 'grantApprovals' | 'grantEvents' | 'listTargets' | 'approvable' | 'inbox' | 'listGrants' | 'isAdmin' | 'mayReadAudit' | 'durationLimit' | 'searchAudit' | 'exportAudit' | 'verifyAudit' | 'storeHealth' | 'attemptsReport'>;
  /** grants.minDuration / maxDuration / pendingTimeout in seconds: the form never offers what the broker refuses. */
  limits: { minDurationSeconds: number; maxDurationSeconds: number; pendingTimeoutSeconds?: number };
  /** The OIDC issuer once known (kept for callers; the CSP reads it in security.ts). */
  issuer?: () => string | undefined;
  firewalls?: ReadonlyMap<string, FirewallAdapter>;
  /** Each policy's id and its plain-English comment, for refusals that explain themselves. */
  policies?: () => { id: string; comment: string }[];
  /** Where dates are shown (policy.timeZone). */
  timeZone?: string;
  log?: Logger;
}

/** The admin view's periods for blocked attempts (`?since=`). */
const ATTEMPT_WINDOWS = [
  { id: '1h', label: 'Last hour', ms: 3_600_000 },
  { id: '24h', label: 'Last 24 hours', ms: 86_400_000 },
  { id: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
] as const;
const DEFAULT_WINDOW = '24h';
/** Source rows shown; the rest is counted ("and N more", `portcullis attempts` lists them all). */
const ATTEMPT_ROWS = 50;
const NOT_SIGNED_IN = new Set(['AUTH_REQUIRED', 'IDP_UNAVAILABLE', 'TOKEN_MALFORMED', 'TOKEN_BAD_SIGNATURE', 'TOKEN_WRONG_ISSUER', 'TOKEN_WRONG_AUDIENCE', 'TOKEN_EXPIRED', 'TOKEN_INVALID', 'TOKEN_NOT_ID_TOKEN', 'TOKEN_BAD_SUBJECT', 'TOKEN_WRONG_AZP', 'TOKEN_ISSUED_IN_FUTURE', 'TOKEN_LIFETIME_TOO_LONG', 'TOKEN_TOO_OLD', 'TOKEN_AUTH_TIME_IN_FUTURE', 'MFA_REQUIRED', 'MFA_TOO_OLD']);
const STATE_LABELS: Record<string, string> = { requested: 'Requested', pending: 'Waiting for approval', approved: 'Approved', opening: 'Opening…', active: 'Active', extending: 'Extending…', closing: 'Closing…', closed: 'Closed', denied: 'Denied', expired: 'Expired', failed: 'Failed' };
/** Paths this router answers, with the methods each takes: anything else on them is 405, not 404. */
const ROUTES: [RegExp, string][] = [
  [/^\/$/, 'GET, HEAD'],
  [/^\/approvals$/, 'GET, HEAD'],
  [/^\/grants\/[^/]+$/, 'GET, HEAD'],
  [/^\/audit$/, 'GET, HEAD'],
  [/^\/audit\/export\.jsonl$/, 'GET, HEAD'],
  [/^\/admin$/, 'GET, HEAD'],
  [/^\/ui\/[^/]+$/, 'GET, HEAD'],
  [/^\/ui\/grants\/[^/]+\/connect\.rdp$/, 'GET, HEAD'],
];

export function webRouter(deps: WebRouterDeps): Router {
  const assets = loadAssets();
  const timeZone = deps.timeZone ?? 'UTC';
  const r = express.Router();
  const noStore = (res: Response) => {
    // Pages name users, groups and grants: never from a shared cache, never from history.
    res.set('Cache-Control', 'no-store');
  };

  /** The signed-in principal, or undefined when the browser has no live session. */
  const principalOf = async (req: Request): Promise<Principal | undefined> => {
    try {
      return await deps.authn.principal(req);
    } catch (e) {
      if (isPortcullisError(e) && NOT_SIGNED_IN.has(e.code)) return undefined;
      throw e;
    }
  };
  const isAuditReader = (p: Principal) => deps.broker.mayReadAudit(p);

  const nav = async (p: Principal, current: string): Promise<NavItem[]> => {
    const inbox = await deps.broker.inbox(p, 'web').catch(() => []);
    const items: NavItem[] = [
      { href: '/', label: 'Request', current: current === '/' },
      { href: '/approvals', label: 'Approvals', current: current === '/approvals', count: inbox.length },
    ];
    if (isAuditReader(p)) items.push({ href: '/audit', label: 'Audit', current: current === '/audit' });
    if (deps.broker.isAdmin(p)) items.push({ href: '/admin', label: 'Admin', current: current === '/admin' });
    return items;
  };
  const shell = async (p: Principal, current: string, title: string, bodyClass: string, data?: Record<string, string | number>) => ({
    assets,
    title,
    bodyClass,
    data,
    user: { name: p.name ?? p.email ?? p.sub },
    nav: await nav(p, current),
  });
  const page = async (res: Response, p: Principal, view: string, current: string, title: string, data: Record<string, unknown>, bodyData?: Record<string, string | number>) => {
    noStore(res);
    res.type('html').send(render(view, await shell(p, current, title, `app page-${view}`, bodyData), { ...data, timeZone }));
  };
  /** A page that needs a session sends a signed-out browser to sign in and back. */
  const signedIn = async (req: Request, res: Response): Promise<Principal | undefined> => {
    const p = await principalOf(req);
    if (!p) res.redirect(303, `/auth/login?returnTo=${encodeURIComponent(req.originalUrl)}`);
    return p;
  };
  const target = (id: string): TargetConfig | undefined => deps.broker.listTargets().find((t) => t.id === id);
  const isSimulated = (t: TargetConfig | undefined) => t !== undefined && (t.firewall.kind === 'simulated' || t.firewall.kind === 'memory');

  r.get('/', async (req, res, next) => {
    try {
      const p = await principalOf(req);
      noStore(res);
      if (!p) {
        res.type('html').send(render('landing', { assets, title: 'Sign in', bodyClass: 'landing' }, { timeZone }));
        return;
      }
      await page(res, p, 'app', '/', 'Request access', { principal: p, callerIp: callerIp(req) }, { 'min-seconds': deps.limits.minDurationSeconds, 'max-seconds': deps.limits.maxDurationSeconds, 'time-zone': timeZone });
    } catch (e) {
      next(e);
    }
  });

  r.get('/approvals', async (req, res, next) => {
    try {
      const p = await signedIn(req, res);
      if (!p) return;
      const items = await deps.broker.inbox(p, 'web');
      const now = Date.now();
      const pendingMs = (deps.limits.pendingTimeoutSeconds ?? 3600) * 1000;
      await page(res, p, 'approvals', '/approvals', 'Approvals', {
        items: items.map(({ grant, approvals }) => {
          const t = target(grant.targetId);
          return {
            grant,
            requesterName: grant.requesterEmail ?? grant.requester,
            description: t?.description,
            simulated: isSimulated(t),
            approvedBy: approvals.filter((a) => a.decision === 'approve').map((a) => a.approver),
            age: durationLabel(Math.max(60, Math.floor((now - grant.createdAt) / 60_000) * 60)),
            deadline: grant.updatedAt + pendingMs,
          };
        }),
      });
    } catch (e) {
      next(e);
    }
  });

  r.get('/grants/:id', async (req, res, next) => {
    try {
      const p = await signedIn(req, res);
      if (!p) return;
      let grant: Grant;
      try {
        grant = await deps.broker.getGrant(p, req.params.id as GrantId, 'web');
      } catch (e) {
        if (isPortcullisError(e, 'GRANT_NOT_FOUND')) return notFound(req, res, p);
        throw e;
      }
      const [{ approvals }, events] = await Promise.all([deps.broker.grantApprovals(p, grant.id, 'web'), deps.broker.grantEvents(p, grant.id, 'web')]);
      const t = target(grant.targetId);
      const ep = connectEndpoint(t?.connect, grant.port);
      const secondsLeft = grant.state === 'active' && grant.expiresAt !== null ? Math.max(0, Math.round((grant.expiresAt - Date.now()) / 1000)) : undefined;
      const mine = grant.requester === p.sub;
      const room = deps.limits.maxDurationSeconds - grant.durationSeconds;
      const approvedCount = approvals.filter((a) => a.decision === 'approve').length;
      await page(res, p, 'grant', '', `${grant.targetId} access`, {
        grant,
        mine,
        stateLabel: STATE_LABELS[grant.state] + (grant.state === 'closed' && grant.closeReason ? ` (${grant.closeReason})` : ''),
        simulated: isSimulated(t),
        secondsLeft,
        clock: clock(secondsLeft ?? 0),
        endpoint: ep,
        rdpName: rdpFilename(grant.targetId),
        decisions: approvals,
        approvedCount,
        decidedBy: decidedBy(grant, approvals),
        canClose: (mine || deps.broker.isAdmin(p)) && ['active', 'pending', 'approved'].includes(grant.state),
        canExtend: mine && grant.state === 'active' && room >= 60,
        maxSeconds: deps.limits.maxDurationSeconds,
        extendOptions: [900, 1800, 3600, 7200].filter((s) => s <= room).map((s) => ({ value: `${s / 60}m`, label: `${durationLabel(s)} more` })),
        events: events.map((e) => ({ type: e.type, time: e.time, actor: e.actor, text: eventText(e) })),
      }, { 'time-zone': timeZone });
    } catch (e) {
      next(e);
    }
  });

  const auditFilter = (req: Request): { filter: AuditFilter; q: Record<string, string> } => {
    const s = (k: string) => (typeof req.query[k] === 'string' ? (req.query[k] as string).trim().slice(0, 200) : '');
    const q = { from: s('from'), to: s('to'), type: s('type'), user: s('user'), target: s('target'), grant: s('grant') };
    return { q, filter: { from: localTime(q.from, timeZone), to: localTime(q.to, timeZone), type: q.type || undefined, user: q.user || undefined, target: q.target || undefined, grant: q.grant || undefined } };
  };

  r.get('/audit', async (req, res, next) => {
    try {
      const p = await signedIn(req, res);
      if (!p) return;
      if (!isAuditReader(p)) return forbidden(req, res, p, 'Reading the audit trail needs membership of an audit reader group (audit.readerGroups) or an admin group.');
      const { q, filter } = auditFilter(req);
      const [{ events, matched }, verify] = await Promise.all([deps.broker.searchAudit(p, filter, 200), deps.broker.verifyAudit(p)]);
      const types = new Set<string>(KNOWN_TYPES);
      for (const e of events) types.add(e.type);
      const search = new URLSearchParams(Object.entries(q).filter(([, v]) => v));
      await page(res, p, 'audit', '/audit', 'Audit trail', {
        q,
        timeZone,
        types: [...types].sort(),
        events: events.reverse().map((e) => ({ ...e, summary: eventText(e) })),
        verify,
        verifyText: verify.ok ? `The hash chain verifies: ${verify.headSeq} events, none changed or removed.` : `The hash chain is BROKEN at event ${verify.broken?.seq ?? '?'}: ${verify.broken?.problem ?? 'unknown problem'}.`,
        countText: matched > 200 ? `Showing the newest 200 of ${matched} matching events (of ${verify.headSeq} in all).` : `${matched} matching event${matched === 1 ? '' : 's'} (of ${verify.headSeq} in all), newest first.`,
        exportHref: `/audit/export.jsonl${search.size ? `?${search}` : ''}`,
      });
    } catch (e) {
      next(e);
    }
  });

  r.get('/audit/export.jsonl', async (req, res, next) => {
    try {
      const p = await signedIn(req, res);
      if (!p) return;
      if (!isAuditReader(p)) return forbidden(req, res, p, 'Exporting the audit trail needs membership of an audit reader group or an admin group.');
      const { filter } = auditFilter(req);
      noStore(res);
      res.set('Content-Type', 'application/x-ndjson; charset=utf-8');
      res.set('Content-Disposition', 'attachment; filename="portcullis-audit.jsonl"');
      // Each line is the stored event with its hash, so `portcullis audit verify` style checks work on the file.
      for await (const e of deps.broker.exportAudit(p, filter)) res.write(`${JSON.stringify(e)}\n`);
      res.end();
    } catch (e) {
      next(e);
    }
  });

  r.get('/admin', async (req, res, next) => {
    try {
      const p = await signedIn(req, res);
      if (!p) return;
      if (!deps.broker.isAdmin(p)) return forbidden(req, res, p, 'The admin view is for members of grants.adminGroups.');
      const since = req.query.since === undefined ? DEFAULT_WINDOW : req.query.since;
      const window = typeof since === 'string' ? ATTEMPT_WINDOWS.find((w) => w.id === since) : undefined;
      if (!window) return message(req, res, p, 400, 'Bad request', `The since parameter must be one of ${ATTEMPT_WINDOWS.map((w) => w.id).join(', ')}; got "${String(since).slice(0, 40)}".`);
      const live = (await deps.broker.listGrants(p, { all: true, limit: 1000 })).filter((g) => LIVE_STATES.includes(g.state) || g.state === 'pending' || g.state === 'approved');
      const health = await checkHealth(deps.broker, deps.firewalls);
      const gates = deps.broker.listTargets().map((t) => {
        const fw = deps.firewalls?.get(t.id);
        const c = fw ? health.byScope.get(fw.scope) : undefined;
        return { id: t.id, kind: t.firewall.kind, scope: fw?.scope ?? '—', simulated: fw?.simulated ?? false, ok: c?.ok ?? false, detail: c?.detail ?? 'no backend', live: live.filter((g) => g.targetId === t.id && g.state === 'active').length };
      });
      const scans = (await deps.broker.searchAudit(p, {}, 5000)).events.filter((e) => e.type.startsWith('exposure.'));
      const last = scans[scans.length - 1];
      const scan = last ? { time: last.time, text: `${scans.filter((e) => e.time === last.time || Date.parse(last.time) - Date.parse(e.time) < 60_000).length} finding(s); the latest ${last.type === 'exposure.fixed' ? 'was removed' : 'could not be removed'} (${String(last.detail?.scope ?? '')} ${last.sourceIp ?? ''} port ${last.port ?? ''}).` } : undefined;
      const report = await deps.broker.attemptsReport(p, { sinceMs: Date.now() - window.ms });
      const attempts = {
        window,
        windows: ATTEMPT_WINDOWS.map((w) => ({ ...w, current: w.id === window.id })),
        report,
        targets: perTarget(report.sources),
        sources: report.sources.slice(0, ATTEMPT_ROWS),
        more: Math.max(0, report.sources.length - ATTEMPT_ROWS),
      };
      await page(res, p, 'admin', '/admin', 'Administration', { live, health, gates, scan, attempts });
    } catch (e) {
      next(e);
    }
  });

  // What the policies would allow instead of a refused request: the longest duration here, at once or
  // with approval, and whether this computer's own address would do where another one was refused.
  r.get('/ui/explain', async (req, res, next) => {
    try {
      const p = await principalOf(req);
      noStore(res);
      const t = typeof req.query.target === 'string' ? target(req.query.target) : undefined;
      if (!p || !t) {
        res.status(p ? 404 : 401).json({ error: { code: p ? 'TARGET_NOT_FOUND' : 'AUTH_REQUIRED', message: p ? 'no such target' : 'sign in first' } });
        return;
      }
      const ids = typeof req.query.policies === 'string' ? req.query.policies.split(',').slice(0, 10) : [];
      const comments = new Map((deps.policies?.() ?? []).map((x) => [x.id, x.comment]));
      const asked = typeof req.query.sourceIp === 'string' && req.query.sourceIp ? req.query.sourceIp : undefined;
      const cap = deps.limits.maxDurationSeconds / 60;
      const here = deps.broker.durationLimit(p, t.id, callerIp(req), 'web', cap);
      const there = asked ? deps.broker.durationLimit(p, t.id, asked, 'web', cap) : here;
      res.json({
        policies: ids.map((id) => ({ id, why: comments.get(id) ?? '' })),
        fromAsked: { maxMinutes: there.minutes, immediateMinutes: there.immediateMinutes, approval: there.approval },
        fromHere: asked ? { address: callerIp(req), maxMinutes: here.minutes, immediateMinutes: here.immediateMinutes, approval: here.approval } : null,
      });
    } catch (e) {
      next(e);
    }
  });

  r.get('/ui/:file', (req, res, next) => {
    const a = assets.byPath.get(req.path);
    if (!a) return next();
    res.set('Content-Type', a.type);
    // The name carries the content hash, so a cached copy is never stale.
    res.set('Cache-Control', 'public, max-age=31536000, immutable');
    res.send(a.body);
  });

  r.get('/ui/grants/:id/connect.rdp', async (req, res, next) => {
    try {
      const p = await principalOf(req);
      if (!p) {
        res.redirect(303, `/auth/login?returnTo=${encodeURIComponent(`/grants/${req.params.id}`)}`);
        return;
      }
      const grant = await deps.broker.getGrant(p, req.params.id as GrantId);
      const ep = connectEndpoint(target(grant.targetId)?.connect, grant.port);
      noStore(res);
      if (!ep) {
        res.status(404).type('text').send('this target has no connect address configured');
        return;
      }
      const text = rdpFileText(ep.host, ep.port);
      res.set('Content-Type', 'application/x-rdp; charset=utf-8');
      res.set('Content-Disposition', `attachment; filename="${rdpFilename(grant.targetId)}"`);
      res.send(text);
    } catch (e) {
      if (isPortcullisError(e, 'GRANT_NOT_FOUND')) {
        res.status(404).type('text').send('no such grant');
        return;
      }
      if (e instanceof RdpAddressError) {
        res.status(422).type('text').send(e.message);
        return;
      }
      deps.log?.warn('rdp download failed', errorFields(e));
      next(e);
    }
  });

  // The product's own 404 and 405 for every path outside the API and the development IdP.
  r.use(async (req, res, next) => {
    if (/^\/(api|idp)(\/|$)/.test(req.path)) return next();
    try {
      const route = ROUTES.find(([re]) => re.test(req.path));
      const p = await principalOf(req).catch(() => undefined);
      if (route && req.method !== 'GET' && req.method !== 'HEAD') {
        res.set('Allow', route[1]);
        return message(req, res, p, 405, 'Not allowed here', `${req.method} is not something this page answers; it takes ${route[1].replace(', ', ' and ')}.`);
      }
      notFound(req, res, p);
    } catch (e) {
      next(e);
    }
  });
  r.use((e: unknown, req: Request, res: Response, next: NextFunction) => {
    if (/^\/(api|idp)(\/|$)/.test(req.path) || res.headersSent) return next(e);
    deps.log?.error('web page failed', { path: req.path, ...errorFields(e) });
    message(req, res, undefined, 500, 'Something went wrong', 'Portcullis could not show this page. Try again in a moment; the broker log says more.');
  });

  function message(req: Request, res: Response, p: Principal | undefined, status: number, heading: string, text: string) {
    noStore(res);
    if (req.accepts(['html', 'json']) === 'json') {
      res.status(status).json({ error: { code: status === 400 ? 'INVALID_REQUEST' : status === 404 ? 'NOT_FOUND' : status === 405 ? 'METHOD_NOT_ALLOWED' : status === 403 ? 'FORBIDDEN' : 'INTERNAL', message: text } });
      return;
    }
    const links = [{ href: '/', label: p ? 'Back to your access' : 'Go to the start page', primary: true }];
    res.status(status).type('html').send(render('message', { assets, title: heading, bodyClass: 'landing', user: undefined }, { heading, message: text, links, timeZone }));
  }
  function notFound(req: Request, res: Response, p: Principal | undefined) {
    message(req, res, p, 404, 'Page not found', `There is nothing at ${req.path.slice(0, 80)}. A grant you cannot see looks the same as one that does not exist.`);
  }
  function forbidden(req: Request, res: Response, p: Principal, text: string) {
    message(req, res, p, 403, 'Not for your account', text);
  }

  return r;
}

/** The product's HTML page for any message (sign-in errors, signed out), for callers outside this router. */
export function messagePage(o: { heading: string; message: string; code?: string; links?: { href: string; label: string; primary?: boolean }[]; paragraphs?: string[]; pre?: string; form?: { action: string; fields: Record<string, string>; label: string } }): string {
  return render('message', { assets: sharedAssets(), title: o.heading, bodyClass: 'landing' }, { ...o });
}
let cachedAssets: Assets | undefined;
function sharedAssets(): Assets {
  cachedAssets ??= loadAssets();
  return cachedAssets;
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function decidedBy(g: Grant, approvals: { approver: string; decision: string }[]): string {
  const people = approvals.map((a) => a.approver);
  if (g.state === 'pending') return people.length ? `approved so far by ${people.join(', ')}` : 'waiting for an approver';
  if (people.length) return `${approvals.some((a) => a.decision === 'deny') ? 'denied' : 'approved'} by ${people.join(', ')}`;
  if (g.state === 'denied') return `refused by policy ${g.policyIds.join(', ') || '(no policy permits it)'}`;
  return g.policyIds.length ? `policy ${g.policyIds.join(', ')} (no approver needed)` : '—';
}

const KNOWN_TYPES = ['grant.requested', 'grant.pending', 'grant.approved', 'grant.approval_recorded', 'grant.denied', 'grant.revoked', 'grant.expired', 'grant.extended', 'grant.closed', 'rule.opening', 'rule.opened', 'rule.closed', 'auth.login', 'auth.logout', 'auth.rejected', 'auth.mfa_missing'];

/** One line of plain language per audit event. */
export function eventText(e: AuditEvent): string {
  const d = e.detail ?? {};
  const by = e.actor ?? 'someone';
  switch (e.type) {
    case 'grant.requested':
      return `${by} asked for ${e.target} port ${e.port} from ${e.sourceIp}: “${e.reason ?? ''}”`;
    case 'grant.pending':
      return `Waiting for ${String(d.requiredApprovals ?? 1)} approval(s) (policy ${(e.policyIds ?? []).join(', ')})`;
    case 'grant.approval_recorded':
      return `${by} approved (${String(d.count)} of ${String(d.required)})${e.reason ? `: “${e.reason}”` : ''}`;
    case 'grant.approved':
      return d.by === 'policy' ? `Approved by policy ${(e.policyIds ?? []).join(', ')}` : `Approved by ${(d.approvers as string[] | undefined)?.join(', ') ?? by}`;
    case 'grant.denied':
      return d.by === 'approver' ? `${by} denied it${e.reason ? `: “${e.reason}”` : ''}` : d.by === 'recheck' ? 'Refused on re-check: the requester is no longer permitted' : `Refused by policy ${(e.policyIds ?? []).join(', ') || '(no policy permits it)'}`;
    case 'rule.opening':
      return `Opening the rule on ${String(d.backend ?? '')}`;
    case 'rule.opened':
      return `Rule in place until ${String(d.expiresAt ?? '')}`;
    case 'grant.extended':
      return `${by} extended it by ${durationLabel(Number(d.extraSeconds ?? 0))}`;
    case 'grant.extend_denied':
      return `${by} asked for ${durationLabel(Number(d.extraSeconds ?? 0))} more; refused by policy`;
    case 'grant.revoked':
      return `${by} closed it`;
    case 'grant.expired':
      return 'Time is up: closing';
    case 'rule.closed':
      return 'Rule removed';
    case 'grant.closed':
      return `Closed (${String(d.reason ?? '')})`;
    case 'grant.pending_expired':
      return 'Nobody decided in time: the request lapsed';
    default:
      return Object.keys(d).length ? `${e.type} ${JSON.stringify(d).slice(0, 160)}` : e.type;
  }
}

/** A datetime-local value ("2026-12-02T07:15") in the display zone, as epoch ms. */
export function localTime(v: string, timeZone: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(v);
  if (!m) return undefined;
  const asUtc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  // The zone's offset at that moment: format the UTC instant in the zone and compare.
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).formatToParts(asUtc);
  const get = (t: string) => Number(parts.find((x) => x.type === t)?.value);
  const shown = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'));
  return asUtc - (shown - asUtc);
}

/** The store and every firewall backend, as /readyz reports them. */
async function checkHealth(broker: Pick<Broker, 'storeHealth'>, firewalls?: ReadonlyMap<string, FirewallAdapter>) {
  const checks: { name: string; ok: boolean; detail: string }[] = [{ name: 'store', ...(await broker.storeHealth()) }];
  const byScope = new Map<string, { ok: boolean; detail: string }>();
  const fws = [...new Set(firewalls?.values() ?? [])];
  for (const fw of fws) {
    let h: { ok: boolean; detail: string };
    try {
      const c = await fw.check();
      h = { ok: c.ok, detail: c.detail };
    } catch {
      h = { ok: false, detail: 'backend did not answer' };
    }
    byScope.set(fw.scope, h);
    checks.push({ name: `firewall:${fw.scope}`, ...h, detail: `${h.detail}${fw.simulated ? ' (SIMULATED)' : ''}` });
  }
  return { ok: checks.every((c) => c.ok), simulated: fws.some((f) => f.simulated), checks, byScope };
}
