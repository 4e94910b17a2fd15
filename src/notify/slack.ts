// The Slack sink: the approvals-channel message (posted once, then updated on every state change),
// direct messages to the requester, and replies through a command's response_url.
import type { AuditEvent } from '../audit/chain.ts';
import type { Grant, GrantId, UserId } from '../domain/index.ts';
import type { TargetConfig } from '../config/schema.ts';
import { alertMessage, channelMessage, requesterMessage, type DmKind } from '../slack/blocks.ts';
import { formatDuration } from '../config/duration.ts';
import type { SlackStore } from '../slack/store.ts';
import type { SlackApi } from '../slack/web-api.ts';
import type { Store } from '../store/store.ts';
import type { Kysely } from 'kysely';
import type { Notification, NotifySink } from './port.ts';

export const SLACK_SINK = 'slack';

/** Minutes before expiry when the requester is told, with an Extend button. */
export const EXPIRY_WARNING_MS = 5 * 60_000;

const DM_FOR: Record<string, DmKind> = {
  'grant.pending': 'pending',
  'rule.opened': 'opened',
  'grant.closed': 'closed',
  'grant.idle': 'idle',
  'grant.denied': 'denied',
  'grant.pending_expired': 'timeout',
  'grant.failed': 'failed',
};

const CHANNEL_EVENTS = new Set(['grant.pending', 'grant.approval_recorded', 'grant.approved', 'rule.opened', 'grant.extended', 'grant.expired', 'grant.revoked', 'grant.closed', 'grant.denied', 'grant.pending_expired', 'grant.failed']);

export interface SlackSinkDeps {
  api: SlackApi;
  slack: SlackStore;
  store: Pick<Store, 'getGrant' | 'approvals' | 'knownUser' | 'auditEvents'>;
  db: Kysely<any>;
  targets: readonly TargetConfig[];
  approvalsChannel: () => string | undefined;
  /** Channel id (C…/G…) for watch alerts: `gate.alert` and `exposure.detected`. */
  alertChannel?: () => string | undefined;
  clock?: () => number;
}

export function slackSink(deps: SlackSinkDeps): NotifySink {
  const targets = new Map(deps.targets.map((t) => [t.id, t]));

  /** Only requests that went through approval have a channel message. */
  const inApprovalFlow = async (grantId: string): Promise<boolean> => {
    if (await deps.slack.channelMessage(grantId)) return true;
    const events = await deps.store.auditEvents({ grant: grantId, limit: 50 });
    return events.some((e) => e.type === 'grant.pending');
  };

  const names = async (subs: string[]): Promise<(sub: string) => string> => {
    const map = new Map<string, string>();
    for (const sub of new Set(subs)) {
      const linked = await deps.slack.slackUsersOf(sub);
      if (linked.length) {
        map.set(sub, `<@${linked[0]!.userId}>`);
        continue;
      }
      const known = await deps.store.knownUser(sub as UserId);
      map.set(sub, (known?.name ?? known?.email ?? sub).replace(/[<>&]/g, ''));
    }
    return (sub) => map.get(sub) ?? sub;
  };

  return {
    name: SLACK_SINK,

    async derive(e: AuditEvent): Promise<Notification[]> {
      if (e.type === 'gate.alert' || e.type === 'exposure.detected') {
        if (!deps.alertChannel?.()) return [];
        const event = { type: e.type, target: e.target, sourceIp: e.sourceIp, port: e.port, detail: e.detail };
        return [{ key: `${e.seq}:alert`, grantId: null, payload: { type: 'alert', event } }];
      }
      if (!e.grant) return [];
      // Most events of a self-served grant concern nobody in Slack: answer those without a query.
      if (e.type === 'grant.approved' && e.detail?.by === 'policy') return [];
      const out: Notification[] = [];
      if (CHANNEL_EVENTS.has(e.type) && deps.approvalsChannel() && (e.type === 'grant.pending' || (await inApprovalFlow(e.grant)))) {
        out.push({ key: `${e.seq}:channel`, grantId: e.grant, payload: { type: 'channel', grantId: e.grant } });
      }
      let dm: DmKind | undefined = DM_FOR[e.type];
      // A pending request closed early is told as "closed"; an active one is told by grant.closed.
      if (e.type === 'grant.revoked' && typeof e.detail?.from === 'string') dm = 'closed';
      // An idle grant's requester was told why by the grant.idle message; its close says nothing new.
      if (e.type === 'grant.closed' && e.detail?.reason === 'idle') dm = undefined;
      const idleFor = e.type === 'grant.idle' && typeof e.detail?.idleSinceMs === 'number' ? formatDuration(Math.round(e.detail.idleSinceMs / 1000)) : null;
      if (dm) {
        const g = await deps.store.getGrant(e.grant as GrantId);
        if (g) {
          for (const u of await deps.slack.slackUsersOf(g.requester)) {
            out.push({ key: `${e.seq}:dm:${u.teamId}:${u.userId}`, grantId: e.grant, payload: { type: 'dm', grantId: e.grant, kind: dm, user: u.userId, comment: e.type === 'grant.denied' ? (e.reason ?? null) : null, ...(idleFor ? { idleFor } : {}) } });
          }
        }
      }
      return out;
    },

    async scan(now: number): Promise<Notification[]> {
      const rows = await (deps.db as Kysely<{ grants: { id: string; requester: string; state: string; expires_at: number } }>)
        .selectFrom('grants')
        .select(['id', 'requester', 'expires_at'])
        .where('state', '=', 'active')
        .where('expires_at', '>', now)
        .where('expires_at', '<=', now + EXPIRY_WARNING_MS)
        .limit(5000)
        .execute();
      const out: Notification[] = [];
      for (const r of rows) {
        // Short grants (5 minutes or less) would be warned the moment they open: no use.
        const g = await deps.store.getGrant(r.id as GrantId);
        if (!g || g.durationSeconds * 1000 <= EXPIRY_WARNING_MS) continue;
        for (const u of await deps.slack.slackUsersOf(r.requester)) {
          // Keyed by the expiry: an extension earns a new warning before its new end.
          out.push({ key: `expiring:${r.id}:${Number(r.expires_at)}:${u.teamId}:${u.userId}`, grantId: r.id, payload: { type: 'dm', grantId: r.id, kind: 'expiring', user: u.userId, comment: null } });
        }
      }
      return out;
    },

    async deliver(p): Promise<void> {
      if (p.type === 'response') {
        await deps.api.respond(String(p.url), p.message as Record<string, unknown>);
        return;
      }
      if (p.type === 'alert') {
        const channel = deps.alertChannel?.();
        if (!channel) return;
        const msg = alertMessage(p.event as Parameters<typeof alertMessage>[0]);
        await deps.api.call('chat.postMessage', { channel, text: msg.text, blocks: msg.blocks, unfurl_links: false });
        return;
      }
      const g: Grant | undefined = await deps.store.getGrant(String(p.grantId) as GrantId);
      if (!g) return;
      if (p.type === 'channel') {
        const channel = deps.approvalsChannel();
        if (!channel) return;
        const approvals = await deps.store.approvals(g.id);
        const who = await names([g.requester, ...approvals.map((a) => a.approver)]);
        const msg = channelMessage({ grant: g, approvals, who, now: (deps.clock ?? Date.now)() });
        const existing = await deps.slack.channelMessage(g.id);
        if (existing) {
          await deps.api.call('chat.update', { channel: existing.channel, ts: existing.ts, text: msg.text, blocks: msg.blocks });
        } else {
          const res = await deps.api.call('chat.postMessage', { channel, text: msg.text, blocks: msg.blocks, unfurl_links: false });
          await deps.slack.rememberChannelMessage(g.id, String(res.channel ?? channel), String(res.ts));
        }
        return;
      }
      if (p.type === 'dm') {
        const msg = requesterMessage(p.kind as DmKind, g, targets.get(g.targetId), { comment: (p.comment as string | null) ?? null, idleFor: (p.idleFor as string | undefined) ?? null });
        await deps.api.call('chat.postMessage', { channel: String(p.user), text: msg.text, blocks: msg.blocks, unfurl_links: false });
      }
    },
  };
}
