// The safety net that needs neither broker nor database: closes every managed AWS rule whose expiry tag has passed.
// Each rule carries its expiry in the backend (tag portcullis:expires, the latest of every grant sharing it), so the
// tags alone say which rules are overdue; a rule without a readable expiry is left alone and reported.
import type { FirewallConfig } from '../config/schema.ts';
import { isPortcullisError } from '../errors.ts';
import { createAwsAdapter, type AwsAdapterOptions } from './aws-sg.ts';
import type { FirewallAdapter, ManagedRule } from './port.ts';

type AwsConfig = Extract<FirewallConfig, { kind: 'aws-security-group' }>;

export interface TagSweepReport {
  scope: string;
  /** Rules revoked because their expiry tag had passed. */
  closed: ManagedRule[];
  /** Managed rules whose expiry is still ahead. */
  kept: number;
  /** Managed rules with no readable expiry tag: not ours to judge without the store. */
  undated: ManagedRule[];
  error?: { code: string; message: string };
}

/** One adapter per security group (several targets may share one), built from the AWS targets of a config. */
export function awsAdaptersOf(firewalls: readonly FirewallConfig[], opts?: AwsAdapterOptions): FirewallAdapter[] {
  const seen = new Map<string, AwsConfig>();
  for (const f of firewalls) if (f.kind === 'aws-security-group') seen.set(`${f.region}:${f.securityGroupId}:${f.endpoint ?? ''}`, f);
  return [...seen.values()].map((f) => createAwsAdapter(f, opts));
}

/** Sweeps every backend, each independently: one that fails is reported and the others are still swept. */
export async function sweepByTags(adapters: readonly FirewallAdapter[], now: number): Promise<TagSweepReport[]> {
  const reports: TagSweepReport[] = [];
  for (const fw of adapters) {
    const report: TagSweepReport = { scope: fw.scope, closed: [], kept: 0, undated: [] };
    try {
      const rules = await fw.list();
      const due = rules.filter((r) => r.expiresAt !== null && r.expiresAt <= now);
      report.undated = rules.filter((r) => r.expiresAt === null);
      report.kept = rules.length - due.length - report.undated.length;
      if (due.length > 0) await fw.close(due.map((r) => r.ref));
      report.closed = due;
    } catch (e) {
      report.error = { code: isPortcullisError(e) ? e.code : 'FIREWALL_ERROR', message: (e as Error).message };
    }
    reports.push(report);
  }
  return reports;
}
