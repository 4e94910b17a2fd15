// Exposure scan use case: find rules that open a managed port to the world or to a source Portcullis does not manage; optionally remove them, audited.
import type { AuditInput } from '../audit/chain.ts';
import type { TargetConfig } from '../config/schema.ts';
import { isPortcullisError, type ErrorCode } from '../errors.ts';
import type { Exposure, ExposureScanner, FirewallAdapter } from '../firewall/port.ts';

/** One backend to scan, with the ports its targets manage. */
export interface ExposureScope {
  scope: string;
  scanner: ExposureScanner;
  ports: number[];
  targets: string[];
}

export interface ExposureFailure {
  scope: string;
  stage: 'scan' | 'fix';
  code: ErrorCode | 'UNKNOWN';
  message: string;
  refs?: string[] | undefined;
}

export interface ExposureReport {
  scanned: { scope: string; ports: number[]; targets: string[] }[];
  /** Backends that cannot look beyond their own rules, so were not scanned. */
  skipped: { scope: string; targets: string[]; why: string }[];
  /** Everything found, fixed or not. */
  exposures: Exposure[];
  fixed: Exposure[];
  /** Partial failures, collected rather than stopping at the first. */
  failures: ExposureFailure[];
}

export interface ExposureScanInput {
  scopes: ExposureScope[];
  skipped?: ExposureReport['skipped'];
  fix: boolean;
  /** Who asked (the CLI user, `system` for a scheduled run); goes into each audit event. */
  actor: string;
  /** Records one audit event; awaited, so a fix is not reported done before it is recorded. */
  audit: (event: AuditInput) => Promise<unknown> | unknown;
}

export const DEFAULT_MANAGED_PORTS = [3389];

export function isExposureScanner(a: FirewallAdapter): a is FirewallAdapter & ExposureScanner {
  const s = a as Partial<ExposureScanner>;
  return typeof s.scanExposure === 'function' && typeof s.fixExposure === 'function';
}

/**
 * One scope per backend (targets that share a security group or nft table share its adapter), scanning the
 * union of those targets' ports, or `ports` when given.
 */
export function exposureScopes(
  firewalls: ReadonlyMap<string, FirewallAdapter>,
  targets: readonly TargetConfig[],
  ports?: number[],
): { scopes: ExposureScope[]; skipped: ExposureReport['skipped'] } {
  const byAdapter = new Map<FirewallAdapter, { ports: Set<number>; targets: string[] }>();
  for (const t of targets) {
    const fw = firewalls.get(t.id);
    if (!fw) continue;
    const entry = byAdapter.get(fw) ?? { ports: new Set<number>(), targets: [] };
    for (const p of ports ?? (t.ports.length > 0 ? t.ports : DEFAULT_MANAGED_PORTS)) entry.ports.add(p);
    entry.targets.push(t.id);
    byAdapter.set(fw, entry);
  }
  const scopes: ExposureScope[] = [];
  const skipped: ExposureReport['skipped'] = [];
  for (const [fw, { ports: set, targets: ids }] of byAdapter) {
    if (isExposureScanner(fw)) scopes.push({ scope: fw.scope, scanner: fw, ports: [...set].sort((a, b) => a - b), targets: ids });
    else skipped.push({ scope: fw.scope, targets: ids, why: `${fw.kind} backend cannot see rules it does not manage` });
  }
  return { scopes, skipped };
}

export async function runExposureScan(input: ExposureScanInput): Promise<ExposureReport> {
  const report: ExposureReport = { scanned: [], skipped: input.skipped ?? [], exposures: [], fixed: [], failures: [] };
  for (const s of input.scopes) {
    let found: Exposure[];
    try {
      found = await s.scanner.scanExposure(s.ports);
    } catch (e) {
      report.failures.push({ scope: s.scope, stage: 'scan', ...describe(e) });
      continue;
    }
    report.scanned.push({ scope: s.scope, ports: s.ports, targets: s.targets });
    report.exposures.push(...found);
    if (!input.fix || found.length === 0) continue;
    let failedRefs = new Set<string>();
    try {
      await s.scanner.fixExposure(found);
    } catch (e) {
      // Adapters that fixed part of a batch say which refs were left; otherwise assume none were fixed.
      const named = failedRefsOf(e);
      failedRefs = new Set(named ?? found.map((f) => f.ref));
      report.failures.push({ scope: s.scope, stage: 'fix', ...describe(e), refs: [...failedRefs] });
    }
    for (const item of found) {
      const fixed = !failedRefs.has(item.ref);
      await input.audit({
        type: fixed ? 'exposure.fixed' : 'exposure.fix_failed',
        actor: input.actor,
        sourceIp: item.source,
        port: item.fromPort,
        ruleRef: item.ref,
        detail: { scope: item.scope, why: item.why, protocol: item.protocol, fromPort: item.fromPort, toPort: item.toPort, description: item.description },
      });
      if (fixed) report.fixed.push(item);
    }
  }
  return report;
}

function describe(e: unknown): { code: ExposureFailure['code']; message: string } {
  if (isPortcullisError(e)) return { code: e.code, message: e.message };
  return { code: 'UNKNOWN', message: e instanceof Error ? e.message : String(e) };
}

function failedRefsOf(e: unknown): string[] | undefined {
  if (!isPortcullisError(e)) return undefined;
  const d = e.details ?? {};
  const refs = [d.failedRefs, d.refused].find((v): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string'));
  return refs;
}
