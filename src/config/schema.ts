// The one typed configuration of Portcullis: every key, its default and its checks live here.
import { isIP } from 'node:net';
import { z } from 'zod';
import { cidrOverlaps, parseAddress, parseCidr, readCidr, type Cidr } from '../net/cidr.ts';
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

/** IPv4-mapped IPv6 is refused: an IPv4 packet never matches it, so it would guard nothing. */
const destinationAddress = z.string().refine((s) => {
  const a = parseAddress(s);
  return a !== undefined && !(a.family === 6 && a.value >> 32n === 0xffffn);
}, 'must be an IP address');

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
});

const simulated = z.strictObject({ kind: z.literal('simulated') });
const memory = z.strictObject({ kind: z.literal('memory') });

export const firewallSchema = z.discriminatedUnion('kind', [awsSecurityGroup, nftables, simulated, memory]);

const target = z.strictObject({
  id,
  description: z.string().max(200).optional(),
  connect: z.string().max(255).optional(),
  ports: z.array(port).min(1).default([3389]),
  /**
   * Address(es) a grant admits to (nftables matches them; one machine reached on several addresses is
   * one target with several). Default: the host of `connect` when it is an IP literal; else any.
   */
  destination: z.union([destinationAddress, z.array(destinationAddress).min(1).max(16)]).optional(),
  /** Protocols a grant admits on its port. Default [tcp, udp] when the ports include 3389 (RDP uses both), else [tcp]. */
  protocols: z.array(z.enum(['tcp', 'udp'])).min(1).optional(),
  tags: z.record(z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]{0,62}$/), z.string().max(200)).default({}),
  /**
   * What happens to connections established during a grant when it ends: `cut` (default) drops their
   * packets from then on; `keep` lets them finish while new ones are refused (nftables: conntrack).
   * Unset means `cut`. AWS security groups are stateful and always keep tracked connections (see the README).
   */
  onExpiry: z.enum(['cut', 'keep']).optional(),
  /** Off unless set: a grant whose packet counter (nftables) has not moved for this long is closed with reason `idle`. */
  idleTimeout: duration('targets[].idleTimeout').optional(),
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
        /** Anonymous refusals audited per minute in all; the excess is counted and summarised once per minute. */
        refusalAuditGlobalPerMinute: z.number().int().min(1).max(1_000_000).default(300),
        /** Per address prefix (/24 IPv4, /64 IPv6) and per user; past a limit the answer is 429 with Retry-After. */
        rateLimits: z
          .strictObject({
            window: duration('server.rateLimits.window').default('1m'),
            signInPerAddress: z.number().int().min(1).default(60),
            refusedPerAddress: z.number().int().min(1).default(120),
            grantRequestsPerUser: z.number().int().min(1).default(30),
            grantRequestsPerAddress: z.number().int().min(1).default(300),
            inFlightSignInsPerAddress: z.number().int().min(1).default(30),
            inFlightSignIns: z.number().int().min(1).default(10_000),
          })
          .prefault({}),
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
        /** Leeway for the clocks of broker and IdP disagreeing: on exp, nbf, iat and auth_time. */
        clockSkew: duration('oidc.clockSkew').default('60s'),
        /** The longest ID token lifetime (exp − iat) accepted. */
        maxTokenLifetime: duration('oidc.maxTokenLifetime').default('24h'),
        /** Optional: refuse ID tokens issued longer ago than this, even before their exp (a bearer token outlives web logout). */
        maxTokenAge: duration('oidc.maxTokenAge').optional(),
        mfa: z
          .strictObject({
            amr: z.array(z.string().min(1)).default(['mfa', 'otp', 'hwk', 'swk', 'sc']),
            acr: z.array(z.string().min(1)).default([]),
            maxAge: duration('oidc.mfa.maxAge').default('12h'),
            /** Counts amr values RFC 8176 does not define as a second factor (pwd, pin, kba, custom values) as MFA. */
            dangerouslyAllowNonMfaAmr: z.boolean().default(false),
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
    /** The exposure scan (`portcullis exposure scan --region`). */
    exposure: z
      .strictObject({
        /** Security groups `exposure scan --region … --fix` may change; any other is refused unless `--all`. */
        allowGroups: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'must be a security group id such as sg-0abc1234')).default([]),
        /** node-cron (with seconds): run the region-wide scan from `serve`, auditing each new finding once as `exposure.detected`. Off unless set. */
        schedule: z.string().optional(),
        /** Regions the schedule scans; default: the regions of the AWS targets. */
        regions: z.array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, 'must be an AWS region such as eu-west-1')).optional(),
      })
      .prefault({}),
    /** Watching the gate: per-source counting of blocked attempts (nftables), summaries and alerts. */
    watch: z
      .strictObject({
        attempts: z
          .strictObject({
            /** Most sources (source, destination, protocol, port) each attempt set holds; more are dropped too, only counted together. */
            setSize: z.number().int().min(16).max(1_000_000).default(4096),
            /** A source is forgotten this long after its last attempt. */
            timeout: duration('watch.attempts.timeout').default('1h'),
            /** One `gate.attempts` summary is audited per window that saw attempts. */
            window: duration('watch.attempts.window').default('5m'),
            /** Sources named in each summary and in /metrics. */
            top: z.number().int().min(1).max(100).default(20),
            /** A source above this many attempts per minute (over one sweep) raises a `gate.alert`; 0 turns it off. */
            alertPerMinute: z.number().int().min(0).default(60),
            /** Attempts from other sources on a port while a grant holds it open raise a `gate.alert`. */
            alertOpenWindow: z.boolean().default(true),
          })
          .prefault({}),
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
        /** Channel id (C… or G…) where watch alerts are posted: gate.alert (a source above the rate, knocks on an open window) and exposure.detected. */
        alertChannel: z.string().regex(/^[CG][A-Z0-9]{2,30}$/, 'must be a Slack channel id such as C0123456 (a channel, not a person)').optional(),
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
      // Only nft elements count their packets; elsewhere the setting would silently never close anything.
      if (t.idleTimeout !== undefined && t.firewall.kind !== 'nftables') ctx.addIssue({ code: 'custom', path: ['targets', i, 'idleTimeout'], message: `idleTimeout needs an nftables firewall (target "${t.id}" uses ${t.firewall.kind})` });
      if (t.idleTimeout !== undefined && (parseDuration(t.idleTimeout) ?? 0) < 1) ctx.addIssue({ code: 'custom', path: ['targets', i, 'idleTimeout'], message: 'idleTimeout must be at least 1s' });
      seen.add(t.id);
    });
    for (const issue of sharedGates(c.targets)) ctx.addIssue({ code: 'custom', ...issue });
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
    const notMfa = c.oidc.mfa.amr.filter((v) => !RFC8176_SECOND_FACTORS.has(v));
    if (notMfa.length > 0 && !c.oidc.mfa.dangerouslyAllowNonMfaAmr) {
      ctx.addIssue({
        code: 'custom',
        path: ['oidc', 'mfa', 'amr'],
        message: `lists ${notMfa.length === 1 ? 'a value' : 'values'} that RFC 8176 does not define as a second factor (${notMfa.map((v) => JSON.stringify(v.slice(0, 20))).join(', ')}): a sign-in with only that would count as MFA; use ${[...RFC8176_SECOND_FACTORS].join(', ')}, or set oidc.mfa.dangerouslyAllowNonMfaAmr: true if your IdP really means a second factor by it`,
      });
    }
    if (c.oidc.mfa.amr.length === 0 && c.oidc.mfa.acr.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['oidc', 'mfa'], message: 'needs at least one amr or acr value: MFA cannot be switched off' });
    }
    if (c.dev.embeddedIdp && typeof c.server.listen === 'string' && !isLoopbackHost(c.server.listen.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''))) {
      ctx.addIssue({ code: 'custom', path: ['dev', 'embeddedIdp'], message: 'is allowed only when server.listen is a loopback address' });
    }
    if (c.server.publicUrl !== undefined && URL.canParse(c.server.publicUrl)) {
      const u = new URL(c.server.publicUrl);
      const loopback = isLoopbackHost(u.hostname.replace(/^\[|\]$/g, ''));
      // Behind a proxy the broker listens on loopback while the world reaches it at publicUrl: the demo users of the
      // development IdP would be everyone's to sign in as.
      if (c.dev.embeddedIdp && !loopback) {
        ctx.addIssue({ code: 'custom', path: ['server', 'publicUrl'], message: 'must be a loopback URL while dev.embeddedIdp is true: the development IdP and its demo users must not be reachable from elsewhere' });
      }
      if (!['http:', 'https:'].includes(u.protocol)) {
        ctx.addIssue({ code: 'custom', path: ['server', 'publicUrl'], message: 'must be an https:// URL' });
      } else if (u.protocol === 'http:' && !loopback) {
        ctx.addIssue({ code: 'custom', path: ['server', 'publicUrl'], message: 'uses http:// on a non-loopback host: session cookies and sign-in codes would cross the network in clear; use https://' });
      }
    }
    checkTrustProxy(c.server.trustProxy, ctx);
    const rateWindow = parseDuration(c.server.rateLimits.window);
    if (rateWindow !== undefined && (rateWindow < 1 || rateWindow > 3600)) {
      ctx.addIssue({ code: 'custom', path: ['server', 'rateLimits', 'window'], message: 'must be between 1s and 1h' });
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

// RFC 8176 §2 methods that are, or include, a factor beyond a password: multiple factors or channels, one-time codes,
// possession of a key, a device or a phone, and biometrics. Not here: pwd, pin, kba (knowledge), geo, rba, user, wia
// (no second factor by themselves) and anything outside the registry.
const RFC8176_SECOND_FACTORS = new Set(['mfa', 'mca', 'otp', 'sms', 'tel', 'hwk', 'swk', 'sc', 'pop', 'fpt', 'face', 'iris', 'retina', 'vbm']);

// Address space no client on the internet has: loopback, private, shared (CGNAT), link-local, unique local. A trusted
// proxy there is one of ours; trusting public space lets whoever sits there pick any caller address.
const NON_PUBLIC = ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '::1/128', 'fc00::/7', 'fe80::/10'].map((t) => parseCidr(t)!);
/** A trusted proxy fleet in public space (a CDN's ranges) is narrower than this per entry, and in total. */
const PUBLIC_TRUST = { ipv4: 16, ipv6: 32, totalIpv4: 2n ** 20n, totalIpv6: 2n ** 100n };

function inside(c: Cidr, outer: Cidr): boolean {
  return c.family === outer.family && c.prefix >= outer.prefix && cidrOverlaps(c, outer);
}

/**
 * server.trustProxy: every entry believed in X-Forwarded-For lets its holder choose the caller address, which becomes
 * the source of a rule. Private space is fine; public space only in narrow blocks (a CDN's ranges), never /0 or halves.
 */
function checkTrustProxy(list: readonly string[], ctx: z.RefinementCtx): void {
  let public4 = 0n;
  let public6 = 0n;
  list.forEach((text, i) => {
    const parts = readCidr(text);
    if (!parts) return;
    const c: Cidr = { family: parts.address.family, network: parts.address.value, prefix: parts.prefix };
    if (NON_PUBLIC.some((n) => inside(c, n))) return;
    const widest = c.family === 4 ? PUBLIC_TRUST.ipv4 : PUBLIC_TRUST.ipv6;
    if (c.prefix < widest) {
      ctx.addIssue({ code: 'custom', path: ['server', 'trustProxy', i], message: `covers public address space wider than /${widest}: any client there could choose its own source address through X-Forwarded-For` });
      return;
    }
    const size = 1n << BigInt((c.family === 4 ? 32 : 128) - c.prefix);
    if (c.family === 4) public4 += size;
    else public6 += size;
  });
  if (public4 > PUBLIC_TRUST.totalIpv4 || public6 > PUBLIC_TRUST.totalIpv6) {
    ctx.addIssue({ code: 'custom', path: ['server', 'trustProxy'], message: 'trusts more public address space in total than a proxy fleet needs: clients there could choose their own source address' });
  }
}

export type Config = z.output<typeof configSchema>;
export type TargetConfig = Config['targets'][number];
export type FirewallConfig = z.output<typeof firewallSchema>;

/** The addresses a target's grants admit to: `destination`, else the IP literal of `connect`; empty = any. */
export function targetDestinations(t: Pick<TargetConfig, 'destination' | 'connect'>): string[] {
  const raw = t.destination ?? connectAddress(t.connect);
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return [...new Set(list.map((d) => parseAddress(d)?.text ?? d))];
}

/** The protocols a target's grants admit on (see `protocols`). */
export function targetProtocols(t: Pick<TargetConfig, 'protocols' | 'ports'>): ('tcp' | 'udp')[] {
  return t.protocols ?? (t.ports.includes(3389) ? ['tcp', 'udp'] : ['tcp']);
}

function connectAddress(connect: string | undefined): string | undefined {
  if (connect === undefined) return undefined;
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(connect) ?? /^([^:]+)(?::\d+)?$/.exec(connect);
  const host = m?.[1] ?? connect;
  return isIP(host) !== 0 ? host : undefined;
}

/**
 * One grant admits to one target: two targets behind one security group, or on one nft table and
 * namespace without distinct destinations, would each admit to the other. Both are refused, by name.
 */
function sharedGates(targets: readonly TargetConfig[]): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const groups = new Map<string, number>();
  const tables = new Map<string, number[]>();
  targets.forEach((t, i) => {
    const f = t.firewall;
    if (f.kind === 'aws-security-group') {
      const key = `${f.region}/${f.securityGroupId}`;
      const j = groups.get(key);
      if (j === undefined) groups.set(key, i);
      else issues.push({ path: ['targets', i, 'firewall', 'securityGroupId'], message: `targets "${targets[j]!.id}" and "${t.id}" share security group ${key}: a grant on either would admit to both; give each target its own security group` });
    }
    if (f.kind === 'nftables') {
      const key = `${f.netns ?? ''}/${f.table}`;
      tables.set(key, [...(tables.get(key) ?? []), i]);
    }
  });
  for (const members of tables.values()) {
    for (let a = 0; a < members.length; a++) {
      for (let b = a + 1; b < members.length; b++) {
        const [ta, tb] = [targets[members[a]!]!, targets[members[b]!]!];
        const f = tb.firewall as { table: string; netns?: string | undefined };
        const where = `nft table ${f.table}${f.netns === undefined ? '' : ` in netns ${f.netns}`}`;
        const [da, db] = [targetDestinations(ta), targetDestinations(tb)];
        const shared = da.filter((d) => db.includes(d));
        if (da.length === 0 || db.length === 0 || shared.length > 0) {
          const why = shared.length > 0 ? `both name destination ${shared.join(', ')}` : `"${(da.length === 0 ? ta : tb).id}" has no destination (set destination, or connect to an IP address)`;
          issues.push({ path: ['targets', members[b]!, 'destination'], message: `targets "${ta.id}" and "${tb.id}" share ${where} and ${why}: a grant on either would admit to both` });
        }
      }
    }
  }
  return issues;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
