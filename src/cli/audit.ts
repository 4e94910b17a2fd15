// `portcullis audit verify`: checks the hash chain of the JSONL file or of the store, naming the first broken link.
// `portcullis audit tail`: streams the chain from the store (JSONL or RFC 5424 syslog), resumable by seq, for a SIEM.
import { InvalidArgumentError, type Command } from 'commander';
import { parseDuration } from '../config/duration.ts';
import { toSyslog } from '../audit/syslog.ts';
import { verifyJsonl } from '../audit/jsonl.ts';
import type { VerifyResult } from '../audit/chain.ts';
import { loadConfig } from '../config/load.ts';
import { openDb } from '../store/db.ts';
import { Store } from '../store/store.ts';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('audit trail tools');
  audit
    .command('verify')
    .description('verify the audit hash chain (the JSONL file, or the store with --store)')
    .option('-f, --file <path>', 'JSONL audit file (default: audit.jsonl from the config)')
    .option('--store', 'verify the chain in the store named by the config instead of the file')
    .option('-c, --config <path>', 'YAML config file (default: $PORTCULLIS_CONFIG, else the embedded default)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExit codes: 0 the chain verifies, 1 it is broken (the first broken link is named), 2 it could not be read.\n\nExamples:\n  portcullis audit verify --file ./data/audit.jsonl\n  portcullis audit verify --store --config /etc/portcullis.yaml')
    .action(async (opts: { file?: string; store?: boolean; config?: string; json?: boolean }) => {
      let result: VerifyResult & { line?: number };
      let what: string;
      try {
        if (opts.store) {
          const config = loadConfig({ path: opts.config ?? process.env.PORTCULLIS_CONFIG });
          const db = await openDb(config.store.url);
          try {
            result = await new Store(db).verifyAudit();
          } finally {
            await db.close();
          }
          what = 'store';
        } else {
          const file = opts.file ?? loadConfig({ path: opts.config ?? process.env.PORTCULLIS_CONFIG }).audit.jsonl;
          if (!file) throw new Error('no --file given and audit.jsonl is not configured');
          result = await verifyJsonl(file);
          what = file;
        }
      } catch (e) {
        process.stderr.write(`portcullis: cannot verify: ${(e as Error).message}\n`);
        process.exit(2);
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ source: what, ...result })}\n`);
      } else if (result.ok) {
        process.stdout.write(`OK: ${result.count} events, chain intact up to seq ${result.lastSeq} (${what})\n`);
      } else {
        const where = result.line !== undefined ? ` (line ${result.line})` : '';
        process.stdout.write(`BROKEN: first broken link at seq ${result.broken!.seq}${where}: ${result.broken!.problem}; ${result.count} events before it verify (${what})\n`);
      }
      process.exit(result.ok ? 0 : 1);
    });

  audit
    .command('tail')
    .description('stream audit events from the store to stdout as JSON lines (or RFC 5424 syslog), oldest first')
    .option('--after <seq>', 'start after this seq (resume: the seq of the last event you received)', seqArg, 0)
    .option('-f, --follow', 'keep running and print new events as replicas commit them')
    .option('--format <format>', 'jsonl (the events as the store keeps them, verifiable with `audit verify --file`) or syslog', formatArg, 'jsonl')
    .option('--interval <duration>', 'with --follow: how often to look for new events', '1s')
    .option('-c, --config <path>', 'YAML config file (default: $PORTCULLIS_CONFIG, else the embedded default)')
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2))
    .addHelpText('after', '\nEvery replica reads the same chain from the store, so any of them gives the same stream; a gap cannot occur,\nbecause seq is assigned under the chain head\'s lock and committed in order.\n\nExit codes: 0 done (or stopped by SIGINT/SIGTERM, or the reader closed the pipe), 1 the store failed, 2 usage.\n\nExamples:\n  portcullis audit tail --config /etc/portcullis.yaml > audit.jsonl && portcullis audit verify --file audit.jsonl\n  portcullis audit tail --follow --after 1200 --format syslog | logger --rfc5424 --server siem.example.com')
    .action(async (opts: { after: number; follow?: boolean; format: 'jsonl' | 'syslog'; interval: string; config?: string }) => {
      const interval = parseDuration(opts.interval);
      if (interval === undefined || interval <= 0) {
        process.stderr.write(`portcullis: --interval "${opts.interval}" is not a duration such as 1s, 5s or 1m\n`);
        process.exit(2);
      }
      const config = loadConfig({ path: opts.config ?? process.env.PORTCULLIS_CONFIG });
      let stopped = false;
      let wake: (() => void) | undefined;
      const stop = () => {
        stopped = true;
        wake?.();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      // A reader that went away (`| head`) is a normal end, not a failure.
      process.stdout.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? process.exit(0) : process.exit(1)));
      const format = opts.format === 'syslog' ? (e: Parameters<typeof toSyslog>[0]) => toSyslog(e) : (e: object) => JSON.stringify(e);
      let db;
      try {
        db = await openDb(config.store.url);
        const store = new Store(db);
        let after = opts.after;
        while (!stopped) {
          const events = await store.auditEvents({ afterSeq: after, limit: 1000 });
          if (events.length > 0) {
            const ok = process.stdout.write(events.map((e) => `${format(e)}\n`).join(''));
            after = events[events.length - 1]!.seq;
            if (!ok) await new Promise((r) => process.stdout.once('drain', r));
            if (events.length === 1000) continue;
          }
          if (!opts.follow) break;
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, interval * 1000);
          });
        }
      } catch (e) {
        process.stderr.write(`portcullis: cannot read the audit trail: ${(e as Error).message}\n`);
        process.exitCode = 1;
      } finally {
        await db?.close();
      }
      process.exit(process.exitCode ?? 0);
    });
}

function seqArg(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('a seq is a whole number (0 for the start of the trail)');
  return Number(v);
}

function formatArg(v: string): string {
  if (v !== 'jsonl' && v !== 'syslog') throw new InvalidArgumentError('jsonl or syslog');
  return v;
}
