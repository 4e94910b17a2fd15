// `portcullis attempts`: who knocked on the gate, summed from the `gate.attempts` summaries in the audit trail
// (the broker's attempts report; the window in progress is the running broker's, shown in /admin).
import { InvalidArgumentError, type Command } from 'commander';
import { parseDuration } from '../config/duration.ts';
import { loadConfig } from '../config/load.ts';
import { attemptsReport, type AttemptsReport } from '../broker/attempts-report.ts';
import { openDb } from '../store/db.ts';
import { Store } from '../store/store.ts';

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
      let summary: AttemptsReport;
      try {
        const config = loadConfig({ path: opts.config ?? process.env.PORTCULLIS_CONFIG });
        const db = await openDb(config.store.url);
        try {
          summary = await attemptsReport({ store: new Store(db) }, { sinceMs: Date.now() - opts.since, target: opts.target });
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
