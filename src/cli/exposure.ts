// `portcullis exposure scan [--config] [--json] [--fix] [--port N…]`: the exposure use case for people and cron jobs.
import { userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import type { AuditInput } from '../audit/chain.ts';
import { JsonlSink } from '../audit/jsonl.ts';
import { exposureScopes, runExposureScan, type ExposureReport } from '../broker/exposure.ts';
import { loadConfig } from '../config/load.ts';
import { buildFirewalls, defaultSimulatedPath, type RegistryOptions } from '../firewall/registry.ts';
import { openDb } from '../store/db.ts';
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
    .action(async (opts: ExposureScanOptions) => {
      process.exitCode = await exposureScanCommand(opts, deps);
    });
}

export async function exposureScanCommand(opts: ExposureScanOptions, deps: ExposureCommandDeps = {}): Promise<number> {
  const out = deps.out ?? process.stdout;
  const err = deps.err ?? process.stderr;
  const config = loadConfig({ path: opts.config ?? process.env.PORTCULLIS_CONFIG });
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
