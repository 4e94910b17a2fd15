// The region-wide exposure scan: every security group of a region, the ingress rules that admit a
// managed port from the world or from any source Portcullis does not manage, and the network
// interfaces (and instances) each such group is attached to; `fixRegion` revokes them by rule id.
import { DescribeNetworkInterfacesCommand, DescribeSecurityGroupRulesCommand, EC2Client, RevokeSecurityGroupIngressCommand, type SecurityGroupRule } from '@aws-sdk/client-ec2';
import { PortcullisError } from '../errors.ts';
import { isWorld } from './aws-cidr.ts';
import { TAG_MANAGED, portRange, tagOf } from './aws-sg.ts';

export interface RegionFinding {
  region: string;
  groupId: string;
  ruleId: string;
  protocol: string;
  fromPort: number;
  toPort: number;
  source: string;
  why: 'world' | 'unmanaged';
  description?: string | undefined;
  /** What the group is attached to: network interfaces, with the instance each is attached to if any. */
  attachments: { networkInterfaceId: string; instanceId?: string | undefined; description?: string | undefined }[];
}

export interface RegionScanOptions {
  region: string;
  ports: number[];
  endpoint?: string | undefined;
  client?: EC2Client;
}

function clientFor(o: RegionScanOptions): { client: EC2Client; own: boolean } {
  if (o.client) return { client: o.client, own: false };
  return { client: new EC2Client({ region: o.region, ...(o.endpoint ? { endpoint: o.endpoint } : {}), maxAttempts: 3 }), own: true };
}

export async function scanRegion(o: RegionScanOptions): Promise<RegionFinding[]> {
  const { client, own } = clientFor(o);
  try {
    const rules: SecurityGroupRule[] = [];
    let token: string | undefined;
    do {
      const out = await client.send(new DescribeSecurityGroupRulesCommand({ MaxResults: 1000, NextToken: token }));
      rules.push(...(out.SecurityGroupRules ?? []));
      token = out.NextToken;
    } while (token);
    const found: Omit<RegionFinding, 'attachments'>[] = [];
    for (const r of rules) {
      if (r.IsEgress || !r.SecurityGroupRuleId || !r.GroupId) continue;
      const range = portRange(r);
      if (!range || !o.ports.some((p) => p >= range.from && p <= range.to)) continue;
      const cidr = r.CidrIpv4 ?? r.CidrIpv6;
      const world = cidr !== undefined && isWorld(cidr);
      // A rule Portcullis opened is explained by its grant, unless it admits the world, which no grant may.
      if (!world && tagOf(r, TAG_MANAGED) === 'true') continue;
      found.push({
        region: o.region,
        groupId: r.GroupId,
        ruleId: r.SecurityGroupRuleId,
        protocol: range.protocol,
        fromPort: range.from,
        toPort: range.to,
        source: cidr ?? r.ReferencedGroupInfo?.GroupId ?? r.PrefixListId ?? 'unknown',
        why: world ? 'world' : 'unmanaged',
        description: r.Description,
      });
    }
    const groups = [...new Set(found.map((f) => f.groupId))];
    const attached = new Map<string, RegionFinding['attachments']>();
    // EC2 allows up to 200 filter values; one call per 200 groups.
    for (let i = 0; i < groups.length; i += 200) {
      let next: string | undefined;
      do {
        const out = await client.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'group-id', Values: groups.slice(i, i + 200) }], NextToken: next }));
        for (const ni of out.NetworkInterfaces ?? []) {
          for (const g of ni.Groups ?? []) {
            if (!g.GroupId) continue;
            attached.set(g.GroupId, [...(attached.get(g.GroupId) ?? []), { networkInterfaceId: ni.NetworkInterfaceId ?? '?', instanceId: ni.Attachment?.InstanceId, description: ni.Description }]);
          }
        }
        next = out.NextToken;
      } while (next);
    }
    return found.map((f) => ({ ...f, attachments: attached.get(f.groupId) ?? [] }));
  } finally {
    if (own) client.destroy();
  }
}

/**
 * Revokes findings by rule id, one call per group. Groups outside `allowGroups` are refused by name
 * (after the allowed ones are fixed) unless `all`: a region-wide fix must not rewrite a group nobody chose.
 */
export async function fixRegion(o: Omit<RegionScanOptions, 'ports'> & { findings: RegionFinding[]; allowGroups: readonly string[]; all: boolean }): Promise<{ fixed: RegionFinding[]; refused: RegionFinding[] }> {
  const allowed = o.findings.filter((f) => o.all || o.allowGroups.includes(f.groupId));
  const refused = o.findings.filter((f) => !allowed.includes(f));
  const { client, own } = clientFor({ ...o, ports: [] });
  const fixed: RegionFinding[] = [];
  try {
    const byGroup = new Map<string, RegionFinding[]>();
    for (const f of allowed) byGroup.set(f.groupId, [...(byGroup.get(f.groupId) ?? []), f]);
    for (const [groupId, fs] of byGroup) {
      await client.send(new RevokeSecurityGroupIngressCommand({ GroupId: groupId, SecurityGroupRuleIds: fs.map((f) => f.ruleId) }));
      fixed.push(...fs);
    }
  } catch (e) {
    throw new PortcullisError('FIREWALL_ERROR', `exposure fix in ${o.region}: ${(e as Error).message}`, { details: { fixed: fixed.map((f) => f.ruleId) } });
  } finally {
    if (own) client.destroy();
  }
  return { fixed, refused };
}
