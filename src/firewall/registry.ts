// Builds one adapter per backend from the targets' firewall config. The config refuses two targets on
// one security group; targets on one nft table and namespace (with distinct destinations) share one
// adapter, which owns the whole table, so its baseline is verified and restored as one.
import { join } from 'node:path';
import { targetDestinations, targetProtocols, type FirewallConfig, type TargetConfig } from '../config/schema.ts';
import { PortcullisError } from '../errors.ts';
import { createMemoryAdapter } from './memory.ts';
import { createNftablesAdapter } from './nftables.ts';
import type { FirewallAdapter } from './port.ts';
import { createSimulatedAdapter } from './simulated.ts';

export interface RegistryOptions {
  /** Where the simulated backend keeps its rules (beside the SQLite store by default). */
  simulatedPath: string;
  /** Test hook: build adapters by other means for some kinds. */
  /** Bound and timeout of the nftables attempt sets (`watch.attempts`). */
  attempts?: { size: number; timeoutSeconds: number };
  factories?: Partial<Record<FirewallConfig['kind'], (cfg: FirewallConfig, target: TargetConfig) => FirewallAdapter>>;
}

export async function buildFirewalls(targets: readonly TargetConfig[], opts: RegistryOptions): Promise<Map<string, FirewallAdapter>> {
  const byKey = new Map<string, FirewallAdapter>();
  const out = new Map<string, FirewallAdapter>();
  for (const t of targets) {
    const key = backendKey(t);
    let fw = byKey.get(key);
    if (!fw) {
      fw = await create(t, opts, targets.filter((x) => backendKey(x) === key));
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
      return `nft:${f.netns ?? ''}:${f.table}`;
    case 'simulated':
    case 'memory':
      return `${f.kind}:${t.id}`;
  }
}

async function create(t: TargetConfig, opts: RegistryOptions, sharing: readonly TargetConfig[]): Promise<FirewallAdapter> {
  const custom = opts.factories?.[t.firewall.kind];
  if (custom) return custom(t.firewall, t);
  switch (t.firewall.kind) {
    case 'simulated':
      return createSimulatedAdapter(opts.simulatedPath, t.id);
    case 'memory':
      return createMemoryAdapter(`memory:${t.id}`);
    case 'aws-security-group':
      // Loaded only when configured: the EC2 client alone costs about 100 MB of resident memory.
      return (await import('./aws-sg.ts')).createAwsAdapter(t.firewall, { protocols: targetProtocols(t) });
    case 'nftables':
      return createNftablesAdapter(t.firewall, {
        targets: sharing.map((x) => ({ id: x.id, destinations: targetDestinations(x), ports: x.ports, protocols: targetProtocols(x), onExpiry: x.onExpiry })),
        attempts: opts.attempts,
      });
    default:
      throw new PortcullisError('CONFIG_INVALID', `targets.${t.id}.firewall.kind "${(t.firewall as { kind: string }).kind}" is not available in this build`, { field: 'targets' });
  }
}

export function defaultSimulatedPath(storeUrl: string): string {
  const m = /^sqlite:(.+)$/.exec(storeUrl);
  if (m && m[1] !== ':memory:') return join(m[1]!, '..', 'simulated-firewall.db');
  return './data/simulated-firewall.db';
}
