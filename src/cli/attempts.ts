// `portcullis attempts`: who knocked on the gate, summed from the `gate.attempts` summaries in the audit trail.
import { InvalidArgumentError, type Command } from 'commander';
import { parseDuration } from '../config/duration.ts';
import { loadConfig } from '../config/load.ts';
import { queryAudit } from '../broker/audit-query.ts';
import { openDb } from '../store/db.ts';
import { Store } from '../store/store.ts';

interface Row {
  source: string;
  target: string | null;
  port: number;
  protocol: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
}

export interface AttemptsSummary {
  since: string;
  windows: number;
  total: number;
  overflow: number;
  sources: Row[];
}

/** Sums the windows' top sources per source, target, protocol and port (busiest first). */
export function summarise(events: { detail?: Record<string, unknown> | undefined }[], since: number, target?: string): AttemptsSummary {
  const rows = new Map<string, Row>();
  let total = 0;
  let overflow = 0;
  let windows = 0;
  for (const e of events) {
    const d = e.detail ?? {};
    const top = Array.isArray(d.top) ? (d.top as Row[]) : [];
    const mine = target === undefined ? top : top.filter((r) => r.target === target);
    if (target !== undefined && mine.length === 0) continue;
    windows += 1;
    total += target === undefined ? Number(d.total ?? 0) : mine.reduce((n, r) => n + r.count, 0);
    if (target === undefined) overflow += Number(d.overflow ?? 0);
    for (const r of mine) {
      const k = `${r.source}|${r.target}|${r.protocol}|${r.port}`;
      const have = rows.get(k);
      if (!have) rows.set(k, { ...r });
      else {
        have.count += r.count;
        if (r.firstSeen < have.firstSeen) have.firstSeen = r.firstSeen;
        if (r.lastSeen > have.lastSeen) have.lastSeen = r.lastSeen;
      }
    }
  }
  const sources = [...rows.values()].sort((a, b) => b.count - a.count || a.source.localeCompare(b.source));
  return { since: new Date(since).toISOString(), windows, total, overflow, sources };
}

export function registerAttemptsCommand(program: Command): void {
  program
    .command('attempts')
    .description('blocked attempts on the gate per source, from the audited gate.attempts summaries')
    .option('--since <duration>', 'how far back (e.g. 15m, 1h, 7d)', durationArg, 3_600_000)
    .option('--target <id>', 'only attempts on this target')
    .option('-c, --config <path>', 'YAML config file (default: $PORTCULLIS_CONFIG, else the embedded default)')
    .option('--json', 'print the summary as JSON')
    .addHelpText('after', '\nExit codes: 0 read, 1 the store could not be read, 2 usage errors.\n\nExamples:\n  portcullis attempts --since 24h\n  portcullis attempts --target acme-dc01 --json')
    .action(async (opts: { since: number; target?: string; config?: string; json?: boolean }) => {
      let summary: AttemptsSummary;
      try {
        const config = loadConfig({ path: opts.config ?? process.env.PORTCULLIS_CONFIG });
        const db = await openDb(config.store.url);
        try {
          const since = Date.now() - opts.since;
          // A window that ended after `since` is counted whole: summaries are the unit the trail keeps.
          const { events } = await queryAudit(new Store(db), { type: 'gate.attempts', from: since }, 100_000);
          summary = summarise(events, since, opts.target);
        } finally {
          await db.close();
        }
      } catch (e) {
        process.stderr.write(`portcullis: cannot read attempts: ${(e as Error).message}\n`);
        process.exit(1);
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(summary)}\n`);
        return;
      }
      process.stdout.write(`${summary.total} blocked attempts since ${summary.since} in ${summary.windows} windows${summary.overflow ? ` (${summary.overflow} while the set was full, sources not recorded)` : ''}\n`);
      for (const r of summary.sources) process.stdout.write(`${String(r.count).padStart(8)}  ${r.source}  ${r.target ?? '-'} ${r.protocol}/${r.port}  ${r.firstSeen} .. ${r.lastSeen}\n`);
    });
}

function durationArg(v: string): number {
  const s = parseDuration(v);
  if (s === undefined || s <= 0) throw new InvalidArgumentError('must be a duration such as 15m, 1h or 7d');
  return s * 1000;
}
