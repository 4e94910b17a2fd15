// Block Kit rendering: the approvals-channel message, direct messages and ephemeral replies. Text only; no decisions.
import type { Approval, Grant } from '../domain/index.ts';
import type { TargetConfig } from '../config/schema.ts';
import { formatDuration } from '../config/duration.ts';

export type Block = Record<string, unknown>;

export interface SlackMessage {
  text: string;
  blocks?: Block[];
  response_type?: 'ephemeral' | 'in_channel';
  replace_original?: boolean;
}

/** Slack's mrkdwn treats &, < and > specially; user text must never become a mention or a link. */
export function mrkdwnEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A time Slack shows in the reader's own time zone; the fallback (UTC) is what other clients show. */
export function slackTime(ms: number): string {
  const d = new Date(ms);
  const hhmm = `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')} UTC`;
  return `<!date^${Math.floor(ms / 1000)}^{time}|${hhmm}>`;
}

const section = (text: string): Block => ({ type: 'section', text: { type: 'mrkdwn', text } });
const context = (text: string): Block => ({ type: 'context', elements: [{ type: 'mrkdwn', text }] });

export function ephemeral(text: string, blocks?: Block[]): SlackMessage {
  return { response_type: 'ephemeral', text, ...(blocks ? { blocks } : {}) };
}

/** An ephemeral answer carrying one link button (sign in, confirm, step up). */
export function linkReply(text: string, label: string, url: string): SlackMessage {
  return ephemeral(`${text} ${url}`, [
    section(text),
    { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: label }, url, style: 'primary', action_id: 'open_link' }] },
    context('Single use, valid for 10 minutes. Do not forward it.'),
  ]);
}

export interface ChannelView {
  grant: Grant;
  approvals: Approval[];
  /** How to show a user: a Slack mention when linked, else the name the IdP gave. */
  who: (sub: string) => string;
  now: number;
}

function stateLine(v: ChannelView): string {
  const g = v.grant;
  const approvers = v.approvals.filter((a) => a.decision === 'approve');
  const by = approvers.map((a) => `${v.who(a.approver)} at ${slackTime(a.createdAt)}`).join(', ');
  switch (g.state) {
    case 'pending':
      return `:hourglass_flowing_sand: *Waiting for approval* — ${approvers.length} of ${g.requiredApprovals} approvals${by ? ` (${by})` : ''}`;
    case 'approved':
    case 'opening':
      return `:key: *Approved* by ${by || 'policy'}; opening…`;
    case 'active':
      return `:large_green_circle: *Active* until ${slackTime(g.expiresAt!)} — approved by ${by || 'policy'}`;
    case 'closing':
      return `:lock: Closing…`;
    case 'closed': {
      const why = g.closeReason === 'expired' ? 'Expired' : g.closeReason === 'revoked' ? 'Revoked' : 'Closed';
      return `:lock: *${why}* at ${slackTime(g.closedAt ?? v.now)}${by ? ` — had been approved by ${by}` : ''}`;
    }
    case 'denied': {
      const d = v.approvals.find((a) => a.decision === 'deny');
      if (d) return `:no_entry: *Denied* by ${v.who(d.approver)} at ${slackTime(d.createdAt)}${d.comment ? `: “${mrkdwnEscape(d.comment)}”` : ''}`;
      return `:no_entry: *Denied*${g.failure === 'REQUESTER_NO_LONGER_PERMITTED' ? ': the requester is no longer permitted' : ' by policy'}`;
    }
    case 'expired':
      return `:alarm_clock: *Timed out*: nobody decided in time`;
    case 'failed':
      return `:warning: *Failed* to open (${mrkdwnEscape(g.failure ?? 'error')})`;
    default:
      return g.state;
  }
}

/** The approvals-channel message of one request, as it stands now. */
export function channelMessage(v: ChannelView): SlackMessage {
  const g = v.grant;
  const requester = v.who(g.requester);
  const fields = [
    `*Requester*\n${requester}`,
    `*Target*\n\`${g.targetId}\` port ${g.port}`,
    `*Duration*\n${formatDuration(g.durationSeconds)}`,
    `*Source*\n\`${g.source}\``,
    `*Reason*\n${mrkdwnEscape(g.reason)}`,
    `*Policy*\n${g.policyIds.map((p) => `\`${mrkdwnEscape(p)}\``).join(', ') || '—'}`,
  ].map((text) => ({ type: 'mrkdwn', text }));
  const blocks: Block[] = [
    section(`*Access request* \`${g.id}\``),
    { type: 'section', fields },
    section(stateLine(v)),
  ];
  if (g.state === 'pending') {
    blocks.push({
      type: 'actions',
      block_id: 'decide',
      elements: [
        { type: 'button', action_id: 'approve', value: g.id, style: 'primary', text: { type: 'plain_text', text: 'Approve' } },
        { type: 'button', action_id: 'deny', value: g.id, style: 'danger', text: { type: 'plain_text', text: 'Deny' } },
      ],
    });
    blocks.push(context('Approving needs a linked Slack user and a recent MFA sign-in; you get a sign-in link otherwise.'));
  }
  return { text: `Access request ${g.id}: ${g.targetId} for ${formatDuration(g.durationSeconds)} — ${stateLine(v).replace(/[*:]/g, '')}`, blocks };
}

export type DmKind = 'opened' | 'expiring' | 'closed' | 'idle' | 'denied' | 'timeout' | 'failed' | 'pending';

/** Direct messages to the requester about their own grant. */
export function requesterMessage(kind: DmKind, g: Grant, target: TargetConfig | undefined, extra: { comment?: string | null; idleFor?: string | null } = {}): SlackMessage {
  const connect = target?.connect ?? g.targetId;
  switch (kind) {
    case 'pending':
      return { text: `Your request for ${g.targetId} waits for ${g.requiredApprovals} approval(s).`, blocks: [section(`:hourglass_flowing_sand: Your request for \`${g.targetId}\` (\`${g.id}\`) waits for ${g.requiredApprovals === 1 ? 'an approver' : `${g.requiredApprovals} approvers`}.`)] };
    case 'opened':
      return {
        text: `Access to ${g.targetId} is open until ${slackTime(g.expiresAt!)}. Connect to ${connect} from ${g.source}.`,
        blocks: [
          section(`:large_green_circle: *Access to \`${g.targetId}\` is open* until ${slackTime(g.expiresAt!)}.`),
          section(`Connect with Remote Desktop to \`${connect}\` from the computer whose address was admitted (\`${g.source}\`).`),
          context(`Grant \`${g.id}\` · close it early with \`/rdp close ${g.id}\``),
        ],
      };
    case 'expiring':
      return {
        text: `Access to ${g.targetId} closes at ${slackTime(g.expiresAt!)} (in 5 minutes or less).`,
        blocks: [
          section(`:alarm_clock: Access to \`${g.targetId}\` closes at ${slackTime(g.expiresAt!)}.`),
          {
            type: 'actions',
            block_id: 'extend',
            elements: [
              { type: 'button', action_id: 'extend', value: `${g.id} 30m`, text: { type: 'plain_text', text: 'Extend 30 min' } },
              { type: 'button', action_id: 'extend_1h', value: `${g.id} 1h`, text: { type: 'plain_text', text: 'Extend 1 h' } },
            ],
          },
          context('An extension is decided by policy like any other request.'),
        ],
      };
    case 'closed':
      return { text: `Access to ${g.targetId} is closed (${g.closeReason ?? 'closed'}).`, blocks: [section(`:lock: Access to \`${g.targetId}\` is closed (${g.closeReason === 'expired' ? 'expired' : g.closeReason === 'revoked' ? 'closed early' : g.closeReason ?? 'closed'}). The port is shut again.`)] };
    case 'idle':
      return { text: `Access to ${g.targetId} was closed because it was idle${extra.idleFor ? ` for ${extra.idleFor}` : ''}.`, blocks: [section(`:zzz: Access to \`${g.targetId}\` was closed because it was idle${extra.idleFor ? ` for ${extra.idleFor}` : ''}: no packet reached it from \`${g.source}\`. The port is shut again; ask again if you still need it.`)] };
    case 'denied':
      return { text: `Your request for ${g.targetId} was denied.`, blocks: [section(`:no_entry: Your request for \`${g.targetId}\` (\`${g.id}\`) was denied${extra.comment ? `: “${mrkdwnEscape(extra.comment)}”` : '.'}`)] };
    case 'timeout':
      return { text: `Your request for ${g.targetId} timed out.`, blocks: [section(`:alarm_clock: Nobody decided your request for \`${g.targetId}\` in time; ask again if you still need it.`)] };
    case 'failed':
      return { text: `Access to ${g.targetId} could not be opened.`, blocks: [section(`:warning: Access to \`${g.targetId}\` could not be opened (${mrkdwnEscape(g.failure ?? 'error')}). Nothing was admitted.`)] };
  }
}

/** One line per grant for `/rdp ls`. */
export function grantLine(g: Grant): string {
  const until = g.state === 'active' && g.expiresAt ? ` until ${slackTime(g.expiresAt)}` : '';
  return `• \`${g.id}\` \`${g.targetId}\` — ${g.state}${g.closeReason ? ` (${g.closeReason})` : ''}${until} · ${mrkdwnEscape(g.reason.slice(0, 80))}`;
}

/** The answer shown after the confirm page: active, waiting, or refused. */
export function outcomeReply(g: Grant | undefined, error?: { code: string; message: string }): SlackMessage {
  if (error) return { ...ephemeral(`:no_entry: Refused (${error.code}): ${error.message}`), replace_original: true };
  if (g!.state === 'active') return { ...ephemeral(`:large_green_circle: Access to \`${g!.targetId}\` is open until ${slackTime(g!.expiresAt!)} for \`${g!.source}\` (grant \`${g!.id}\`).`), replace_original: true };
  if (g!.state === 'pending') return { ...ephemeral(`:hourglass_flowing_sand: Your request for \`${g!.targetId}\` waits for approval (grant \`${g!.id}\`); you get a message when it opens.`), replace_original: true };
  return { ...ephemeral(`Grant \`${g!.id}\` is ${g!.state}.`), replace_original: true };
}

/** A watch alert for the alert channel: a `gate.alert` (rate, open window) or an `exposure.detected` finding. */
export function alertMessage(e: { type: string; target?: string | undefined; sourceIp?: string | undefined; port?: number | undefined; detail?: Record<string, unknown> | undefined }): SlackMessage {
  const d = e.detail ?? {};
  const str = (v: unknown) => mrkdwnEscape(String(v ?? '?'));
  if (e.type === 'exposure.detected') {
    const ports = d.fromPort === d.toPort ? str(d.fromPort) : `${str(d.fromPort)}-${str(d.toPort)}`;
    const attached = Array.isArray(d.attachments) ? (d.attachments as { networkInterfaceId?: string; instanceId?: string }[]).map((a) => str(a.instanceId ?? a.networkInterfaceId)) : [];
    const text = `Exposure: ${String(d.groupId ?? '?')} in ${String(d.region ?? '?')} admits ${String(d.protocol ?? '?')}/${ports} from ${String(d.source ?? '?')}.`;
    return {
      text,
      blocks: [
        section(`:rotating_light: *Exposure found:* security group \`${str(d.groupId)}\` (${str(d.region)}) admits \`${str(d.protocol)}/${ports}\` from \`${str(d.source)}\` (${d.why === 'world' ? 'the whole internet' : 'a source Portcullis does not manage'}).`),
        context(`Rule \`${str(d.ruleId)}\` · attached to ${attached.length ? attached.join(', ') : 'nothing'} · remove it with \`portcullis exposure scan --region ${str(d.region)} --fix\``),
      ],
    };
  }
  const target = str(e.target ?? d.target ?? 'unknown target');
  const source = str(e.sourceIp ?? d.source);
  const where = `\`${target}\` port ${str(d.protocol ?? 'tcp')}/${str(e.port ?? d.port)}`;
  if (d.kind === 'open-window') {
    const open = Array.isArray(d.openFor) ? (d.openFor as { grant?: string; source?: string }[]) : [];
    return {
      text: `Gate alert: ${String(e.sourceIp ?? d.source)} knocked on ${String(e.target ?? d.target)} port ${String(e.port ?? d.port)} (${String(d.count)} attempts) while it is open for someone else.`,
      blocks: [
        section(`:warning: *Knocks on an open window:* \`${source}\` made ${str(d.count)} blocked attempt(s) on ${where} while it is open for ${open.map((o) => `\`${str(o.source)}\``).join(', ') || 'another source'}.`),
        context(`Grant(s) ${open.map((o) => `\`${str(o.grant)}\``).join(', ') || '?'} · \`portcullis attempts --target ${target}\` shows who else knocks`),
      ],
    };
  }
  return {
    text: `Gate alert: ${String(e.sourceIp ?? d.source)} made ${String(d.count)} blocked attempts on ${String(e.target ?? d.target)} port ${String(e.port ?? d.port)} (${String(d.perMinute)}/min, limit ${String(d.limit)}).`,
    blocks: [
      section(`:warning: *Brute force on the gate:* \`${source}\` made ${str(d.count)} blocked attempt(s) on ${where}: ${str(d.perMinute)} per minute, above the limit of ${str(d.limit)}.`),
      context(`\`portcullis attempts --target ${target}\` shows every source`),
    ],
  };
}
