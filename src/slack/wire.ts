// Builds the Slack transport and the notification outbox from the config; app.ts mounts and starts them.
import { randomBytes } from 'node:crypto';
import type express from 'express';
import type { Kysely } from 'kysely';
import { approvalFreshness } from '../broker/approval-freshness.ts';
import type { Broker } from '../broker/broker.ts';
import { parseDuration } from '../config/duration.ts';
import type { Config } from '../config/schema.ts';
import type { Authn } from '../http/authn.ts';
import { sessionCookieName } from '../http/web-auth.ts';
import type { SessionStore } from '../identity/sessions.ts';
import type { Logger } from '../log.ts';
import { Outbox } from '../notify/outbox.ts';
import type { NotifySink } from '../notify/port.ts';
import { slackSink } from '../notify/slack.ts';
import { webhookSink } from '../notify/webhook.ts';
import type { CedarPolicyEngine } from '../policy/cedar.ts';
import type { Store } from '../store/store.ts';
import { slackRouter } from './router.ts';
import { SlackService, type SlackSettings } from './service.ts';
import { SlackStore } from './store.ts';
import { slackApi } from './web-api.ts';

export interface SlackWiring {
  router: express.Router;
  outbox: Outbox;
  service: SlackService;
  slack: SlackStore;
  /** Called once the public URL is known (after listen). */
  resolve(publicUrl: string): SlackSettings;
  /** The demo's simulated workspace: its secrets, made up per start. */
  simulated?: { signingSecret: string; botToken: string; teamId: string; approvalsChannel: string };
}

export interface SlackWiringDeps {
  config: Config;
  db: Kysely<any>;
  store: Store;
  broker: Broker;
  policy: () => CedarPolicyEngine;
  authn: Authn;
  sessions: SessionStore;
  log: Logger;
  clock?: (() => number) | undefined;
  retry?: { baseMs?: number; maxMs?: number; maxAttempts?: number } | undefined;
  ackMs?: number | undefined;
}

/** The demo workspace of `dev.simulatedSlack` (src/dev/slack). */
export const SIMULATED = { teamId: 'TDEMO0001', approvalsChannel: 'CAPPROVALS' } as const;

/** undefined when neither `slack` nor `dev.simulatedSlack` is configured. */
export function wireSlack(deps: SlackWiringDeps): SlackWiring | undefined {
  const { config } = deps;
  const seconds = (d: string) => parseDuration(d)!;
  const simulated = config.dev.simulatedSlack
    ? { signingSecret: randomBytes(24).toString('base64url'), botToken: `xoxb-demo-${randomBytes(12).toString('hex')}`, ...SIMULATED }
    : undefined;
  const cfg = config.slack;
  if (!cfg && !simulated) return undefined;
  let settings: SlackSettings | undefined;
  const base = () => {
    if (!settings) throw new Error('Slack is not configured yet');
    return settings;
  };
  const clock = deps.clock ?? Date.now;
  const slack = new SlackStore(deps.db, clock);
  const api = slackApi({ apiUrl: () => base().apiUrl, botToken: () => base().botToken });
  const sinks: NotifySink[] = [
    slackSink({ api, slack, store: deps.store, db: deps.db, targets: config.targets, approvalsChannel: () => settings?.approvalsChannel, alertChannel: () => cfg?.alertChannel, clock }),
    ...(cfg?.webhooks ?? []).map((w, i) => webhookSink(i, w, clock)),
  ];
  const outbox = new Outbox({
    db: deps.db,
    auditAfter: (seq, limit) => deps.store.auditEvents({ afterSeq: seq, limit }),
    headSeq: async () => Number((await deps.db.selectFrom('audit_head').select('seq').where('id', '=', 1).executeTakeFirst())?.seq ?? 0),
    sinks,
    log: deps.log,
    clock,
    retry: deps.retry,
  });
  deps.store.onAudit(() => outbox.kick());
  const freshness = approvalFreshness({ policy: deps.policy, targets: config.targets, timeZone: config.policy.timeZone, mfaMaxAgeSeconds: seconds(config.oidc.mfa.maxAge), clock });
  const service = new SlackService({
    settings: () => settings,
    slack,
    broker: deps.broker,
    store: deps.store,
    outbox,
    api,
    freshness,
    limits: {
      minDurationSeconds: seconds(config.grants.minDuration),
      maxDurationSeconds: seconds(config.grants.maxDuration),
      reasonPattern: config.grants.reasonPattern === undefined ? undefined : new RegExp(config.grants.reasonPattern, 'u'),
    },
    targets: config.targets,
    log: deps.log,
    clock,
  });
  const router = slackRouter({
    service,
    slack,
    broker: deps.broker,
    store: deps.store,
    authn: deps.authn,
    csrf: async (req) => {
      if (!settings) return undefined;
      const id = readCookie(req.headers.cookie, sessionCookieName(settings.publicUrl));
      return id ? (await deps.sessions.getSession(id))?.csrf : undefined;
    },
    mfa: () => config.oidc.mfa,
    freshness,
    log: deps.log,
    clock,
    ackMs: deps.ackMs,
  });
  return {
    router,
    outbox,
    service,
    slack,
    simulated,
    resolve(publicUrl) {
      settings = cfg
        ? { signingSecret: cfg.signingSecret, botToken: cfg.botToken, apiUrl: cfg.apiUrl, command: cfg.command, teamIds: cfg.teamIds, approvalsChannel: cfg.approvalsChannel, publicUrl }
        : { signingSecret: simulated!.signingSecret, botToken: simulated!.botToken, apiUrl: `${publicUrl}/dev/slack/api/`, command: '/rdp', teamIds: [simulated!.teamId], approvalsChannel: simulated!.approvalsChannel, publicUrl };
      return settings;
    },
  };
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
