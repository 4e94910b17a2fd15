// Slack commands and button clicks translated into the broker's use cases; answers rendered for Slack.
// It decides nothing: validation, MFA, policy and self-approval are the broker's.
import { randomUUID } from 'node:crypto';
import type { Freshness } from '../broker/approval-freshness.ts';
import type { Broker } from '../broker/broker.ts';
import type { Channel, Grant, GrantId, Principal, UserId } from '../domain/index.ts';
import { validateRequest, type RequestLimits } from '../broker/validate.ts';
import { formatDuration } from '../config/duration.ts';
import type { TargetConfig } from '../config/schema.ts';
import { isPortcullisError, PortcullisError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Outbox } from '../notify/outbox.ts';
import { SLACK_SINK } from '../notify/slack.ts';
import type { Store } from '../store/store.ts';
import { ephemeral, grantLine, linkReply, mrkdwnEscape, type Block, type SlackMessage } from './blocks.ts';
import { helpText, parseCommand } from './commands.ts';
import type { SlackStore, SlackUser, TokenPayload } from './store.ts';
import type { SlackApi } from './web-api.ts';

export interface SlackSettings {
  signingSecret: string;
  botToken: string;
  apiUrl: string;
  command: string;
  teamIds: string[];
  approvalsChannel?: string | undefined;
  /** Where browsers reach the broker (links in replies). */
  publicUrl: string;
}

export interface SlackServiceDeps {
  settings: () => SlackSettings | undefined;
  slack: SlackStore;
  broker: Broker;
  store: Pick<Store, 'knownUser' | 'getGrant' | 'audit'>;
  outbox: Pick<Outbox, 'enqueue'>;
  api: SlackApi;
  freshness: (approver: Principal | undefined, grant: Grant, channel: Channel) => Freshness;
  limits: RequestLimits;
  targets: readonly TargetConfig[];
  log: Logger;
  clock?: () => number;
}

export interface CommandForm {
  team_id?: string;
  user_id?: string;
  user_name?: string;
  command?: string;
  text?: string;
  response_url?: string;
  trigger_id?: string;
}

const SLACK: Channel = 'slack';

export class SlackService {
  private readonly targets: Map<string, TargetConfig>;
  private readonly clock: () => number;

  constructor(private readonly deps: SlackServiceDeps) {
    this.targets = new Map(deps.targets.map((t) => [t.id, t]));
    this.clock = deps.clock ?? Date.now;
  }

  settings(): SlackSettings {
    const s = this.deps.settings();
    if (!s) throw new PortcullisError('IDP_UNAVAILABLE', 'the broker is still starting');
    return s;
  }

  /** Refusal text for a workspace that is not configured, or undefined when it is accepted. */
  refuseTeam(teamId: string | undefined): SlackMessage | undefined {
    if (teamId && this.settings().teamIds.includes(teamId)) return undefined;
    return ephemeral(':no_entry: This Slack workspace is not connected to Portcullis; ask your administrator to add its team id to `slack.teamIds`.');
  }

  /** Replies later through Slack's response_url, via the durable outbox. Only Slack's hosts (or the configured stand-in). */
  async respondLater(url: string | undefined, message: SlackMessage): Promise<void> {
    if (!url || !this.responseUrlAllowed(url)) return;
    await this.deps.outbox.enqueue(SLACK_SINK, { key: `response:${randomUUID()}`, grantId: null, payload: { type: 'response', url, message: { ...message } } });
  }

  responseUrlAllowed(url: string): boolean {
    if (!URL.canParse(url)) return false;
    const u = new URL(url);
    if (u.protocol === 'https:' && u.hostname === 'hooks.slack.com') return true;
    return u.origin === new URL(this.settings().apiUrl).origin;
  }

  private url(path: string): string {
    return `${this.settings().publicUrl}${path}`;
  }

  private async principalOf(sub: UserId): Promise<Principal> {
    const known = await this.deps.store.knownUser(sub);
    return { ...(known ?? { sub, groups: [], mfa: false, amr: [] }), channel: SLACK };
  }

  private async linkOffer(user: SlackUser, userName: string | null, responseUrl: string | null, why: string): Promise<SlackMessage> {
    const t = await this.deps.slack.createToken(user, { kind: 'link', userName, responseUrl });
    return linkReply(`${why} Open this link in your browser and sign in (with MFA) to link this Slack user to your identity.`, 'Sign in and link', this.url(`/slack/link/${t}`));
  }

  async command(form: CommandForm): Promise<SlackMessage> {
    const s = this.settings();
    const user: SlackUser = { teamId: form.team_id!, userId: form.user_id! };
    if (form.command && form.command !== s.command) return ephemeral(`:warning: This app answers \`${s.command}\`, not \`${mrkdwnEscape(form.command.slice(0, 32))}\`.`);
    const cmd = parseCommand(form.text ?? '', s.command);
    if ('mistake' in cmd) return ephemeral(`:warning: ${cmd.message}`);
    if (cmd.kind === 'help') return ephemeral(helpText(s.command));
    if (cmd.kind === 'open') {
      try {
        validateRequest({ target: cmd.target, duration: cmd.duration ?? '1h', reason: cmd.reason }, this.targets, this.deps.limits);
      } catch (e) {
        if (!isPortcullisError(e)) throw e;
        const hint = e.code === 'INVALID_TARGET' ? ` Type \`${s.command} targets\` for the list.` : ` Type \`${s.command} help\` for examples.`;
        return ephemeral(`:warning: ${e.message}.${hint}`);
      }
    }
    const responseUrl = form.response_url && this.responseUrlAllowed(form.response_url) ? form.response_url : null;
    const sub = await this.deps.slack.linkedSub(user);
    if (cmd.kind === 'unlink') {
      if (!(await this.deps.slack.unlink(user))) return ephemeral('This Slack user is not linked.');
      await this.deps.store.audit({ type: 'slack.unlinked', actor: sub ?? null, detail: { team: user.teamId, user: user.userId } });
      return ephemeral(':wave: Unlinked. Commands from this Slack user now ask you to link again.');
    }
    if (cmd.kind === 'link') return this.linkOffer(user, form.user_name ?? null, responseUrl, sub ? 'This Slack user is already linked; linking again replaces it.' : '');
    if (!sub) return this.linkOffer(user, form.user_name ?? null, responseUrl, ':link: This Slack user is not linked to a Portcullis identity yet.');
    const p = await this.principalOf(sub);
    try {
      switch (cmd.kind) {
        case 'open': {
          const t = await this.deps.slack.createToken(user, { kind: 'confirm', sub, target: cmd.target, duration: cmd.duration ?? '1h', reason: cmd.reason, responseUrl });
          return linkReply(
            `:desktop_computer: Open this link *on the computer that will connect* to \`${cmd.target}\`: it signs you in (MFA) and admits that computer's address for ${cmd.duration ?? '1h'}.`,
            `Confirm access to ${cmd.target}`,
            this.url(`/slack/confirm/${t}`),
          );
        }
        case 'ls': {
          const grants = (await this.deps.broker.listGrants(p, { limit: 15 })).filter((g) => ['pending', 'approved', 'opening', 'active'].includes(g.state) || (g.closedAt ?? 0) > this.clock() - 24 * 3600_000);
          return ephemeral(grants.length ? `*Your grants*\n${grants.map(grantLine).join('\n')}` : `You have no grants. Ask with \`${s.command} open <target> 1h <reason>\`.`);
        }
        case 'targets': {
          // What they may ask for once signed in afresh (the confirm link asks for that sign-in).
          const preview: Principal = { ...p, mfa: true, authTime: Math.floor(this.clock() / 1000) };
          const cap = this.deps.limits.maxDurationSeconds / 60;
          const lines = this.deps.broker.listTargets().map((t) => {
            const l = this.deps.broker.durationLimit(preview, t.id, '127.0.0.1', SLACK, cap);
            const may = l.minutes ? `up to ${formatDuration(l.minutes * 60)}${l.approval ? (l.immediateMinutes ? ` (approval beyond ${formatDuration(l.immediateMinutes * 60)})` : ' with approval') : ''}` : 'not for you';
            return `• \`${t.id}\` ${t.description ? mrkdwnEscape(t.description) : ''} — ${may}`;
          });
          return ephemeral(`*Targets*\n${lines.join('\n')}`);
        }
        case 'close': {
          const g = await this.deps.broker.revoke(p, cmd.id as GrantId);
          return ephemeral(`:lock: Grant \`${g.id}\` on \`${g.targetId}\` is ${g.state}.`);
        }
        case 'extend':
          return await this.extend(user, p, cmd.id, cmd.duration, responseUrl);
      }
    } catch (e) {
      return this.refusal(e);
    }
  }

  refusal(e: unknown): SlackMessage {
    if (isPortcullisError(e) && e.code !== 'INTERNAL') return ephemeral(`:no_entry: ${e.code}: ${mrkdwnEscape(e.message)}`);
    this.deps.log.error('slack: command failed', { error: (e as Error)?.name });
    return ephemeral(':warning: Something went wrong on the broker; nothing was changed. Try again in a minute.');
  }

  private async stepUp(user: SlackUser, payload: Extract<TokenPayload, { kind: 'act' }>, why: string, label: string): Promise<SlackMessage> {
    const t = await this.deps.slack.createToken(user, payload);
    return linkReply(`:closed_lock_with_key: ${why} Sign in again; it is recorded right after, no second click needed.`, label, this.url(`/slack/act/${t}`));
  }

  async extend(user: SlackUser, p: Principal, id: string, duration: string, responseUrl: string | null): Promise<SlackMessage> {
    try {
      const g = await this.deps.broker.extend(p, id as GrantId, { duration }, SLACK);
      return ephemeral(`:large_green_circle: Grant \`${g.id}\` extended; it now closes at <!date^${Math.floor(g.expiresAt! / 1000)}^{time}|${new Date(g.expiresAt!).toISOString().slice(11, 16)} UTC>.`);
    } catch (e) {
      if (isPortcullisError(e, 'MFA_TOO_OLD') || isPortcullisError(e, 'MFA_REQUIRED')) {
        return this.stepUp(user, { kind: 'act', sub: p.sub, action: 'extend', grantId: id, comment: null, duration, responseUrl }, 'Extending needs a recent MFA sign-in.', 'Sign in and extend');
      }
      return this.refusal(e);
    }
  }

  /** Approve or deny from a button: counts only with a fresh MFA sign-in known to the broker; otherwise a step-up link. */
  async decide(user: SlackUser, action: 'approve' | 'deny', id: string, comment: string | null, responseUrl: string | null): Promise<{ message: SlackMessage; stepUp?: string; done?: Grant }> {
    const sub = await this.deps.slack.linkedSub(user);
    if (!sub) return { message: await this.linkOffer(user, null, responseUrl, ':link: Approving from Slack needs a linked Slack user.') };
    const grant = /^g_[A-Za-z0-9_-]{10,40}$/.test(id) ? await this.deps.store.getGrant(id as GrantId) : undefined;
    if (!grant) return { message: ephemeral(`:warning: No grant ${mrkdwnEscape(id.slice(0, 48))}.`) };
    const known = await this.deps.store.knownUser(sub);
    const p: Principal = { ...(known ?? { sub, groups: [], mfa: false, amr: [] }), channel: SLACK };
    const payload = { kind: 'act' as const, sub, action, grantId: id, comment, duration: null, responseUrl };
    if (this.deps.freshness(known ? p : undefined, grant, SLACK) === 'stale') {
      const t = await this.deps.slack.createToken(user, payload);
      const url = this.url(`/slack/act/${t}`);
      const message = linkReply(`:closed_lock_with_key: Your last MFA sign-in is too old to ${action} from Slack. Sign in again; your ${action === 'approve' ? 'approval' : 'denial'} is recorded right after, no second click needed.`, `Sign in and ${action}`, url);
      return { message, stepUp: url };
    }
    try {
      const g = action === 'approve' ? await this.deps.broker.approve(p, grant.id, { comment }, SLACK) : await this.deps.broker.deny(p, grant.id, { comment }, SLACK);
      const text = action === 'deny' ? `:no_entry: You denied \`${g.id}\`.` : g.state === 'pending' ? `:white_check_mark: Approval recorded for \`${g.id}\`; it needs another approver.` : `:white_check_mark: You approved \`${g.id}\`; it is ${g.state}.`;
      return { message: ephemeral(text), done: g };
    } catch (e) {
      if (isPortcullisError(e, 'MFA_TOO_OLD') || isPortcullisError(e, 'MFA_REQUIRED')) {
        const t = await this.deps.slack.createToken(user, payload);
        const url = this.url(`/slack/act/${t}`);
        return { message: linkReply(':closed_lock_with_key: Your MFA sign-in is too old. Sign in again; it is recorded right after.', `Sign in and ${action}`, url), stepUp: url };
      }
      return { message: this.refusal(e) };
    }
  }

  /** Block Kit interactions: buttons (approve, deny → modal, extend) and the deny modal's submission. Returns the HTTP answer. */
  async interaction(payload: any): Promise<Record<string, unknown> | undefined> {
    const user: SlackUser = { teamId: String(payload.team?.id ?? payload.user?.team_id ?? ''), userId: String(payload.user?.id ?? '') };
    const refused = this.refuseTeam(user.teamId);
    const responseUrl = typeof payload.response_url === 'string' && this.responseUrlAllowed(payload.response_url) ? payload.response_url : null;
    if (payload.type === 'block_actions') {
      const action = payload.actions?.[0];
      if (refused) {
        await this.respondLater(responseUrl ?? undefined, { ...refused, replace_original: false });
        return undefined;
      }
      const id = String(action?.value ?? '');
      let reply: SlackMessage | undefined;
      switch (action?.action_id) {
        case 'approve':
          reply = (await this.decide(user, 'approve', id, null, responseUrl)).message;
          break;
        case 'deny': {
          if (!(await this.deps.slack.linkedSub(user))) {
            reply = await this.linkOffer(user, null, responseUrl, ':link: Denying from Slack needs a linked Slack user.');
            break;
          }
          await this.deps.api.call('views.open', { trigger_id: payload.trigger_id, view: denyModal(id, responseUrl) });
          return undefined;
        }
        case 'extend':
        case 'extend_1h': {
          const [gid, duration] = id.split(' ');
          const sub = await this.deps.slack.linkedSub(user);
          reply = sub ? await this.extend(user, await this.principalOf(sub), gid ?? '', duration ?? '30m', responseUrl) : await this.linkOffer(user, null, responseUrl, ':link: Extending needs a linked Slack user.');
          break;
        }
        default:
          return undefined; // link buttons and others need no answer
      }
      await this.respondLater(responseUrl ?? undefined, { ...reply, replace_original: false });
      return undefined;
    }
    if (payload.type === 'view_submission' && payload.view?.callback_id === 'deny') {
      if (refused) return { response_action: 'errors', errors: { comment: 'This workspace is not connected to Portcullis.' } };
      let meta: { grantId?: string; responseUrl?: string | null } = {};
      try {
        meta = JSON.parse(String(payload.view.private_metadata ?? '{}'));
      } catch {
        // a modal we did not open
      }
      const comment = payload.view.state?.values?.comment?.comment?.value ?? null;
      const r = await this.decide(user, 'deny', String(meta.grantId ?? ''), typeof comment === 'string' && comment.trim() ? comment.trim() : null, meta.responseUrl ?? null);
      if (r.done) return { response_action: 'clear' };
      return { response_action: 'update', view: noticeModal(r.message) };
    }
    return undefined;
  }
}

function denyModal(grantId: string, responseUrl: string | null): Record<string, unknown> {
  return {
    type: 'modal',
    callback_id: 'deny',
    private_metadata: JSON.stringify({ grantId, responseUrl }),
    title: { type: 'plain_text', text: 'Deny request' },
    submit: { type: 'plain_text', text: 'Deny' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `Deny \`${grantId}\`? The requester sees your comment.` } },
      { type: 'input', block_id: 'comment', optional: true, label: { type: 'plain_text', text: 'Comment' }, element: { type: 'plain_text_input', action_id: 'comment', max_length: 500 } },
    ],
  };
}

function noticeModal(m: SlackMessage): Record<string, unknown> {
  const blocks: Block[] = (m.blocks ?? [{ type: 'section', text: { type: 'mrkdwn', text: m.text } }]).filter((b) => b.type !== 'actions');
  const link = m.blocks?.find((b) => b.type === 'actions') as { elements?: { url?: string }[] } | undefined;
  if (link?.elements?.[0]?.url) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `<${link.elements[0].url}|Sign in and deny>` } });
  return { type: 'modal', callback_id: 'deny_notice', title: { type: 'plain_text', text: 'Deny request' }, close: { type: 'plain_text', text: 'Close' }, blocks };
}
