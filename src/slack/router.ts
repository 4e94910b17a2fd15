// HTTP for Slack: POST /slack/commands and /slack/interactions (signature verified over the raw body, answered
// within Slack's 3 s), and the browser pages /slack/link, /slack/confirm and /slack/act.
import express, { type Request, type Response, type Router } from 'express';
import type { Freshness } from '../broker/approval-freshness.ts';
import type { Broker } from '../broker/broker.ts';
import type { Channel, Grant, GrantId, Principal } from '../domain/index.ts';
import { formatDuration, parseDuration } from '../config/duration.ts';
import type { Config } from '../config/schema.ts';
import { httpStatus, isPortcullisError } from '../errors.ts';
import { callerIp } from '../http/app.ts';
import type { Authn } from '../http/authn.ts';
import { evaluateMfa } from '../identity/mfa.ts';
import { errorFields, type Logger } from '../log.ts';
import type { Store } from '../store/store.ts';
import { ephemeral, outcomeReply, type SlackMessage } from './blocks.ts';
import { PAGE_HEADERS, slackPage, type SlackPage } from './pages.ts';
import type { CommandForm, SlackService } from './service.ts';
import { checkSlackSignature } from './signature.ts';
import type { SlackStore, SlackToken } from './store.ts';

export interface SlackRouterDeps {
  service: SlackService;
  slack: SlackStore;
  broker: Pick<Broker, 'requestAccess' | 'approve' | 'deny' | 'extend' | 'noteSignIn'>;
  store: Pick<Store, 'audit' | 'getGrant'>;
  /** The web session (cookie) authn: the pages need a signed-in browser. */
  authn: Authn;
  /** The CSRF token of the request's web session, for the pages' forms. */
  csrf: (req: Request) => Promise<string | undefined>;
  mfa: () => Config['oidc']['mfa'] | undefined;
  freshness: (approver: Principal | undefined, grant: Grant, channel: Channel) => Freshness;
  log: Logger;
  clock?: () => number;
  /** Answer Slack by then with "working on it" and reply through response_url later (default 2 s of Slack's 3). */
  ackMs?: number;
}

/** A retried or replayed command is answered but not run again, for this long (the signature window and then some). */
const SEEN_TTL_MS = 10 * 60_000;
const SLACK: Channel = 'slack';

export function slackRouter(deps: SlackRouterDeps): Router {
  const clock = deps.clock ?? Date.now;
  const ackMs = deps.ackMs ?? 2000;
  const r = express.Router();
  // The signature covers the exact bytes: parse nothing before it is checked.
  const raw = express.raw({ type: () => true, limit: '64kb' });
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  const verified = (req: Request, res: Response): URLSearchParams | undefined => {
    const s = deps.service.settings();
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const problem = checkSlackSignature(s.signingSecret, { timestamp: req.get('x-slack-request-timestamp'), signature: req.get('x-slack-signature') }, body, Math.floor(clock() / 1000));
    if (problem) {
      deps.log.warn('slack: refused a request', { problem, path: req.path });
      res.status(401).json({ error: { code: 'AUTH_REQUIRED', message: `not a valid Slack request signature (${problem})` } });
      return undefined;
    }
    return new URLSearchParams(body.toString('utf8'));
  };

  /** Runs `work`; answers with its result if quick, else with "working on it" and sends the result through response_url. */
  const ackOrLater = async (res: Response, responseUrl: string | undefined, work: Promise<SlackMessage | undefined>): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const late = Symbol('late');
    const first = await Promise.race([work.catch((e) => deps.service.refusal(e)), new Promise<typeof late>((resolve) => (timer = setTimeout(() => resolve(late), ackMs)))]);
    clearTimeout(timer);
    if (first !== late) {
      if (first) res.json(first);
      else res.status(200).end();
      return;
    }
    res.json(ephemeral(':hourglass_flowing_sand: Working on it…'));
    const msg = await work.catch((e) => deps.service.refusal(e));
    if (msg) await deps.service.respondLater(responseUrl, { ...msg, replace_original: true }).catch((e) => deps.log.warn('slack: could not queue a late reply', errorFields(e)));
  };

  r.post('/commands', raw, async (req, res) => {
    const params = verified(req, res);
    if (!params) return;
    const f = Object.fromEntries(params) as CommandForm;
    const refused = deps.service.refuseTeam(f.team_id);
    if (refused || !f.user_id) {
      res.json(refused ?? ephemeral('No user in the request.'));
      return;
    }
    await ackOrLater(
      res,
      f.response_url,
      (async () => {
        // Slack retries (X-Slack-Retry-Num) and replays resend the same trigger id: answer, do not run again.
        if (!(await deps.slack.firstSight(`cmd|${f.team_id}|${f.user_id}|${f.trigger_id ?? params.toString()}`, SEEN_TTL_MS))) return undefined;
        return deps.service.command(f);
      })(),
    );
  });

  r.post('/interactions', raw, async (req, res) => {
    const params = verified(req, res);
    if (!params) return;
    let payload: any;
    try {
      payload = JSON.parse(params.get('payload') ?? '');
    } catch {
      res.status(400).json({ error: { code: 'INVALID_REQUEST', message: 'payload must be JSON' } });
      return;
    }
    const key = `ia|${payload?.user?.id}|${payload?.trigger_id ?? ''}|${payload?.actions?.[0]?.action_ts ?? payload?.view?.id ?? ''}`;
    try {
      if (!(await deps.slack.firstSight(key, SEEN_TTL_MS))) {
        res.status(200).end();
        return;
      }
      // Buttons are acknowledged at once and answered through response_url; a modal submission waits for its answer.
      if (payload?.type === 'block_actions') {
        const answer = deps.service.interaction(payload);
        res.status(200).end();
        await answer.catch((e) => deps.log.warn('slack: interaction failed', errorFields(e)));
        return;
      }
      const answer = await deps.service.interaction(payload);
      if (answer) res.json(answer);
      else res.status(200).end();
    } catch (e) {
      deps.log.warn('slack: interaction failed', errorFields(e));
      if (!res.headersSent) res.json({ response_action: 'errors', errors: { comment: 'The broker could not record this; nothing was changed.' } });
    }
  });

  // ---- browser pages -------------------------------------------------------------------------

  const send = (res: Response, status: number, title: string, page: Omit<SlackPage, 'title'>) => {
    res.status(status).set(PAGE_HEADERS).type('html').send(slackPage({ title, ...page }));
  };
  const gone = (res: Response) => send(res, 404, 'Link expired or used', { paras: [{ text: 'This link has expired or was already used. Type the command in Slack again for a new one.', cls: 'error' }] });

  /** The signed-in principal of a fresh MFA session, or undefined after redirecting to sign-in / step-up. */
  const freshSession = async (req: Request, res: Response, token: SlackToken, sub: string | undefined): Promise<Principal | undefined> => {
    const here = req.originalUrl.split('?')[0]!;
    let p: Principal;
    try {
      p = await deps.authn.principal(req);
    } catch (e) {
      if (isPortcullisError(e, 'AUTH_REQUIRED')) {
        res.redirect(303, `/auth/login?returnTo=${encodeURIComponent(here)}`);
        return undefined;
      }
      throw e;
    }
    if (sub !== undefined && p.sub !== sub) {
      send(res, 403, 'Another identity', { paras: [{ text: `This link belongs to another identity than the one signed in here (${p.email ?? p.sub}). Sign out and open it again.`, cls: 'error', data: { code: 'WRONG_IDENTITY' } }] });
      return undefined;
    }
    const mfa = deps.mfa();
    const v = mfa ? evaluateMfa({ amr: p.amr, acr: p.acr, authTime: p.authTime }, mfa, Math.floor(clock() / 1000)) : { mfa: false, fresh: false };
    if (!v.mfa || !v.fresh) {
      res.redirect(303, `/auth/login?${v.mfa ? 'fresh=1' : 'mfa=1'}&returnTo=${encodeURIComponent(here)}`);
      return undefined;
    }
    void token;
    return { ...p, channel: SLACK };
  };

  const failure = (res: Response, e: unknown, title = 'Refused') => {
    if (!isPortcullisError(e)) throw e;
    const status = httpStatus(e.code);
    send(res, status >= 500 && status !== 503 ? 500 : status, title, { paras: [{ text: `${e.code}: ${status >= 500 && status !== 503 ? 'internal error; see the broker log' : e.message}`, cls: 'error', data: { code: e.code } }] });
  };

  r.get('/link/:token', async (req, res) => {
    const t = await deps.slack.peekToken(req.params.token);
    if (!t || t.payload.kind !== 'link') return gone(res);
    const p = await freshSession(req, res, t, undefined);
    if (!p) return;
    const who = t.payload.userName ? `@${t.payload.userName}` : t.user.userId;
    send(res, 200, 'Link your Slack user', {
      paras: [{ text: `Link Slack user ${who} (${t.user.userId} in workspace ${t.user.teamId}) to ${p.email ?? p.sub}? Only do this if you just typed the link command in Slack yourself.`, cls: 'warn' }],
      form: { action: req.originalUrl.split('?')[0]!, csrf: (await deps.csrf(req)) ?? '', label: 'Link this Slack user' },
    });
  });

  r.post('/link/:token', form, async (req, res) => {
    try {
      const t0 = await deps.slack.peekToken(req.params.token);
      if (!t0 || t0.payload.kind !== 'link') return gone(res);
      const p = await freshSession(req, res, t0, undefined);
      if (!p) return;
      const t = await deps.slack.takeToken(req.params.token);
      if (!t) return gone(res);
      await deps.broker.noteSignIn(p);
      await deps.slack.link(t.user, p.sub);
      await deps.store.audit({ type: 'slack.linked', actor: p.sub, detail: { team: t.user.teamId, user: t.user.userId } });
      if (t.payload.kind === 'link' && t.payload.responseUrl) await deps.service.respondLater(t.payload.responseUrl, { ...ephemeral(`:white_check_mark: Linked to ${p.email ?? p.sub}. Now try \`${deps.service.settings().command} open <target> 1h <reason>\`.`), replace_original: true });
      send(res, 200, 'Linked', { paras: [{ text: `Your Slack user is linked to ${p.email ?? p.sub}. Go back to Slack.`, cls: 'ok', id: 'linked' }] });
    } catch (e) {
      failure(res, e);
    }
  });

  r.get('/confirm/:token', async (req, res) => {
    const t = await deps.slack.peekToken(req.params.token);
    if (!t || t.payload.kind !== 'confirm') return gone(res);
    const p = await freshSession(req, res, t, t.payload.sub);
    if (!p) return;
    const { target, duration, reason } = t.payload;
    send(res, 200, 'Confirm access', {
      facts: [
        ['Target', target],
        ['Duration', duration ? formatDuration(parseDuration(duration) ?? 0) : '1h'],
        ['Reason', reason],
        ['Address to admit', callerIp(req)],
        ['Signed in as', p.email ?? p.sub],
      ],
      paras: [{ text: "Only this computer's address is admitted. Confirm from the computer that will connect." }],
      form: { action: req.originalUrl.split('?')[0]!, csrf: (await deps.csrf(req)) ?? '', label: 'Confirm and open' },
    });
  });

  r.post('/confirm/:token', form, async (req, res) => {
    try {
      const t0 = await deps.slack.peekToken(req.params.token);
      if (!t0 || t0.payload.kind !== 'confirm') return gone(res);
      const p = await freshSession(req, res, t0, t0.payload.sub);
      if (!p) return;
      const t = await deps.slack.takeToken(req.params.token);
      if (!t || t.payload.kind !== 'confirm') return gone(res);
      const { target, duration, reason, responseUrl } = t.payload;
      await deps.broker.noteSignIn(p);
      let grant: Grant | undefined;
      try {
        grant = (await deps.broker.requestAccess(p, { target, duration: duration ?? '1h', reason }, { channel: SLACK, callerIp: callerIp(req) })).grant;
      } catch (e) {
        if (isPortcullisError(e) && responseUrl) await deps.service.respondLater(responseUrl, outcomeReply(undefined, { code: e.code, message: e.message }));
        return failure(res, e);
      }
      if (responseUrl) await deps.service.respondLater(responseUrl, outcomeReply(grant));
      const status = grant.state === 'active' ? `Open until ${new Date(grant.expiresAt!).toISOString().slice(11, 16)} UTC for ${grant.source}.` : grant.state === 'pending' ? 'Waiting for approval; Slack tells you when it opens.' : `Grant is ${grant.state}.`;
      send(res, 200, grant.state === 'active' ? 'Access open' : 'Request sent', { paras: [{ text: status, cls: 'ok', id: 'outcome', data: { state: grant.state, grant: grant.id } }] });
    } catch (e) {
      failure(res, e);
    }
  });

  // A step-up link: after a fresh sign-in the action is recorded straight away (the click in Slack was the intent).
  r.get('/act/:token', async (req, res) => {
    try {
      const t0 = await deps.slack.peekToken(req.params.token);
      if (!t0 || t0.payload.kind !== 'act') return gone(res);
      const pl = t0.payload;
      const p = await freshSession(req, res, t0, pl.sub);
      if (!p) return;
      const grant = await deps.store.getGrant(pl.grantId as GrantId);
      if (grant && pl.action !== 'extend' && deps.freshness(p, grant, SLACK) === 'stale') {
        // Fresh for the MFA rule but not for the approval policy: one more sign-in, now.
        res.redirect(303, `/auth/login?fresh=1&returnTo=${encodeURIComponent(req.originalUrl.split('?')[0]!)}`);
        return;
      }
      const t = await deps.slack.takeToken(req.params.token);
      if (!t) return gone(res);
      await deps.broker.noteSignIn(p);
      const id = pl.grantId as GrantId;
      const g = pl.action === 'approve' ? await deps.broker.approve(p, id, { comment: pl.comment }, SLACK) : pl.action === 'deny' ? await deps.broker.deny(p, id, { comment: pl.comment }, SLACK) : await deps.broker.extend(p, id, { duration: pl.duration }, SLACK);
      const done = pl.action === 'approve' ? (g.state === 'pending' ? 'Approval recorded; it needs another approver.' : `Approved; the grant is ${g.state}.`) : pl.action === 'deny' ? 'Denied.' : `Extended until ${new Date(g.expiresAt!).toISOString().slice(11, 16)} UTC.`;
      if (pl.responseUrl) await deps.service.respondLater(pl.responseUrl, { ...ephemeral(`:white_check_mark: ${done} (\`${g.id}\`)`), replace_original: false });
      send(res, 200, 'Done', { paras: [{ text: done, cls: 'ok', id: 'outcome', data: { state: g.state, grant: g.id } }] });
    } catch (e) {
      failure(res, e);
    }
  });

  r.use((e: unknown, _req: Request, res: Response, _next: express.NextFunction) => {
    if (res.headersSent) return;
    if (isPortcullisError(e)) return failure(res, e);
    // The body parsers' own refusals (too large, bad encoding) are the sender's mistake, not ours.
    const status = (e as { status?: unknown })?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ error: { code: 'INVALID_REQUEST', message: status === 413 ? 'the request body is too large' : 'the request body could not be read' } });
      return;
    }
    deps.log.error('slack: request failed', errorFields(e));
    res.status(500).json({ error: { code: 'INTERNAL', message: 'internal error; see the broker log' } });
  });
  return r;
}
