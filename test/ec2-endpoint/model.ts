// The stand-in's state: security groups and their rules, with EC2's validation, duplicate and quota semantics.
import { randomBytes } from 'node:crypto';
import { parseCidr, sameCidr, type Cidr } from './cidr.ts';
import { Ec2Error } from './errors.ts';

export const OWNER_ID = '123456789012';

export interface Rule {
  id: string;
  groupId: string;
  isEgress: boolean;
  /** Lower-case name or number as EC2 reports it: tcp, udp, icmp, icmpv6, -1. */
  protocol: string;
  fromPort: number;
  toPort: number;
  cidrIpv4?: string | undefined;
  cidrIpv6?: string | undefined;
  referencedGroupId?: string | undefined;
  description?: string | undefined;
  tags: Map<string, string>;
}

export interface Group {
  id: string;
  name: string;
  description: string;
  vpcId: string;
  /** Insertion-ordered, like EC2's listing. */
  rules: Map<string, Rule>;
  tags: Map<string, string>;
}

/** A rule as a request describes it, before it has an id. */
export interface PermissionInput {
  protocol: string;
  fromPort: number;
  toPort: number;
  source: { kind: 'v4'; cidr: string; parsed: Cidr } | { kind: 'v6'; cidr: string; parsed: Cidr } | { kind: 'group'; groupId: string };
  description?: string | undefined;
}

// EC2's documented character set for rule descriptions.
const DESCRIPTION = /^[a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]{0,255}$/;
const MAX_TAGS = 50;

/** A network interface, as DescribeNetworkInterfaces answers it: its groups and what it is attached to. */
export interface NetworkInterface {
  id: string;
  groups: string[];
  instanceId?: string | undefined;
  description: string;
  subnetId: string;
  vpcId: string;
  privateIpAddress: string;
}

export class Ec2Model {
  readonly groups = new Map<string, Group>();
  readonly networkInterfaces = new Map<string, NetworkInterface>();

  /** An ENI in `groups` (which must exist), attached to `instanceId` if given (a launched instance's primary ENI). */
  addNetworkInterface(ni: Omit<NetworkInterface, 'description' | 'subnetId' | 'vpcId' | 'privateIpAddress'> & Partial<NetworkInterface>): NetworkInterface {
    for (const g of ni.groups) this.group(g);
    const full: NetworkInterface = { description: '', subnetId: 'subnet-0abc1234', vpcId: 'vpc-0abc1234', privateIpAddress: '10.0.0.10', ...ni };
    this.networkInterfaces.set(full.id, full);
    return full;
  }
  /**
   * Inbound rules per group, counted separately for IPv4 and IPv6 as the VPC quota is (default 60).
   * A rule that references a group counts against both.
   */
  ruleLimit = 60;

  addGroup(id: string, opts: { name?: string; vpcId?: string } = {}): Group {
    const group: Group = {
      id,
      name: opts.name ?? id,
      description: `stand-in group ${id}`,
      vpcId: opts.vpcId ?? 'vpc-0abc1234',
      rules: new Map(),
      tags: new Map(),
    };
    // A new VPC security group starts with one egress rule allowing all traffic.
    const egress: Rule = { id: newRuleId(), groupId: id, isEgress: true, protocol: '-1', fromPort: -1, toPort: -1, cidrIpv4: '0.0.0.0/0', tags: new Map() };
    group.rules.set(egress.id, egress);
    this.groups.set(id, group);
    return group;
  }

  group(id: string | undefined): Group {
    if (id === undefined || id === '') throw new Ec2Error('MissingParameter', 'The request must contain the parameter groupId');
    const g = this.groups.get(id);
    if (!g) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
    return g;
  }

  /** All ingress rules across groups, for tests that check what was really written. */
  ingressRules(groupId?: string): Rule[] {
    return [...this.groups.values()]
      .filter((g) => groupId === undefined || g.id === groupId)
      .flatMap((g) => [...g.rules.values()].filter((r) => !r.isEgress));
  }

  findRule(id: string): Rule | undefined {
    for (const g of this.groups.values()) {
      const r = g.rules.get(id);
      if (r) return r;
    }
    return undefined;
  }

  /** All-or-nothing, like EC2: one bad permission, duplicate or quota breach adds nothing. */
  authorizeIngress(groupId: string | undefined, perms: PermissionInput[], tags: Map<string, string>): Rule[] {
    const group = this.group(groupId);
    if (perms.length === 0) throw new Ec2Error('MissingParameter', 'No permissions specified');
    for (const p of perms) {
      if (p.description !== undefined && !DESCRIPTION.test(p.description)) {
        throw new Ec2Error(
          'InvalidParameterValue',
          'Invalid rule description. Valid descriptions are strings less than 256 characters from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*',
        );
      }
      if (p.source.kind === 'group' && !this.groups.has(p.source.groupId)) {
        throw new Ec2Error('InvalidGroup.NotFound', `The security group '${p.source.groupId}' does not exist`);
      }
    }
    const existing = [...group.rules.values()].filter((r) => !r.isEgress);
    perms.forEach((p, i) => {
      const clash = existing.find((r) => samePermission(r, p)) ?? perms.slice(0, i).find((q) => samePermissionInput(q, p));
      if (clash) {
        throw new Ec2Error('InvalidPermission.Duplicate', `the specified rule "peer: ${peer(p)}, ${p.protocol.toUpperCase()}, from port: ${p.fromPort}, to port: ${p.toPort}, ALLOW" already exists`);
      }
    });
    const count = (rs: { v4: boolean; v6: boolean }[]) => ({
      v4: rs.filter((r) => r.v4).length,
      v6: rs.filter((r) => r.v6).length,
    });
    const after = count([...existing.map(family), ...perms.map(familyOfInput)]);
    if (after.v4 > this.ruleLimit || after.v6 > this.ruleLimit) {
      throw new Ec2Error('RulesPerSecurityGroupLimitExceeded', 'The maximum number of rules per security group has been reached.');
    }
    const added = perms.map((p): Rule => ({
      id: newRuleId(),
      groupId: group.id,
      isEgress: false,
      protocol: p.protocol,
      fromPort: p.fromPort,
      toPort: p.toPort,
      cidrIpv4: p.source.kind === 'v4' ? p.source.cidr : undefined,
      cidrIpv6: p.source.kind === 'v6' ? p.source.cidr : undefined,
      referencedGroupId: p.source.kind === 'group' ? p.source.groupId : undefined,
      description: p.description,
      tags: new Map(tags),
    }));
    for (const r of added) group.rules.set(r.id, r);
    return added;
  }

  /** By rule ids: every id must name an ingress rule of this group, else nothing is revoked. */
  revokeIngressByIds(groupId: string | undefined, ids: string[]): Rule[] {
    const group = this.group(groupId);
    for (const id of ids) {
      const r = group.rules.get(id);
      if (!r || r.isEgress) throw new Ec2Error('InvalidSecurityGroupRuleId.NotFound', `The security group rule ID '${id}' does not exist`);
    }
    const revoked = ids.map((id) => group.rules.get(id)!);
    for (const id of ids) group.rules.delete(id);
    return revoked;
  }

  /** By properties, as in a non-default VPC: a permission that matches no rule is InvalidPermission.NotFound. */
  revokeIngressByPermissions(groupId: string | undefined, perms: PermissionInput[]): Rule[] {
    const group = this.group(groupId);
    const ingress = [...group.rules.values()].filter((r) => !r.isEgress);
    const matched = perms.map((p) => {
      const r = ingress.find((x) => samePermission(x, p));
      if (!r) throw new Ec2Error('InvalidPermission.NotFound', 'The specified rule does not exist in this security group.');
      return r;
    });
    for (const r of matched) group.rules.delete(r.id);
    return matched;
  }

  createTags(resourceIds: string[], tags: Map<string, string>): void {
    const targets = resourceIds.map((id) => this.taggable(id));
    for (const t of targets) {
      const merged = new Map([...t, ...tags]);
      if (merged.size > MAX_TAGS) throw new Ec2Error('TagLimitExceeded', `The maximum number of Tags for a resource has been reached.`);
    }
    for (const t of targets) for (const [k, v] of tags) t.set(k, v);
  }

  deleteTags(resourceIds: string[], tags: { key: string; value?: string | undefined }[]): void {
    const targets = resourceIds.map((id) => this.taggable(id));
    for (const t of targets) {
      for (const { key, value } of tags) if (value === undefined || t.get(key) === value) t.delete(key);
    }
  }

  private taggable(id: string): Map<string, string> {
    if (id.startsWith('sgr-')) {
      const r = this.findRule(id);
      if (!r) throw new Ec2Error('InvalidSecurityGroupRuleId.NotFound', `The security group rule ID '${id}' does not exist`);
      return r.tags;
    }
    if (id.startsWith('sg-')) return this.group(id).tags;
    throw new Ec2Error('InvalidID', `The ID '${id}' is not valid`);
  }
}

export function newRuleId(): string {
  return `sgr-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export function validateTags(tags: Map<string, string>): void {
  if (tags.size > MAX_TAGS) throw new Ec2Error('TagLimitExceeded', 'The maximum number of Tags for a resource has been reached.');
  for (const [k, v] of tags) {
    if (k.length === 0 || k.length > 128) throw new Ec2Error('InvalidParameterValue', `Tag key exceeds the maximum length of 128 characters`);
    if (v.length > 256) throw new Ec2Error('InvalidParameterValue', `Tag value exceeds the maximum length of 256 characters`);
    if (k.toLowerCase().startsWith('aws:')) throw new Ec2Error('InvalidParameterValue', `Tag keys starting with 'aws:' are reserved for internal use`);
  }
}

function family(r: Rule): { v4: boolean; v6: boolean } {
  if (r.referencedGroupId) return { v4: true, v6: true };
  return { v4: r.cidrIpv4 !== undefined, v6: r.cidrIpv6 !== undefined };
}

function familyOfInput(p: PermissionInput): { v4: boolean; v6: boolean } {
  if (p.source.kind === 'group') return { v4: true, v6: true };
  return { v4: p.source.kind === 'v4', v6: p.source.kind === 'v6' };
}

function samePorts(a: { protocol: string; fromPort: number; toPort: number }, b: { protocol: string; fromPort: number; toPort: number }): boolean {
  return a.protocol === b.protocol && a.fromPort === b.fromPort && a.toPort === b.toPort;
}

/** EC2 compares protocol, ports and source; the description plays no part. */
function samePermission(r: Rule, p: PermissionInput): boolean {
  if (!samePorts(r, p)) return false;
  const s = p.source;
  if (s.kind === 'group') return r.referencedGroupId === s.groupId;
  const cidr = s.kind === 'v4' ? r.cidrIpv4 : r.cidrIpv6;
  const parsed = cidr === undefined ? undefined : parseCidr(cidr);
  return parsed !== undefined && sameCidr(parsed, s.parsed);
}

function samePermissionInput(a: PermissionInput, b: PermissionInput): boolean {
  if (!samePorts(a, b)) return false;
  if (a.source.kind === 'group' || b.source.kind === 'group') {
    return a.source.kind === 'group' && b.source.kind === 'group' && a.source.groupId === b.source.groupId;
  }
  return sameCidr(a.source.parsed, b.source.parsed);
}

function peer(p: PermissionInput): string {
  return p.source.kind === 'group' ? p.source.groupId : p.source.cidr;
}
