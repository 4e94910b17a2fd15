// The EC2 actions the stand-in speaks: parameters read as the EC2 API reference names them, answers in EC2's XML.
import { parseCidr } from './cidr.ts';
import { Ec2Error } from './errors.ts';
import { OWNER_ID, validateTags, type Ec2Model, type Group, type NetworkInterface, type PermissionInput, type Rule } from './model.ts';
import type { QueryParams } from './query.ts';
import { el, items, type Xml } from './xml.ts';

export type Handler = (model: Ec2Model, q: QueryParams) => Xml[];

export const ACTIONS: Record<string, Handler> = {
  AuthorizeSecurityGroupIngress(model, q) {
    const tags = tagSpecifications(q, 'security-group-rule');
    const added = model.authorizeIngress(q.get('GroupId'), permissions(q), tags);
    return [el('return', true), items('securityGroupRuleSet', added.map(ruleXml))];
  },

  RevokeSecurityGroupIngress(model, q) {
    const ids = q.values('SecurityGroupRuleId');
    const perms = q.list('IpPermissions').length > 0 || q.get('CidrIp') !== undefined ? permissions(q) : [];
    if (ids.length > 0 && perms.length > 0) {
      throw new Ec2Error('InvalidParameterCombination', 'You may specify either security group rule IDs or IP permissions, not both');
    }
    if (ids.length === 0 && perms.length === 0) throw new Ec2Error('MissingParameter', 'No permissions or security group rule IDs specified');
    const revoked = ids.length > 0 ? model.revokeIngressByIds(q.get('GroupId'), ids) : model.revokeIngressByPermissions(q.get('GroupId'), perms);
    return [
      el('return', true),
      items('revokedSecurityGroupRuleSet', revoked.map((r) => [
        el('securityGroupRuleId', r.id),
        el('groupId', r.groupId),
        el('isEgress', r.isEgress),
        el('ipProtocol', r.protocol),
        el('fromPort', r.fromPort),
        el('toPort', r.toPort),
        el('cidrIpv4', r.cidrIpv4),
        el('cidrIpv6', r.cidrIpv6),
        el('referencedGroupId', r.referencedGroupId),
        el('description', r.description),
      ])),
    ];
  },

  DescribeSecurityGroupRules(model, q) {
    const ids = q.values('SecurityGroupRuleId');
    for (const id of ids) {
      if (!model.findRule(id)) throw new Ec2Error('InvalidSecurityGroupRuleId.NotFound', `The security group rule ID '${id}' does not exist`);
    }
    const filters = readFilters(q, ['group-id', 'security-group-rule-id', 'tag-key'], true);
    let rules = [...model.groups.values()].flatMap((g) => [...g.rules.values()]);
    if (ids.length > 0) rules = rules.filter((r) => ids.includes(r.id));
    rules = rules.filter((r) => filters.every((f) => f.match(ruleFilterValues(r, f.name))));
    const page = paginate(q, rules);
    return [items('securityGroupRuleSet', page.items.map(ruleXml)), el('nextToken', page.nextToken)];
  },

  DescribeSecurityGroups(model, q) {
    const ids = q.values('GroupId');
    for (const id of ids) model.group(id);
    const filters = readFilters(q, ['group-id', 'group-name', 'vpc-id'], true);
    let groups = [...model.groups.values()];
    if (ids.length > 0) groups = groups.filter((g) => ids.includes(g.id));
    groups = groups.filter((g) => filters.every((f) => f.match(groupFilterValues(g, f.name))));
    const page = paginate(q, groups);
    return [items('securityGroupInfo', page.items.map(groupXml)), el('nextToken', page.nextToken)];
  },

  DescribeNetworkInterfaces(model, q) {
    const ids = q.values('NetworkInterfaceId');
    for (const id of ids) {
      if (!model.networkInterfaces.has(id)) throw new Ec2Error('InvalidNetworkInterfaceID.NotFound', `The networkInterface ID '${id}' does not exist`);
    }
    const filters = readFilters(q, ['group-id', 'network-interface-id', 'attachment.instance-id', 'vpc-id'], true);
    let nis = [...model.networkInterfaces.values()];
    if (ids.length > 0) nis = nis.filter((n) => ids.includes(n.id));
    nis = nis.filter((n) => filters.every((f) => f.match(niFilterValues(n, f.name))));
    const page = paginate(q, nis);
    return [
      items('networkInterfaceSet', page.items.map((n) => [
        el('networkInterfaceId', n.id),
        el('subnetId', n.subnetId),
        el('vpcId', n.vpcId),
        el('description', n.description),
        el('ownerId', OWNER_ID),
        el('status', n.instanceId ? 'in-use' : 'available'),
        el('privateIpAddress', n.privateIpAddress),
        el('interfaceType', 'interface'),
        n.instanceId ? el('attachment', [el('attachmentId', `eni-attach-${n.id.slice(4)}`), el('instanceId', n.instanceId), el('instanceOwnerId', OWNER_ID), el('deviceIndex', 0), el('status', 'attached')]) : el('attachment', undefined),
        items('groupSet', n.groups.map((g) => [el('groupId', g), el('groupName', model.groups.get(g)?.name ?? g)])),
      ])),
      el('nextToken', page.nextToken),
    ];
  },

  CreateTags(model, q) {
    const ids = q.values('ResourceId');
    if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter resourceIdSet');
    const tags = new Map(q.list('Tag').map((p) => [q.get(`${p}.Key`) ?? '', q.get(`${p}.Value`) ?? ''] as const));
    if (tags.size === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter tagSet');
    validateTags(tags);
    model.createTags(ids, tags);
    return [el('return', true)];
  },

  DeleteTags(model, q) {
    const ids = q.values('ResourceId');
    if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter resourceIdSet');
    const tags = q.list('Tag').map((p) => ({ key: q.get(`${p}.Key`) ?? '', value: q.get(`${p}.Value`) }));
    model.deleteTags(ids, tags);
    return [el('return', true)];
  },
};

/** IpPermissions.N (or the older top-level CidrIp/IpProtocol/FromPort/ToPort): one input per source range. */
function permissions(q: QueryParams): PermissionInput[] {
  const out: PermissionInput[] = [];
  const prefixes = q.list('IpPermissions');
  if (prefixes.length === 0 && q.get('CidrIp') !== undefined) {
    const base = portsOf(q, q.get('IpProtocol'), 'FromPort', 'ToPort');
    out.push({ ...base, source: cidrSource(q.get('CidrIp')!, 4) });
    return out;
  }
  for (const p of prefixes) {
    const base = portsOf(q, q.get(`${p}.IpProtocol`), `${p}.FromPort`, `${p}.ToPort`);
    const before = out.length;
    for (const r of q.list(`${p}.IpRanges`)) {
      out.push({ ...base, source: cidrSource(q.get(`${r}.CidrIp`) ?? '', 4), description: q.get(`${r}.Description`) });
    }
    for (const r of q.list(`${p}.Ipv6Ranges`)) {
      out.push({ ...base, source: cidrSource(q.get(`${r}.CidrIpv6`) ?? '', 6), description: q.get(`${r}.Description`) });
    }
    for (const r of q.list(`${p}.Groups`)) {
      const groupId = q.get(`${r}.GroupId`);
      if (!groupId) throw new Ec2Error('MissingParameter', 'A security group reference must name a GroupId');
      out.push({ ...base, source: { kind: 'group', groupId }, description: q.get(`${r}.Description`) });
    }
    if (q.list(`${p}.PrefixListIds`).length > 0) {
      throw new Ec2Error('InvalidParameterValue', 'Prefix list sources are not supported by this stand-in');
    }
    if (out.length === before) throw new Ec2Error('MissingParameter', 'Each permission must specify a source: a CIDR range, a security group or a prefix list');
  }
  return out;
}

const PROTOCOLS: Record<string, string> = { tcp: 'tcp', '6': 'tcp', udp: 'udp', '17': 'udp', icmp: 'icmp', '1': 'icmp', icmpv6: 'icmpv6', '58': 'icmpv6', '-1': '-1', all: '-1' };

function portsOf(q: QueryParams, rawProtocol: string | undefined, fromKey: string, toKey: string): Omit<PermissionInput, 'source'> {
  if (rawProtocol === undefined) throw new Ec2Error('MissingParameter', 'The request must contain the parameter ipProtocol');
  const lower = rawProtocol.toLowerCase();
  const protocol = PROTOCOLS[lower] ?? (/^\d{1,3}$/.test(lower) && Number(lower) <= 255 ? lower : undefined);
  if (protocol === undefined) throw new Ec2Error('InvalidParameterValue', `Invalid value '${rawProtocol}' for IP protocol. Unknown protocol.`);
  if (protocol === '-1') return { protocol, fromPort: -1, toPort: -1 };
  const from = q.int(fromKey);
  const to = q.int(toKey);
  if (protocol === 'tcp' || protocol === 'udp') {
    if (from === undefined || to === undefined) {
      throw new Ec2Error('InvalidParameterValue', `Invalid value for portRange. Must specify both from and to ports with TCP/UDP.`);
    }
    if (from < 0 || to > 65535 || from > to) {
      throw new Ec2Error('InvalidParameterValue', `Invalid value for portRange. Must specify a valid fromPort and toPort in the range 0-65535 with fromPort <= toPort.`);
    }
  }
  return { protocol, fromPort: from ?? -1, toPort: to ?? -1 };
}

function cidrSource(cidr: string, fam: 4 | 6): PermissionInput['source'] {
  const parsed = parseCidr(cidr);
  if (!parsed || parsed.family !== fam) throw new Ec2Error('InvalidParameterValue', `CIDR block ${cidr} is malformed`);
  return fam === 4 ? { kind: 'v4', cidr, parsed } : { kind: 'v6', cidr, parsed };
}

function tagSpecifications(q: QueryParams, resourceType: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const spec of q.list('TagSpecification')) {
    const type = q.get(`${spec}.ResourceType`);
    if (type !== resourceType) throw new Ec2Error('InvalidParameterValue', `'${type ?? ''}' is not a valid taggable resource type for this operation.`);
    for (const t of q.list(`${spec}.Tag`)) tags.set(q.get(`${t}.Key`) ?? '', q.get(`${t}.Value`) ?? '');
  }
  validateTags(tags);
  return tags;
}

interface Filter {
  name: string;
  match(values: string[]): boolean;
}

/** Filter.N.Name / Filter.N.Value.M: values OR'd, filters AND'd, `*` and `?` wildcards as EC2 allows. */
function readFilters(q: QueryParams, names: string[], allowTagFilters: boolean): Filter[] {
  return q.list('Filter').map((p) => {
    const name = q.get(`${p}.Name`) ?? '';
    if (!names.includes(name) && !(allowTagFilters && name.startsWith('tag:'))) {
      throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
    }
    const patterns = q.values(`${p}.Value`).map(wildcard);
    return { name, match: (values) => values.some((v) => patterns.some((re) => re.test(v))) };
  });
}

function wildcard(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

function niFilterValues(n: NetworkInterface, name: string): string[] {
  if (name === 'group-id') return n.groups;
  if (name === 'network-interface-id') return [n.id];
  if (name === 'attachment.instance-id') return n.instanceId ? [n.instanceId] : [];
  if (name === 'vpc-id') return [n.vpcId];
  return [];
}

function ruleFilterValues(r: Rule, name: string): string[] {
  if (name === 'group-id') return [r.groupId];
  if (name === 'security-group-rule-id') return [r.id];
  if (name === 'tag-key') return [...r.tags.keys()];
  if (name.startsWith('tag:')) {
    const v = r.tags.get(name.slice(4));
    return v === undefined ? [] : [v];
  }
  return [];
}

function groupFilterValues(g: Group, name: string): string[] {
  if (name === 'group-id') return [g.id];
  if (name === 'group-name') return [g.name];
  if (name === 'vpc-id') return [g.vpcId];
  if (name.startsWith('tag:')) {
    const v = g.tags.get(name.slice(4));
    return v === undefined ? [] : [v];
  }
  return [];
}

/** MaxResults 5–1000 and an opaque NextToken; without MaxResults EC2 returns everything. */
function paginate<T>(q: QueryParams, all: T[]): { items: T[]; nextToken: string | undefined } {
  const max = q.int('MaxResults');
  if (max !== undefined && (max < 5 || max > 1000)) {
    throw new Ec2Error('InvalidParameterValue', `Value ( ${max} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`);
  }
  let start = 0;
  const token = q.get('NextToken');
  if (token !== undefined && token !== '') {
    const decoded = /^o(\d+)$/.exec(Buffer.from(token, 'base64url').toString());
    if (!decoded) throw new Ec2Error('InvalidPaginationToken', `The pagination token '${token}' is invalid.`);
    start = Number(decoded[1]);
  }
  if (max === undefined) return { items: all.slice(start), nextToken: undefined };
  const end = start + max;
  return { items: all.slice(start, end), nextToken: end < all.length ? Buffer.from(`o${end}`).toString('base64url') : undefined };
}

function tagSet(tags: Map<string, string>): Xml {
  return items('tagSet', [...tags].map(([k, v]) => [el('key', k), el('value', v)]));
}

function ruleXml(r: Rule): Xml[] {
  return [
    el('securityGroupRuleId', r.id),
    el('groupId', r.groupId),
    el('groupOwnerId', OWNER_ID),
    el('isEgress', r.isEgress),
    el('ipProtocol', r.protocol),
    el('fromPort', r.fromPort),
    el('toPort', r.toPort),
    el('cidrIpv4', r.cidrIpv4),
    el('cidrIpv6', r.cidrIpv6),
    r.referencedGroupId ? el('referencedGroupInfo', [el('groupId', r.referencedGroupId), el('userId', OWNER_ID)]) : el('referencedGroupInfo', undefined),
    el('description', r.description),
    tagSet(r.tags),
    el('securityGroupRuleArn', `arn:aws:ec2:stand-in:${OWNER_ID}:security-group-rule/${r.id}`),
  ];
}

/** DescribeSecurityGroups folds rules with the same protocol and ports into one IpPermission. */
function permissionsXml(rules: Rule[]): Xml[][] {
  const byKey = new Map<string, Rule[]>();
  for (const r of rules) {
    const key = `${r.protocol}/${r.fromPort}/${r.toPort}`;
    byKey.set(key, [...(byKey.get(key) ?? []), r]);
  }
  return [...byKey.values()].map((rs) => {
    const first = rs[0]!;
    return [
      el('ipProtocol', first.protocol),
      first.protocol === '-1' ? el('fromPort', undefined) : el('fromPort', first.fromPort),
      first.protocol === '-1' ? el('toPort', undefined) : el('toPort', first.toPort),
      items('groups', rs.filter((r) => r.referencedGroupId).map((r) => [el('groupId', r.referencedGroupId), el('userId', OWNER_ID), el('description', r.description)])),
      items('ipRanges', rs.filter((r) => r.cidrIpv4).map((r) => [el('cidrIp', r.cidrIpv4), el('description', r.description)])),
      items('ipv6Ranges', rs.filter((r) => r.cidrIpv6).map((r) => [el('cidrIpv6', r.cidrIpv6), el('description', r.description)])),
      items('prefixListIds', []),
    ];
  });
}

function groupXml(g: Group): Xml[] {
  const rules = [...g.rules.values()];
  return [
    el('ownerId', OWNER_ID),
    el('groupId', g.id),
    el('groupName', g.name),
    el('groupDescription', g.description),
    el('vpcId', g.vpcId),
    items('ipPermissions', permissionsXml(rules.filter((r) => !r.isEgress))),
    items('ipPermissionsEgress', permissionsXml(rules.filter((r) => r.isEgress))),
    tagSet(g.tags),
    el('securityGroupArn', `arn:aws:ec2:stand-in:${OWNER_ID}:security-group/${g.id}`),
  ];
}
