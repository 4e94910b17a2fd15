// `portcullis audit verify`: checks the hash chain of the JSONL file or of the store, naming the first broken link.
import type { Command } from 'commander';
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
}
