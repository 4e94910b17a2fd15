// AWS security-group adapter: one tagged ingress rule per grant and declared protocol, revokes batched per group, managed-rule listing, exposure scan.
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateTagsCommand,
  DescribeSecurityGroupRulesCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  RevokeSecurityGroupIngressCommand,
  type Filter,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import type { FirewallConfig } from '../config/schema.ts';
import { PortcullisError } from '../errors.ts';
import { isWorld, parseSource, sameSource } from './aws-cidr.ts';
import { NOT_FOUND_CODES, toPortcullisError } from './aws-errors.ts';
import { DEFAULT_RETRY, errorCode, withRetry, type RetryOptions } from './aws-retry.ts';
import type { Exposure, ExposureScanner, FirewallAdapter, FirewallHealth, ManagedRule, Protocol, RuleSpec } from './port.ts';

export type AwsFirewallConfig = Extract<FirewallConfig, { kind: 'aws-security-group' }>;

/** Tags every Portcullis rule carries, so a crash or a lost database still leaves the backend self-describing. */
export const TAG_MANAGED = 'portcullis:managed';
export const TAG_GRANT = 'portcullis:grant';
export const TAG_EXPIRES = 'portcullis:expires';
/** One more tag per further grant that shares the rule (same source, port and group): `portcullis:grant:<id>` = expiry. */
export const TAG_SHARED_PREFIX = 'portcullis:grant:';

export interface AwsAdapterOptions {
  /** Protocols a grant admits on its port, one ingress rule each (the target's `protocols`). Default [tcp]. */
  protocols?: Protocol[];
  /** A ready client; by default one is built for the config's region and endpoint with the SDK's default credential chain. */
  client?: EC2Client;
  retry?: Partial<RetryOptions>;
  /** MaxResults for DescribeSecurityGroupRules (EC2 accepts 5–1000). */
  pageSize?: number;
  /** Rule ids per RevokeSecurityGroupIngress; also the value count of the follow-up filter, which EC2 caps at 200. */
  revokeBatchSize?: number;
  /** Socket timeouts of the default client. */
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
}

interface ParsedRef {
  groupId: string;
  /** The first rule (the grant's TCP rule). */
  ruleId: string;
  /** Every rule of the grant, one per protocol. */
  ruleIds: string[];
}

const REF = /^(sg-[0-9a-f]+)\/(sgr-[0-9a-f]+(?:\+sgr-[0-9a-f]+){0,3})$/;
// EC2's documented character set for rule descriptions; anything else is replaced.
const DESCRIPTION_CHAR = /[^a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]/g;
const MAX_GRANT_ID = 128 - TAG_SHARED_PREFIX.length;

/** `sg-…/sgr-…[+sgr-…]`: the grant's rule ids (one per protocol) plus their group, because a revoke names both. */
export function ruleRef(groupId: string, ...ruleIds: string[]): string {
  return `${groupId}/${ruleIds.join('+')}`;
}

export function parseRuleRef(ref: string): ParsedRef | undefined {
  const m = REF.exec(ref);
  if (!m) return undefined;
  const ruleIds = m[2]!.split('+');
  return { groupId: m[1]!, ruleId: ruleIds[0]!, ruleIds };
}

export class AwsSecurityGroupAdapter implements FirewallAdapter, ExposureScanner {
  readonly kind = 'aws-security-group';
  readonly scope: string;
  readonly simulated = false;
  readonly region: string;
  readonly groupId: string;
  private readonly client: EC2Client;
  private readonly ownsClient: boolean;
  private readonly retry: RetryOptions;
  readonly maxCallSeconds: number;
  private readonly pageSize: number;
  private readonly batchSize: number;
  private readonly protocols: Protocol[];

  constructor(cfg: AwsFirewallConfig, opts: AwsAdapterOptions = {}) {
    this.protocols = [...new Set(opts.protocols ?? ['tcp'])].sort() as Protocol[];
    if (this.protocols.length === 0 || this.protocols.some((p) => p !== 'tcp' && p !== 'udp')) {
      throw new PortcullisError('CONFIG_INVALID', 'aws: protocols must be tcp and/or udp', { field: 'protocols' });
    }
    this.region = cfg.region;
    this.groupId = cfg.securityGroupId;
    this.scope = `aws:${cfg.region}/${cfg.securityGroupId}`;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.pageSize = clamp(opts.pageSize ?? 1000, 5, 1000);
    this.batchSize = clamp(opts.revokeBatchSize ?? 100, 1, 200);
    this.ownsClient = opts.client === undefined;
    this.client =
      opts.client ??
      new EC2Client({
        region: cfg.region,
        ...(cfg.endpoint === undefined ? {} : { endpoint: cfg.endpoint }),
        // Retries are ours (withRetry), so the SDK must not multiply them.
        maxAttempts: 1,
        requestHandler: { connectionTimeout: opts.connectionTimeoutMs ?? 3_000, requestTimeout: opts.requestTimeoutMs ?? 15_000 },
      });
    // Every attempt may time out, with the longest back-off between attempts (defaults: 6 × 18 s + 5 × 5 s = 133 s).
    const perAttemptMs = (opts.connectionTimeoutMs ?? 3_000) + (opts.requestTimeoutMs ?? 15_000);
    this.maxCallSeconds = (this.retry.maxAttempts * perAttemptMs + (this.retry.maxAttempts - 1) * this.retry.maxDelayMs) / 1000;
  }

  /**
   * One rule per declared protocol, all in one call (EC2 adds all or none). A Duplicate means some rule
   * is already there (a retry, or another grant of the same source): then each protocol on its own.
   */
  async open(rule: RuleSpec): Promise<string> {
    const source = this.checkSpec(rule);
    const expires = new Date(rule.expiresAt).toISOString();
    try {
      return ruleRef(this.groupId, ...(await this.authorize(rule, source, this.protocols, expires)));
    } catch (e) {
      if (errorCode(e) !== 'InvalidPermission.Duplicate') throw this.fail(e, 'AuthorizeSecurityGroupIngress');
    }
    const ids: string[] = [];
    for (const protocol of this.protocols) ids.push(await this.openOne(rule, source, protocol, expires));
    return ruleRef(this.groupId, ...ids);
  }

  private async openOne(rule: RuleSpec, source: NonNullable<ReturnType<typeof parseSource>>, protocol: Protocol, expires: string): Promise<string> {
    for (let round = 0; round < 3; round++) {
      try {
        return (await this.authorize(rule, source, [protocol], expires))[0]!;
      } catch (e) {
        if (errorCode(e) !== 'InvalidPermission.Duplicate') throw this.fail(e, 'AuthorizeSecurityGroupIngress');
      }
      const existing = await this.findMatching(source.cidr, rule.port, protocol);
      // Revoked between our Duplicate and our look-up: try to add it again.
      if (!existing) continue;
      await this.joinExisting(existing, rule, expires);
      return existing.SecurityGroupRuleId!;
    }
    throw new PortcullisError('FIREWALL_ERROR', `EC2 kept reporting a duplicate rule on ${this.scope} that could not be found`);
  }

  /** One AuthorizeSecurityGroupIngress, tags on the call itself; the new rule ids in protocol order. */
  private async authorize(rule: RuleSpec, source: NonNullable<ReturnType<typeof parseSource>>, protocols: Protocol[], expires: string): Promise<string[]> {
    const range = source.family === 4
      ? { IpRanges: [{ CidrIp: source.cidr, Description: describe(rule.grantId, expires) }] }
      : { Ipv6Ranges: [{ CidrIpv6: source.cidr, Description: describe(rule.grantId, expires) }] };
    const out = await this.call(() =>
      this.client.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: this.groupId,
          IpPermissions: protocols.map((p) => ({ IpProtocol: p, FromPort: rule.port, ToPort: rule.port, ...range })),
          TagSpecifications: [
            {
              ResourceType: 'security-group-rule',
              Tags: [
                { Key: TAG_MANAGED, Value: 'true' },
                { Key: TAG_GRANT, Value: rule.grantId },
                { Key: TAG_EXPIRES, Value: expires },
              ],
            },
          ],
        }),
      ),
    );
    const ids = protocols.map((p) => out.SecurityGroupRules?.find((r) => r.IpProtocol === p)?.SecurityGroupRuleId);
    if (ids.some((id) => !id)) throw new PortcullisError('FIREWALL_ERROR', `EC2 accepted the rule on ${this.scope} but returned no rule id`);
    return ids as string[];
  }

  async close(refs: string[]): Promise<void> {
    const parsed = refs.map((ref) => {
      const p = parseRuleRef(ref);
      if (!p) throw new PortcullisError('INVALID_REQUEST', `"${ref}" is not an AWS security group rule reference (sg-…/sgr-…)`);
      return p;
    });
    const byGroup = new Map<string, Set<string>>();
    for (const p of parsed) for (const id of p.ruleIds) byGroup.set(p.groupId, (byGroup.get(p.groupId) ?? new Set()).add(id));
    const failures: { groupId: string; ruleIds: string[]; error: PortcullisError }[] = [];
    for (const [groupId, ids] of byGroup) {
      const all = [...ids];
      for (let i = 0; i < all.length; i += this.batchSize) {
        const batch = all.slice(i, i + this.batchSize);
        try {
          await this.revokeBatch(groupId, batch);
        } catch (e) {
          failures.push({ groupId, ruleIds: batch, error: this.fail(e, 'RevokeSecurityGroupIngress') });
        }
      }
    }
    if (failures.length > 0) {
      // Every batch was tried; report all that failed, not just the first.
      const failed = failures.flatMap((f) => f.ruleIds.map((r) => ruleRef(f.groupId, r)));
      const unavailable = failures.some((f) => f.error.code === 'FIREWALL_UNAVAILABLE');
      throw new PortcullisError(unavailable ? 'FIREWALL_UNAVAILABLE' : 'FIREWALL_ERROR', `could not close ${failed.length} of ${parsed.length} rules on ${this.scope}: ${failures[0]!.error.message}`, {
        cause: failures[0]!.error,
        details: { failedRefs: failed, codes: [...new Set(failures.map((f) => f.error.code))] },
      });
    }
  }

  async list(): Promise<ManagedRule[]> {
    const rules = await this.describeRules([
      { Name: 'group-id', Values: [this.groupId] },
      { Name: `tag:${TAG_MANAGED}`, Values: ['true'] },
    ]);
    return groupByGrant(this.groupId, rules.filter((r) => !r.IsEgress && r.SecurityGroupRuleId));
  }

  async check(): Promise<FirewallHealth> {
    try {
      const out = await this.call(() => this.client.send(new DescribeSecurityGroupsCommand({ GroupIds: [this.groupId] })));
      const group = out.SecurityGroups?.find((g) => g.GroupId === this.groupId);
      if (!group) return { ok: false, detail: `security group ${this.groupId} not found in ${this.region}` };
      return { ok: true, detail: `${this.scope} reachable (${group.IpPermissions?.length ?? 0} inbound permissions)` };
    } catch (e) {
      return { ok: false, detail: this.fail(e, 'DescribeSecurityGroups').message };
    }
  }

  async scanExposure(ports: number[]): Promise<Exposure[]> {
    // A rule filter on a group that does not exist matches nothing, which would read as "all clear": check the group first.
    await this.call(() => this.client.send(new DescribeSecurityGroupsCommand({ GroupIds: [this.groupId] }))).catch((e: unknown) => {
      throw this.fail(e, 'DescribeSecurityGroups');
    });
    const rules = await this.describeRules([{ Name: 'group-id', Values: [this.groupId] }]);
    const found: Exposure[] = [];
    for (const r of rules) {
      if (r.IsEgress || !r.SecurityGroupRuleId) continue;
      const range = portRange(r);
      if (!range || !ports.some((p) => p >= range.from && p <= range.to)) continue;
      const source = r.CidrIpv4 ?? r.CidrIpv6 ?? r.ReferencedGroupInfo?.GroupId ?? r.PrefixListId ?? 'unknown';
      const cidr = r.CidrIpv4 ?? r.CidrIpv6;
      const world = cidr !== undefined && isWorld(cidr);
      // A rule Portcullis opened is explained by its grant — unless it is open to the world, which no grant may be.
      if (!world && tagOf(r, TAG_MANAGED) === 'true') continue;
      found.push({
        scope: this.scope,
        ref: ruleRef(this.groupId, r.SecurityGroupRuleId),
        source,
        fromPort: range.from,
        toPort: range.to,
        protocol: range.protocol,
        why: world ? 'world' : 'unmanaged',
        description: r.Description,
      });
    }
    return found;
  }

  async fixExposure(items: Exposure[]): Promise<void> {
    const foreign = items.find((i) => i.scope !== this.scope);
    if (foreign) throw new PortcullisError('INVALID_REQUEST', `exposure ${foreign.ref} belongs to ${foreign.scope}, not ${this.scope}`);
    await this.close(items.map((i) => i.ref));
  }

  async shutdown(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }

  /** Refuses what no AWS rule of ours may be: not TCP, a bad port, a malformed or world-wide source. */
  private checkSpec(rule: RuleSpec) {
    if (rule.protocol !== 'tcp' && rule.protocol !== 'udp') throw new PortcullisError('INVALID_REQUEST', `only tcp and udp rules are supported, not ${String(rule.protocol)}`);
    if (!Number.isInteger(rule.port) || rule.port < 1 || rule.port > 65_535) {
      throw new PortcullisError('INVALID_PORT', `port ${rule.port} is not between 1 and 65535`, { field: 'port' });
    }
    const source = parseSource(rule.source);
    if (!source) throw new PortcullisError('INVALID_SOURCE_IP', `source ${rule.source} is not an exact CIDR (address/prefix with no host bits set)`, { field: 'sourceIp' });
    // Invariant 2 holds here too, whatever the caller checked: the internet as a whole is never admitted.
    if (source.prefix === 0) throw new PortcullisError('SOURCE_TOO_WIDE', `source ${rule.source} would admit every address`, { field: 'sourceIp' });
    if (!Number.isFinite(rule.expiresAt)) throw new PortcullisError('INVALID_REQUEST', 'expiresAt must be a time');
    if (rule.grantId.length === 0 || rule.grantId.length > MAX_GRANT_ID) {
      throw new PortcullisError('INVALID_REQUEST', `grant id must be 1-${MAX_GRANT_ID} characters to fit an AWS tag key`);
    }
    return source;
  }

  /** The ingress rule EC2 called a duplicate: same protocol, port and source in this group. */
  private async findMatching(cidr: string, port: number, protocol: Protocol): Promise<SecurityGroupRule | undefined> {
    const want = parseSource(cidr)!;
    const rules = await this.describeRules([{ Name: 'group-id', Values: [this.groupId] }]);
    return rules.find((r) => {
      if (r.IsEgress || r.IpProtocol !== protocol || r.FromPort !== port || r.ToPort !== port) return false;
      const have = parseSource(r.CidrIpv4 ?? r.CidrIpv6 ?? '');
      return have !== undefined && sameSource(have, want);
    });
  }

  /**
   * Records a second grant on a rule that already admits its source: the rule stays one rule (AWS allows no twin),
   * its tags name every grant, and its expiry tag is the latest, so neither a reconcile nor a sweep cuts a live grant.
   */
  private async joinExisting(rule: SecurityGroupRule, spec: RuleSpec, expires: string): Promise<void> {
    if (tagOf(rule, TAG_MANAGED) !== 'true') {
      throw new PortcullisError(
        'CONFLICT',
        `an inbound rule not managed by Portcullis (${rule.SecurityGroupRuleId}) already admits ${spec.source} to port ${spec.port} on ${this.scope}; Portcullis will not adopt or later remove it`,
      );
    }
    const owner = tagOf(rule, TAG_GRANT) === spec.grantId;
    const mine = owner || tagOf(rule, TAG_SHARED_PREFIX + spec.grantId) !== undefined;
    // A retry of the same open changes nothing; an extend moves the expiry the rule carries.
    if (mine && !spec.extend) return;
    const current = Date.parse(tagOf(rule, TAG_EXPIRES) ?? '');
    const tags = owner ? [] : [{ Key: TAG_SHARED_PREFIX + spec.grantId, Value: expires }];
    if (!(current >= spec.expiresAt)) tags.push({ Key: TAG_EXPIRES, Value: expires });
    if (tags.length === 0) return;
    await this.call(() => this.client.send(new CreateTagsCommand({ Resources: [rule.SecurityGroupRuleId!], Tags: tags }))).catch((e: unknown) => {
      throw this.fail(e, 'CreateTags');
    });
  }

  /** One RevokeSecurityGroupIngress; when EC2 says some id is gone it revokes nothing, so the survivors are found and revoked. */
  private async revokeBatch(groupId: string, ruleIds: string[]): Promise<void> {
    let pending = ruleIds;
    for (let round = 0; round < 3 && pending.length > 0; round++) {
      try {
        await this.call(() => this.client.send(new RevokeSecurityGroupIngressCommand({ GroupId: groupId, SecurityGroupRuleIds: pending })));
        return;
      } catch (e) {
        const code = errorCode(e);
        if (code === undefined || !NOT_FOUND_CODES.has(code)) throw e;
      }
      const still = await this.describeRules([
        { Name: 'group-id', Values: [groupId] },
        { Name: 'security-group-rule-id', Values: pending },
      ]);
      pending = still.filter((r) => !r.IsEgress && r.SecurityGroupRuleId).map((r) => r.SecurityGroupRuleId!);
    }
    if (pending.length > 0) throw new PortcullisError('FIREWALL_ERROR', `EC2 kept refusing to revoke ${pending.length} rules on ${groupId}`);
  }

  private async describeRules(filters: Filter[]): Promise<SecurityGroupRule[]> {
    const out: SecurityGroupRule[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(() =>
        this.client.send(new DescribeSecurityGroupRulesCommand({ Filters: filters, MaxResults: this.pageSize, ...(token ? { NextToken: token } : {}) })),
      ).catch((e: unknown) => {
        throw this.fail(e, 'DescribeSecurityGroupRules');
      });
      out.push(...(page.SecurityGroupRules ?? []));
      token = page.NextToken;
    } while (token);
    return out;
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, this.retry);
  }

  private fail(e: unknown, action: string): PortcullisError {
    return toPortcullisError(e, { action, scope: this.scope, groupId: this.groupId, region: this.region });
  }
}

export function createAwsAdapter(cfg: AwsFirewallConfig, opts?: AwsAdapterOptions): AwsSecurityGroupAdapter {
  return new AwsSecurityGroupAdapter(cfg, opts);
}

function describe(grantId: string, expires: string): string {
  return `portcullis grant ${grantId} until ${expires}`.replace(DESCRIPTION_CHAR, '_').slice(0, 255);
}

export function tagOf(r: SecurityGroupRule, key: string): string | undefined {
  return r.Tags?.find((t) => t.Key === key)?.Value;
}

/**
 * A grant's rules (one per protocol, the same grant tags, source and port) as one managed rule whose ref
 * names them all, so reconcile adopts, keeps or removes them together.
 */
function groupByGrant(groupId: string, rules: SecurityGroupRule[]): ManagedRule[] {
  const groups = new Map<string, SecurityGroupRule[]>();
  for (const r of rules) {
    const m = toManaged(groupId, r);
    const key = m.grantIds.length === 0 ? `rule:${r.SecurityGroupRuleId}` : `${[...m.grantIds].sort().join(',')}|${m.source}|${m.port}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((rs) => {
    rs.sort((a, b) => (a.IpProtocol ?? '').localeCompare(b.IpProtocol ?? ''));
    const managed = rs.map((r) => toManaged(groupId, r));
    const expiries = managed.map((m) => m.expiresAt).filter((x): x is number => x !== null);
    return { ...managed[0]!, ref: ruleRef(groupId, ...rs.map((r) => r.SecurityGroupRuleId!)), expiresAt: expiries.length ? Math.max(...expiries) : null };
  });
}

function toManaged(groupId: string, r: SecurityGroupRule): ManagedRule {
  const grants = new Set<string>();
  const main = tagOf(r, TAG_GRANT);
  if (main) grants.add(main);
  for (const t of r.Tags ?? []) if (t.Key?.startsWith(TAG_SHARED_PREFIX) && t.Key.length > TAG_SHARED_PREFIX.length) grants.add(t.Key.slice(TAG_SHARED_PREFIX.length));
  const expires = Date.parse(tagOf(r, TAG_EXPIRES) ?? '');
  return {
    ref: ruleRef(groupId, r.SecurityGroupRuleId!),
    grantIds: [...grants],
    source: r.CidrIpv4 ?? r.CidrIpv6 ?? r.ReferencedGroupInfo?.GroupId ?? r.PrefixListId ?? '',
    port: r.FromPort ?? -1,
    expiresAt: Number.isFinite(expires) ? expires : null,
  };
}

/** The ports a rule opens, or undefined for protocols RDP cannot use (ICMP and the like). */
export function portRange(r: SecurityGroupRule): { from: number; to: number; protocol: string } | undefined {
  const p = (r.IpProtocol ?? '').toLowerCase();
  if (p === '-1' || p === 'all') return { from: 0, to: 65_535, protocol: 'all' };
  const name = p === '6' ? 'tcp' : p === '17' ? 'udp' : p;
  // RDP also runs over UDP 3389, so a UDP opening counts.
  if (name !== 'tcp' && name !== 'udp') return undefined;
  return { from: r.FromPort ?? 0, to: r.ToPort ?? 65_535, protocol: name };
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(n)));
}
