// `portcullis exposure scan [--config] [--json] [--fix] [--port N…]`: the exposure use case for people and cron jobs.
import { userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import type { AuditInput } from '../audit/chain.ts';
import { JsonlSink } from '../audit/jsonl.ts';
import { exposureScopes, runExposureScan, type ExposureReport } from '../broker/exposure.ts';
import { loadConfig } from '../config/load.ts';
import { buildFirewalls, defaultSimulatedPath, type RegistryOptions } from '../firewall/registry.ts';
import { openDb } from '../store/db.ts';
import { fixRegion, scanRegion, type RegionFinding } from '../firewall/aws-region-scan.ts';
import { Store } from '../store/store.ts';

/** Exit codes: 0 nothing exposed (or all fixed), 1 exposures remain, 3 a scan or fix failed (the picture is incomplete). */
export const EXIT_EXPOSED = 1;
export const EXIT_INCOMPLETE = 3;

interface Out {
  write(s: string): unknown;
}

export interface ExposureCommandDeps {
  /** Tests: build some firewall kinds by other means. */
  firewallFactories?: RegistryOptions['factories'];
  out?: Out;
  err?: Out;
  /** Recorded as the actor of `exposure.fixed` events; default `cli:<os user>`. */
  actor?: string;
}

export interface ExposureScanOptions {
  config?: string;
  json?: boolean;
  fix?: boolean;
  port?: number[];
  /** Scan every security group of these regions instead of the targets' backends. */
  region?: string[];
  /** With --region --fix: also groups outside exposure.allowGroups. */
  all?: boolean;
}

export function registerExposureCommand(program: Command, deps: ExposureCommandDeps = {}): void {
  const exposure = program.command('exposure').description('find rules that open managed ports to the world or to sources Portcullis does not manage');
  exposure
    .command('scan')
    .description(
      'scan every configured backend that can see foreign rules (AWS security groups, nft rulesets); ' +
        'exit 0 when nothing is exposed, 1 when exposures remain, 3 when a scan or fix failed',
    )
    .option('-c, --config <path>', 'YAML config file (default: $PORTCULLIS_CONFIG, else the embedded default)')
    .option('--json', 'machine-readable output')
    .option('--fix', 'remove what was found; each removal is recorded in the audit trail as exposure.fixed')
    .option('-p, --port <port...>', "ports to check (default: each target's configured ports, 3389 unless set)", collectPort)
    .option('--region <region>', 'scan every security group of this AWS region (repeatable), with the interfaces and instances each is attached to', collectRegion)
    .option('--all', 'with --region --fix: also change groups outside exposure.allowGroups')
    .action(async (opts: ExposureScanOptions) => {
      process.exitCode = await exposureScanCommand(opts, deps);
    });
}

export async function exposureScanCommand(opts: ExposureScanOptions, deps: ExposureCommandDeps = {}): Promise<number> {
  const out = deps.out ?? process.stdout;
  const err = deps.err ?? process.stderr;
  const config = loadConfig({ path: opts.config ?? process.env.PORTCULLIS_CONFIG });
  if (opts.region?.length) return regionScanCommand(opts, config, deps);
  const firewalls = await buildFirewalls(config.targets, { simulatedPath: defaultSimulatedPath(config.store.url), factories: deps.firewallFactories });
  const adapters = new Set(firewalls.values());
  // The store is opened only to record fixes: a plain scan is a read and needs no database.
  let store: Store | undefined;
  let closeDb: (() => Promise<void>) | undefined;
  try {
    if (opts.fix) {
      const db = await openDb(config.store.url);
      closeDb = () => db.close();
      store = new Store(db);
    }
    const { scopes, skipped } = exposureScopes(firewalls, config.targets, opts.port);
    const report = await runExposureScan({
      scopes,
      skipped,
      fix: opts.fix === true,
      actor: deps.actor ?? `cli:${safeUser()}`,
      audit: (event: AuditInput) => {
        if (!store) throw new Error('audit called without --fix');
        return store.audit(event);
      },
    });
    if (store && config.audit.jsonl && report.fixed.length + report.failures.length > 0) {
      // Bring the SIEM file up to date with what this run recorded, as `serve` does at start.
      await new JsonlSink(config.audit.jsonl).catchUp(store);
    }
    out.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, opts.fix === true));
    for (const f of report.failures) err.write(`portcullis: exposure ${f.stage} failed on ${f.scope}: ${f.code}: ${f.message}\n`);
    if (report.failures.length > 0) return EXIT_INCOMPLETE;
    return report.exposures.length > report.fixed.length ? EXIT_EXPOSED : 0;
  } finally {
    for (const a of adapters) await a.shutdown?.();
    await closeDb?.();
  }
}

/** `--region`: every group of each region; `--fix` revokes findings on allow-listed groups (all with `--all`), each audited as `exposure.fixed`. */
async function regionScanCommand(opts: ExposureScanOptions, config: ReturnType<typeof loadConfig>, deps: ExposureCommandDeps): Promise<number> {
  const out = deps.out ?? process.stdout;
  const err = deps.err ?? process.stderr;
  const ports = opts.port ?? [...new Set(config.targets.flatMap((t) => t.ports))];
  const managed = ports.length ? ports : [3389];
  const actor = deps.actor ?? `cli:${safeUser()}`;
  let store: Store | undefined;
  let closeDb: (() => Promise<void>) | undefined;
  const results: { region: string; findings: RegionFinding[]; fixed: RegionFinding[]; refused: RegionFinding[]; error?: string }[] = [];
  try {
    if (opts.fix) {
      const db = await openDb(config.store.url);
      closeDb = () => db.close();
      store = new Store(db);
    }
    for (const region of opts.region!) {
      // The endpoint of a configured target in that region, if any (a VPC endpoint, or the test stand-in).
      const endpoint = config.targets.map((t) => t.firewall).find((f) => f.kind === 'aws-security-group' && f.region === region && f.endpoint) as { endpoint?: string } | undefined;
      try {
        const findings = await scanRegion({ region, ports: managed, endpoint: endpoint?.endpoint });
        let fixed: RegionFinding[] = [];
        let refused: RegionFinding[] = [];
        if (opts.fix && findings.length > 0) {
          ({ fixed, refused } = await fixRegion({ region, endpoint: endpoint?.endpoint, findings, allowGroups: config.exposure.allowGroups, all: opts.all === true }));
          for (const f of fixed) {
            await store!.audit({ type: 'exposure.fixed', actor, sourceIp: f.source.includes('/') ? f.source : undefined, port: f.fromPort, ruleRef: `${f.groupId}/${f.ruleId}`, detail: { region, groupId: f.groupId, ruleId: f.ruleId, protocol: f.protocol, fromPort: f.fromPort, toPort: f.toPort, source: f.source, why: f.why, attachments: f.attachments } });
          }
          for (const f of refused) err.write(`portcullis: not fixing ${f.groupId}/${f.ruleId} in ${region}: ${f.groupId} is not in exposure.allowGroups (use --all)\n`);
        }
        results.push({ region, findings, fixed, refused });
      } catch (e) {
        err.write(`portcullis: exposure scan of ${region} failed: ${(e as Error).message}\n`);
        results.push({ region, findings: [], fixed: [], refused: [], error: (e as Error).message });
      }
    }
    if (store && config.audit.jsonl) await new JsonlSink(config.audit.jsonl).catchUp(store);
  } finally {
    await closeDb?.();
  }
  if (opts.json) out.write(`${JSON.stringify({ regions: results }, null, 2)}\n`);
  else {
    const rows = results.flatMap((r) => r.findings.map((f) => [r.region, `${f.groupId}/${f.ruleId}`, f.source, f.fromPort === f.toPort ? String(f.fromPort) : `${f.fromPort}-${f.toPort}`, f.protocol, f.why, r.fixed.includes(f) ? 'fixed' : 'open', f.attachments.map((a) => a.instanceId ?? a.networkInterfaceId).join(',') || '-']));
    if (rows.length) out.write(`${table(['REGION', 'RULE', 'SOURCE', 'PORTS', 'PROTO', 'WHY', 'STATUS', 'ATTACHED TO'], rows).join('\n')}\n\n`);
    out.write(`scanned ${results.length} region(s): ${rows.length} exposure(s) found${opts.fix ? `, ${results.reduce((n, r) => n + r.fixed.length, 0)} fixed` : ''}\n`);
  }
  if (results.some((r) => r.error)) return EXIT_INCOMPLETE;
  return results.some((r) => r.findings.length > r.fixed.length) ? EXIT_EXPOSED : 0;
}

function collectRegion(value: string, previous: string[] | undefined): string[] {
  if (!/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(value)) throw new InvalidArgumentError(`"${value}" is not an AWS region such as eu-west-1`);
  return [...(previous ?? []), value];
}

export function formatReport(r: ExposureReport, fixing: boolean): string {
  const lines: string[] = [];
  if (r.exposures.length > 0) {
    const fixed = new Set(r.fixed.map((f) => `${f.scope} ${f.ref}`));
    const rows = r.exposures.map((e) => [
      e.scope,
      e.ref,
      e.source,
      e.fromPort === e.toPort ? String(e.fromPort) : `${e.fromPort}-${e.toPort}`,
      e.protocol,
      e.why,
      fixing ? (fixed.has(`${e.scope} ${e.ref}`) ? 'fixed' : 'FIX FAILED') : 'open',
      e.description ?? '',
    ]);
    lines.push(...table(['SCOPE', 'RULE', 'SOURCE', 'PORTS', 'PROTO', 'WHY', 'STATUS', 'DESCRIPTION'], rows), '');
  }
  const remaining = r.exposures.length - r.fixed.length;
  lines.push(
    `scanned ${r.scanned.length} backend(s): ${r.exposures.length} exposure(s) found` +
      (fixing ? `, ${r.fixed.length} fixed, ${remaining} remaining` : remaining > 0 ? ' (run with --fix to remove them)' : ''),
  );
  for (const s of r.scanned) lines.push(`  ${s.scope}  ports ${s.ports.join(',')}  targets ${s.targets.join(', ')}`);
  for (const s of r.skipped) lines.push(`  skipped ${s.scope} (${s.targets.join(', ')}): ${s.why}`);
  return `${lines.join('\n')}\n`;
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)];
}

function collectPort(value: string, previous: number[] | undefined): number[] {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65_535) throw new InvalidArgumentError(`"${value}" is not a port between 1 and 65535`);
  return [...(previous ?? []), n];
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
