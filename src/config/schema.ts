// The one typed configuration of Portcullis: every key, its default and its checks live here.
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from './duration.ts';

const duration = (what: string) =>
  z.string().refine((s) => parseDuration(s) !== undefined, {
    message: `${what} must be a duration such as 90s, 15m, 2h or PT2H`,
  });

const id = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be 1-63 characters of a-z, 0-9, ".", "_" or "-"');

const port = z.number().int().min(1).max(65_535);

const listen = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[0-9a-zA-Z.-]+):\d{1,5}$/, 'must be HOST:PORT');

const cidr = z.string().refine((s) => {
  const [addr, len, ...rest] = s.split('/');
  const fam = isIP(addr ?? '');
  if (rest.length > 0 || fam === 0) return false;
  if (len === undefined) return true;
  const n = Number(len);
  return /^\d+$/.test(len) && n >= 0 && n <= (fam === 4 ? 32 : 128);
}, 'must be an IP address or CIDR');

const awsSecurityGroup = z.strictObject({
  kind: z.literal('aws-security-group'),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as eu-west-1'),
  securityGroupId: z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'must be a security group id such as sg-0abc1234'),
  endpoint: z.url().optional(),
});

const nftables = z.strictObject({
  kind: z.literal('nftables'),
  table: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,30}$/, 'must be an nft table name').default('portcullis'),
  netns: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a network namespace name').optional(),
  /** Destination address of the protected host behind the gateway; omitted = any destination on the port. */
  destination: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address').optional(),
});

const simulated = z.strictObject({ kind: z.literal('simulated') });
const memory = z.strictObject({ kind: z.literal('memory') });

export const firewallSchema = z.discriminatedUnion('kind', [awsSecurityGroup, nftables, simulated, memory]);

const target = z.strictObject({
  id,
  description: z.string().max(200).optional(),
  connect: z.string().max(255).optional(),
  ports: z.array(port).min(1).default([3389]),
  tags: z.record(z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]{0,62}$/), z.string().max(200)).default({}),
  firewall: firewallSchema,
});

const oidcClient = z.strictObject({ id: z.string().min(1), secret: z.string().min(1).optional() });

export const configSchema = z
  .strictObject({
    server: z
      .strictObject({
        listen: listen.default('127.0.0.1:8080'),
        publicUrl: z.url().optional(),
        trustProxy: z.array(cidr).default([]),
        /** Refused credentials audited per source address per minute; the excess is counted and reported with the next one. */
        refusalAuditPerMinute: z.number().int().min(1).max(100_000).default(30),
      })
      .prefault({}),
    store: z
      .strictObject({
        url: z
          .string()
          .regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, 'must be sqlite:PATH or postgres://…')
          .default('sqlite:./data/portcullis.db'),
      })
      .prefault({}),
    oidc: z
      .strictObject({
        issuer: z.url().optional(),
        dangerouslyAllowHttpIssuer: z.boolean().default(false),
        clients: z
          .strictObject({ web: oidcClient.optional(), cli: oidcClient.optional() })
          .prefault({}),
        groupsClaim: z.string().min(1).default('groups'),
        /** Scopes asked at sign-in (web and CLI; the CLI adds offline_access). Add e.g. `groups` where the IdP releases groups only on request. */
        scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be an OAuth scope token')).default(['openid', 'profile', 'email']),
        mfa: z
          .strictObject({
            amr: z.array(z.string().min(1)).default(['mfa', 'otp', 'hwk', 'swk', 'sc']),
            acr: z.array(z.string().min(1)).default([]),
            maxAge: duration('oidc.mfa.maxAge').default('12h'),
          })
          .prefault({}),
      })
      .prefault({}),
    policy: z
      .strictObject({
        dir: z.string().min(1).default('./policies'),
        timeZone: z.string().default('UTC'),
        maxSourcePrefix: z
          .strictObject({
            ipv4: z.number().int().min(8).max(32).default(32),
            ipv6: z.number().int().min(16).max(128).default(128),
          })
          .prefault({}),
      })
      .prefault({}),
    grants: z
      .strictObject({
        minDuration: duration('grants.minDuration').default('5m'),
        maxDuration: duration('grants.maxDuration').default('8h'),
        pendingTimeout: duration('grants.pendingTimeout').default('1h'),
        reasonPattern: z.string().optional(),
        maxActivePerUser: z.number().int().min(1).default(10),
        /** Members may see every grant and close anyone's. */
        adminGroups: z.array(z.string().min(1)).default([]),
      })
      .prefault({}),
    targets: z.array(target).default([]),
    reaper: z
      .strictObject({
        sweep: z.string().default('*/15 * * * * *'),
      })
      .prefault({}),
    audit: z
      .strictObject({
        jsonl: z.string().min(1).optional(),
        /** Members may read and export the audit trail through the API. */
        readerGroups: z.array(z.string().min(1)).default([]),
      })
      .prefault({}),
    slack: z
      .strictObject({
        /** Verifies Slack's v0 request signatures; from the app's Basic Information page. */
        signingSecret: z.string().min(16, 'must be the app\'s signing secret (at least 16 characters)'),
        /** The bot token (xoxb-…) for the Web API. */
        botToken: z.string().min(1),
        /** Channel id (C…) where requests that need approval are posted with Approve / Deny buttons. */
        approvalsChannel: z.string().regex(/^[CGD][A-Z0-9]{2,30}$/, 'must be a Slack channel id such as C0123456').optional(),
        /** The slash command as registered in the app. */
        command: z.string().regex(/^\/[a-z0-9_-]{1,31}$/, 'must be a slash command such as /rdp').default('/rdp'),
        /** Workspaces (team ids, T…) whose requests are accepted; every other is refused. */
        teamIds: z.array(z.string().regex(/^[TE][A-Z0-9]{2,30}$/, 'must be a Slack team id such as T0123456')).min(1, 'needs at least one workspace: requests from any other are refused'),
        /** Slack's Web API base (tests and the demo point it at a stand-in). */
        apiUrl: z.url().default('https://slack.com/api/'),
        /** Generic webhook notifier: JSON events signed with HMAC-SHA256 (X-Portcullis-Signature). */
        webhooks: z.array(z.strictObject({ url: z.url(), secret: z.string().min(16, 'must be at least 16 characters') })).default([]),
      })
      .optional(),
    dev: z
      .strictObject({
        /** Mounts the development OpenID Provider at /idp. Never for production: its users are demo users. */
        embeddedIdp: z.boolean().default(false),
        /** Mounts a simulated Slack workspace at /dev/slack driving the real /slack endpoints. Demo only, like embeddedIdp. */
        simulatedSlack: z.boolean().default(false),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.targets.forEach((t, i) => {
      if (seen.has(t.id)) ctx.addIssue({ code: 'custom', path: ['targets', i, 'id'], message: `duplicate target id "${t.id}"` });
      seen.add(t.id);
    });
    const min = parseDuration(c.grants.minDuration);
    const max = parseDuration(c.grants.maxDuration);
    if (min !== undefined && max !== undefined && min > max) {
      ctx.addIssue({ code: 'custom', path: ['grants', 'minDuration'], message: 'must not exceed grants.maxDuration' });
    }
    if (c.grants.reasonPattern !== undefined) {
      try {
        new RegExp(c.grants.reasonPattern, 'u');
      } catch {
        ctx.addIssue({ code: 'custom', path: ['grants', 'reasonPattern'], message: 'must be a valid regular expression' });
      }
    }
    if (!c.dev.embeddedIdp && c.oidc.issuer === undefined) {
      ctx.addIssue({ code: 'custom', path: ['oidc', 'issuer'], message: 'is required (or set dev.embeddedIdp: true for the development IdP)' });
    }
    if (c.dev.embeddedIdp && c.oidc.issuer !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['oidc', 'issuer'], message: 'contradicts dev.embeddedIdp: the embedded IdP is its own issuer' });
    }
    if (c.oidc.issuer !== undefined && URL.canParse(c.oidc.issuer)) {
      const u = new URL(c.oidc.issuer);
      if (u.protocol === 'http:' && !c.oidc.dangerouslyAllowHttpIssuer) {
        ctx.addIssue({ code: 'custom', path: ['oidc', 'issuer'], message: 'uses http://; only https is accepted unless oidc.dangerouslyAllowHttpIssuer is true' });
      }
      if (u.protocol === 'http:' && c.oidc.dangerouslyAllowHttpIssuer && !isLoopbackHost(u.hostname)) {
        ctx.addIssue({ code: 'custom', path: ['oidc', 'dangerouslyAllowHttpIssuer'], message: 'is allowed only for a loopback issuer (127.0.0.0/8, ::1, localhost)' });
      }
    }
    if (c.oidc.issuer !== undefined && !c.oidc.clients.web && !c.oidc.clients.cli) {
      ctx.addIssue({ code: 'custom', path: ['oidc', 'clients'], message: 'needs at least one of web or cli' });
    }
    if (Array.isArray(c.oidc.scopes) && !c.oidc.scopes.includes('openid')) {
      ctx.addIssue({ code: 'custom', path: ['oidc', 'scopes'], message: 'must include openid' });
    }
    if (c.oidc.mfa.amr.length === 0 && c.oidc.mfa.acr.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['oidc', 'mfa'], message: 'needs at least one amr or acr value: MFA cannot be switched off' });
    }
    if (c.dev.embeddedIdp && typeof c.server.listen === 'string' && !isLoopbackHost(c.server.listen.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''))) {
      ctx.addIssue({ code: 'custom', path: ['dev', 'embeddedIdp'], message: 'is allowed only when server.listen is a loopback address' });
    }
    if (c.dev.simulatedSlack && !c.dev.embeddedIdp) {
      ctx.addIssue({ code: 'custom', path: ['dev', 'simulatedSlack'], message: 'is allowed only with dev.embeddedIdp (the demo)' });
    }
    if (c.dev.simulatedSlack && c.slack) {
      ctx.addIssue({ code: 'custom', path: ['dev', 'simulatedSlack'], message: 'contradicts the slack section: use one or the other' });
    }
    if (c.slack && URL.canParse(c.slack.apiUrl)) {
      const u = new URL(c.slack.apiUrl);
      if (u.protocol === 'http:' && !isLoopbackHost(u.hostname)) {
        ctx.addIssue({ code: 'custom', path: ['slack', 'apiUrl'], message: 'uses http://; only https is accepted (or a loopback stand-in)' });
      }
    }
    c.slack?.webhooks.forEach((w, i) => {
      if (URL.canParse(w.url) && new URL(w.url).protocol === 'http:' && !isLoopbackHost(new URL(w.url).hostname)) {
        ctx.addIssue({ code: 'custom', path: ['slack', 'webhooks', i, 'url'], message: 'uses http://; only https is accepted (or loopback)' });
      }
    });
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: c.policy.timeZone });
    } catch {
      ctx.addIssue({ code: 'custom', path: ['policy', 'timeZone'], message: `unknown time zone "${c.policy.timeZone}"` });
    }
  });

export type Config = z.output<typeof configSchema>;
export type TargetConfig = Config['targets'][number];
export type FirewallConfig = z.output<typeof firewallSchema>;

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
