// Builds one adapter per backend from the targets' firewall config; targets on the same backend
// (same security group, same nft table and namespace) share it, so expiries batch per backend.
import { join } from 'node:path';
import type { FirewallConfig, TargetConfig } from '../config/schema.ts';
import { PortcullisError } from '../errors.ts';
import { createMemoryAdapter } from './memory.ts';
import { createNftablesAdapter } from './nftables.ts';
import type { FirewallAdapter } from './port.ts';
import { createSimulatedAdapter } from './simulated.ts';

export interface RegistryOptions {
  /** Where the simulated backend keeps its rules (beside the SQLite store by default). */
  simulatedPath: string;
  /** Test hook: build adapters by other means for some kinds. */
  factories?: Partial<Record<FirewallConfig['kind'], (cfg: FirewallConfig, target: TargetConfig) => FirewallAdapter>>;
}

export async function buildFirewalls(targets: readonly TargetConfig[], opts: RegistryOptions): Promise<Map<string, FirewallAdapter>> {
  const byKey = new Map<string, FirewallAdapter>();
  const out = new Map<string, FirewallAdapter>();
  for (const t of targets) {
    const key = backendKey(t);
    let fw = byKey.get(key);
    if (!fw) {
      fw = await create(t, opts, portsOfBackend(targets, key));
      byKey.set(key, fw);
    }
    out.set(t.id, fw);
  }
  return out;
}

function backendKey(t: TargetConfig): string {
  const f = t.firewall;
  switch (f.kind) {
    case 'aws-security-group':
      return `aws:${f.region}:${f.securityGroupId}:${f.endpoint ?? ''}`;
    case 'nftables':
      return `nft:${f.netns ?? ''}:${f.table}:${f.destination ?? ''}`;
    case 'simulated':
    case 'memory':
      return `${f.kind}:${t.id}`;
  }
}

/** Every port of the targets that share one backend: a shared nft adapter must guard them all. */
function portsOfBackend(targets: readonly TargetConfig[], key: string): number[] {
  return [...new Set(targets.filter((x) => backendKey(x) === key).flatMap((x) => x.ports))];
}

async function create(t: TargetConfig, opts: RegistryOptions, ports: number[] = t.ports): Promise<FirewallAdapter> {
  const custom = opts.factories?.[t.firewall.kind];
  if (custom) return custom(t.firewall, t);
  switch (t.firewall.kind) {
    case 'simulated':
      return createSimulatedAdapter(opts.simulatedPath, t.id);
    case 'memory':
      return createMemoryAdapter(`memory:${t.id}`);
    case 'aws-security-group':
      // Loaded only when configured: the EC2 client alone costs about 100 MB of resident memory.
      return (await import('./aws-sg.ts')).createAwsAdapter(t.firewall);
    case 'nftables':
      return createNftablesAdapter(t.firewall, { ports });
    default:
      throw new PortcullisError('CONFIG_INVALID', `targets.${t.id}.firewall.kind "${(t.firewall as { kind: string }).kind}" is not available in this build`, { field: 'targets' });
  }
}

export function defaultSimulatedPath(storeUrl: string): string {
  const m = /^sqlite:(.+)$/.exec(storeUrl);
  if (m && m[1] !== ':memory:') return join(m[1]!, '..', 'simulated-firewall.db');
  return './data/simulated-firewall.db';
}
