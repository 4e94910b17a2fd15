// A simulated Slack workspace: the Web API methods Portcullis calls (enforcing the bot token, JSON bodies, known
// channels and users, `ts` for updates, trigger ids, rate limits with 429 + Retry-After), response_url hooks,
// and people typing commands and clicking buttons, sent to the broker as Slack would send them: signed.
// The demo mounts it at /dev/slack; tests start it on its own port to stand in for Slack.
import { randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import { slackSignature } from '../../slack/signature.ts';
import { demoPage } from './page.ts';

export interface WorkspaceUser {
  id: string;
  name: string;
  realName: string;
}

export interface Message {
  ts: string;
  channel: string;
  /** undefined: the bot. */
  user?: string | undefined;
  text: string;
  blocks?: unknown[] | undefined;
  /** Visible only to this user (a command's reply, a response_url answer). */
  ephemeralTo?: string | undefined;
  edits: number;
}

export interface ApiCall {
  method: string;
  body: Record<string, unknown>;
  status: number;
  error?: string | undefined;
  at: number;
}

export interface WorkspaceOptions {
  teamId: string;
  botToken: string;
  signingSecret: string;
  /** Where the broker listens (commands and interactions are posted to it). */
  brokerUrl: string;
  /** Public base of this workspace's router (response_url hooks live under it). */
  hookBase: string;
  users: WorkspaceUser[];
  channels: { id: string; name: string }[];
  /** Calls per method per second before 429 (Slack's tiers are per method); default 20. */
  ratePerSecond?: number;
  /** The demo page; tests do without. */
  page?: boolean;
  /** Slack's clock, for request timestamps (tests move it with the broker's). */
  clock?: () => number;
}

const TRIGGER_TTL_MS = 3000;

export class SlackWorkspace {
  readonly messages: Message[] = [];
  readonly calls: ApiCall[] = [];
  readonly views = new Map<string, { user: string; view: Record<string, unknown> }>();
  /** `unreachable`: connections are cut; `error`: 503 answers. */
  mode: 'up' | 'unreachable' | 'error' = 'up';
  /** The next N Web API calls are answered 429 with this Retry-After (seconds). */
  throttle = { next: 0, retryAfter: 1 };
  readonly router: Router;
  private readonly hooks = new Map<string, { user: string; channel: string; msgTs: string | undefined; uses: number }>();
  private readonly triggers = new Map<string, { user: string; at: number }>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private tsCounter = 0;

  constructor(readonly o: WorkspaceOptions) {
    this.router = this.buildRouter();
  }

  user(id: string): WorkspaceUser | undefined {
    return this.o.users.find((u) => u.id === id);
  }

  /** Messages a user can see in a channel (their DM with the bot is `D<user>`), oldest first. */
  visible(user: string, channel?: string): Message[] {
    return this.messages.filter((m) => (channel === undefined || m.channel === channel) && (m.ephemeralTo === undefined || m.ephemeralTo === user));
  }

  private nextTs(): string {
    this.tsCounter += 1;
    return `${Math.floor(Date.now() / 1000)}.${String(this.tsCounter).padStart(6, '0')}`;
  }

  private channelFor(id: unknown): string | undefined {
    if (typeof id !== 'string') return undefined;
    if (this.o.channels.some((c) => c.id === id)) return id;
    if (this.user(id)) return `D${id}`;
    if (id.startsWith('D') && this.user(id.slice(1))) return id;
    return undefined;
  }

  private rateLimited(method: string): boolean {
    if (this.throttle.next > 0) {
      this.throttle.next -= 1;
      return true;
    }
    const rate = this.o.ratePerSecond ?? 20;
    const now = Date.now();
    const b = this.buckets.get(method) ?? { tokens: rate, at: now };
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    this.buckets.set(method, b);
    if (b.tokens < 1) return true;
    b.tokens -= 1;
    return false;
  }

  private api(method: string, body: Record<string, unknown>): Record<string, unknown> {
    const fail = (error: string) => ({ ok: false, error });
    switch (method) {
      case 'chat.postMessage': {
        const channel = this.channelFor(body.channel);
        if (!channel) return fail('channel_not_found');
        if (typeof body.text !== 'string' && !Array.isArray(body.blocks)) return fail('no_text');
        const ts = this.nextTs();
        this.messages.push({ ts, channel, text: String(body.text ?? ''), blocks: body.blocks as unknown[] | undefined, edits: 0 });
        return { ok: true, channel, ts };
      }
      case 'chat.update': {
        const channel = this.channelFor(body.channel);
        if (!channel) return fail('channel_not_found');
        if (typeof body.ts !== 'string') return fail('invalid_arguments');
        const m = this.messages.find((x) => x.channel === channel && x.ts === body.ts && x.ephemeralTo === undefined);
        if (!m) return fail('message_not_found');
        m.text = String(body.text ?? m.text);
        if (Array.isArray(body.blocks)) m.blocks = body.blocks;
        m.edits += 1;
        return { ok: true, channel, ts: m.ts };
      }
      case 'chat.postEphemeral': {
        const channel = this.channelFor(body.channel);
        if (!channel) return fail('channel_not_found');
        if (typeof body.user !== 'string' || !this.user(body.user)) return fail('user_not_found');
        this.messages.push({ ts: this.nextTs(), channel, text: String(body.text ?? ''), blocks: body.blocks as unknown[] | undefined, ephemeralTo: body.user, edits: 0 });
        return { ok: true, message_ts: this.nextTs() };
      }
      case 'views.open': {
        const t = typeof body.trigger_id === 'string' ? this.triggers.get(body.trigger_id) : undefined;
        if (!t) return fail('invalid_trigger_id');
        if (Date.now() - t.at > TRIGGER_TTL_MS) return fail('expired_trigger_id');
        this.triggers.delete(body.trigger_id as string);
        const id = `V${randomBytes(5).toString('hex').toUpperCase()}`;
        this.views.set(id, { user: t.user, view: body.view as Record<string, unknown> });
        return { ok: true, view: { id } };
      }
      case 'auth.test':
        return { ok: true, team_id: this.o.teamId, user_id: 'UBOT', bot_id: 'BPORTCULLIS' };
      default:
        return fail('unknown_method');
    }
  }

  private buildRouter(): Router {
    const r = express.Router();
    r.post('/api/:method', express.raw({ type: () => true, limit: '1mb' }), (req: Request, res: Response) => {
      const method = String(req.params.method);
      if (this.mode === 'unreachable') {
        req.socket.destroy();
        return;
      }
      const record = (status: number, out: Record<string, unknown>) => {
        const body = (() => {
          try {
            return JSON.parse((req.body as Buffer).toString('utf8')) as Record<string, unknown>;
          } catch {
            return {};
          }
        })();
        this.calls.push({ method, body, status, error: out.ok === false ? String(out.error) : undefined, at: Date.now() });
        res.status(status).json(out);
      };
      if (this.mode === 'error') return record(503, { ok: false, error: 'service_unavailable' });
      const auth = req.get('authorization');
      if (!auth) return record(200, { ok: false, error: 'not_authed' });
      if (auth !== `Bearer ${this.o.botToken}`) return record(200, { ok: false, error: 'invalid_auth' });
      if (!/^application\/json(;\s*charset=utf-8)?$/i.test(req.get('content-type') ?? '')) return record(200, { ok: false, error: 'invalid_form_data' });
      let body: Record<string, unknown>;
      try {
        body = JSON.parse((req.body as Buffer).toString('utf8'));
      } catch {
        return record(200, { ok: false, error: 'invalid_json' });
      }
      if (this.rateLimited(method)) {
        res.set('Retry-After', String(this.throttle.retryAfter));
        return record(429, { ok: false, error: 'ratelimited' });
      }
      record(200, this.api(method, body));
    });
    // response_url: at most 5 answers within 30 minutes, as Slack allows.
    r.post('/hooks/:id', express.json({ limit: '1mb' }), (req: Request, res: Response) => {
      if (this.mode === 'unreachable') {
        req.socket.destroy();
        return;
      }
      if (this.mode === 'error') return void res.status(503).send('unavailable');
      const hook = this.hooks.get(String(req.params.id));
      if (!hook || hook.uses >= 5) return void res.status(404).send('used_url');
      hook.uses += 1;
      const b = req.body as Record<string, unknown>;
      this.calls.push({ method: 'response_url', body: b, status: 200, at: Date.now() });
      const existing = hook.msgTs ? this.messages.find((m) => m.ts === hook.msgTs) : undefined;
      if (b.replace_original === true && existing) {
        existing.text = String(b.text ?? '');
        existing.blocks = b.blocks as unknown[] | undefined;
        existing.edits += 1;
      } else {
        const ts = this.nextTs();
        this.messages.push({ ts, channel: hook.channel, text: String(b.text ?? ''), blocks: b.blocks as unknown[] | undefined, ephemeralTo: b.response_type === 'in_channel' ? undefined : hook.user, edits: 0 });
        hook.msgTs ??= ts;
      }
      res.status(200).send('ok');
    });
    if (this.o.page) {
      r.get('/', (req, res) => {
        // Relative asset and API paths need the trailing slash.
        if (!req.originalUrl.split('?')[0]!.endsWith('/')) return void res.redirect(301, `${req.originalUrl.split('?')[0]}/`);
        res.set('Cache-Control', 'no-store');
        res.type('html').send(demoPage.html(this.o.users, this.o.channels));
      });
      r.get('/page.js', (_req, res) => void res.type('application/javascript').send(demoPage.js));
      r.get('/page.css', (_req, res) => void res.type('text/css').send(demoPage.css));
      r.get('/ui/state', (req, res) => {
        const user = String(req.query.user ?? '');
        const views = [...this.views].filter(([, v]) => v.user === user).map(([id, v]) => ({ id, view: v.view }));
        res.set('Cache-Control', 'no-store').json({ messages: this.visible(user), views, users: this.o.users });
      });
      r.post('/ui/command', express.json(), async (req, res) => {
        res.json(await this.command(String(req.body?.user), String(req.body?.text ?? '')));
      });
      r.post('/ui/click', express.json(), async (req, res) => {
        res.json(await this.click(String(req.body?.user), String(req.body?.ts), String(req.body?.actionId)));
      });
      r.post('/ui/submit', express.json(), async (req, res) => {
        res.json(await this.submitView(String(req.body?.user), String(req.body?.viewId), (req.body?.values ?? {}) as Record<string, string>));
      });
    }
    return r;
  }

  /** Posts a signed form to the broker as Slack does; `tweak` lets tests break it on purpose. */
  async send(path: '/slack/commands' | '/slack/interactions', form: Record<string, string>, tweak: { timestamp?: number; signature?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any; ms: number }> {
    const raw = new URLSearchParams(form).toString();
    const ts = String(tweak.timestamp ?? Math.floor((this.o.clock ?? Date.now)() / 1000));
    const started = Date.now();
    const res = await fetch(`${this.o.brokerUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': ts, 'x-slack-signature': tweak.signature ?? slackSignature(this.o.signingSecret, ts, raw), ...(tweak.headers ?? {}) },
      body: raw,
    });
    const text = await res.text();
    let body: any = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    return { status: res.status, body, ms: Date.now() - started };
  }

  private newHook(user: string, channel: string): string {
    const id = randomBytes(12).toString('hex');
    this.hooks.set(id, { user, channel, msgTs: undefined, uses: 0 });
    return id;
  }

  private newTrigger(user: string): string {
    const id = `${Date.now()}.${randomBytes(6).toString('hex')}`;
    this.triggers.set(id, { user, at: Date.now() });
    return id;
  }

  /** A person types `/rdp <text>` (in their DM with the bot); the immediate answer shows as an ephemeral message. */
  async command(userId: string, text: string, o: { teamId?: string; triggerId?: string; headers?: Record<string, string>; timestamp?: number } = {}): Promise<{ status: number; body: any; ms: number; triggerId: string; hook: string }> {
    const u = this.user(userId);
    const channel = `D${userId}`;
    const hook = this.newHook(userId, channel);
    const triggerId = o.triggerId ?? this.newTrigger(userId);
    const form = {
      token: 'deprecated-verification-token',
      team_id: o.teamId ?? this.o.teamId,
      team_domain: 'demo',
      channel_id: channel,
      channel_name: 'directmessage',
      user_id: userId,
      user_name: u?.name ?? userId,
      command: '/rdp',
      text,
      api_app_id: 'APORTCULLIS',
      response_url: `${this.o.hookBase}/hooks/${hook}`,
      trigger_id: triggerId,
    };
    this.messages.push({ ts: this.nextTs(), channel, user: userId, text: `/rdp ${text}`, ephemeralTo: userId, edits: 0 });
    const res = await this.send('/slack/commands', form, { headers: o.headers, timestamp: o.timestamp });
    if (res.status === 200 && res.body && typeof res.body === 'object' && (res.body.text || res.body.blocks)) {
      const ts = this.nextTs();
      this.messages.push({ ts, channel, text: String(res.body.text ?? ''), blocks: res.body.blocks, ephemeralTo: res.body.response_type === 'in_channel' ? undefined : userId, edits: 0 });
      this.hooks.get(hook)!.msgTs = ts;
    }
    return { ...res, triggerId, hook };
  }

  /** A person clicks a button of a message. */
  async click(userId: string, ts: string, actionId: string, o: { teamId?: string } = {}): Promise<{ status: number; body: any; ms: number }> {
    const m = this.messages.find((x) => x.ts === ts);
    const button = findButton(m?.blocks, actionId);
    if (!m || !button) return { status: 0, body: { error: 'no such button' }, ms: 0 };
    const hook = this.newHook(userId, m.channel);
    const payload = {
      type: 'block_actions',
      team: { id: o.teamId ?? this.o.teamId, domain: 'demo' },
      user: { id: userId, username: this.user(userId)?.name, team_id: o.teamId ?? this.o.teamId },
      api_app_id: 'APORTCULLIS',
      trigger_id: this.newTrigger(userId),
      channel: { id: m.channel },
      container: { type: 'message', message_ts: m.ts, channel_id: m.channel },
      message: { ts: m.ts, text: m.text, blocks: m.blocks },
      response_url: `${this.o.hookBase}/hooks/${hook}`,
      actions: [{ type: 'button', action_id: actionId, block_id: button.blockId, value: button.value, action_ts: `${Date.now() / 1000}` }],
    };
    return this.send('/slack/interactions', { payload: JSON.stringify(payload) });
  }

  /** A person submits an open modal with input values by block id. */
  async submitView(userId: string, viewId: string, values: Record<string, string>): Promise<{ status: number; body: any; ms: number }> {
    const v = this.views.get(viewId);
    if (!v || v.user !== userId) return { status: 0, body: { error: 'no such view' }, ms: 0 };
    const state: Record<string, Record<string, { type: string; value: string }>> = {};
    for (const [block, value] of Object.entries(values)) state[block] = { [block]: { type: 'plain_text_input', value } };
    const payload = {
      type: 'view_submission',
      team: { id: this.o.teamId },
      user: { id: userId, team_id: this.o.teamId },
      view: { id: viewId, callback_id: v.view.callback_id, private_metadata: v.view.private_metadata, state: { values: state } },
    };
    const res = await this.send('/slack/interactions', { payload: JSON.stringify(payload) });
    if (res.body?.response_action === 'update') v.view = res.body.view;
    else if (res.status === 200 && (res.body === undefined || res.body?.response_action === 'clear')) this.views.delete(viewId);
    return res;
  }
}

function findButton(blocks: unknown[] | undefined, actionId: string): { value: string | undefined; blockId: string | undefined } | undefined {
  for (const b of (blocks ?? []) as { type?: string; block_id?: string; elements?: { action_id?: string; value?: string }[] }[]) {
    if (b.type !== 'actions') continue;
    const e = b.elements?.find((x) => x.action_id === actionId);
    if (e) return { value: e.value, blockId: b.block_id };
  }
  return undefined;
}

/** The demo's workspace: the dev IdP's people, an #approvals channel, and the page at /dev/slack. */
export function createDemoWorkspace(o: { brokerUrl: string; signingSecret: string; botToken: string; teamId: string; approvalsChannel: string; hookBase: string }): SlackWorkspace {
  return new SlackWorkspace({
    ...o,
    users: [
      { id: 'UALICE', name: 'alice', realName: 'Alice Requester' },
      { id: 'UBOB', name: 'bob', realName: 'Bob Approver' },
      { id: 'UTESS', name: 'tess', realName: 'Tess MSP Technician' },
    ],
    channels: [{ id: o.approvalsChannel, name: 'approvals' }],
    page: true,
  });
}
