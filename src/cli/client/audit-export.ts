// `portcullis audit export`: the broker's audit trail as JSONL (the format `audit verify --file` checks), page by page.
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import { BrokerApi } from './api.ts';
import { clientCommand, openSession, run, type ClientOptions } from './command.ts';
import { usage } from './cli-error.ts';
import { note } from './output.ts';

const PAGE = 500;

export function registerAuditExportCommand(program: Command): void {
  // `audit` is the group of `audit verify` (src/cli/audit.ts); export joins it rather than making a second group.
  const audit = program.commands.find((c) => c.name() === 'audit') ?? program.command('audit').description('audit trail tools');
  clientCommand(audit, 'export', 'download audit events from the broker as JSON lines (audit readers only)', {
    json: false,
    examples: ['portcullis audit export > audit.jsonl && portcullis audit verify --file audit.jsonl', 'portcullis audit export --after 1200 --output new-events.jsonl', 'portcullis audit export --limit 50 | jq .type'],
  })
    .option('--after <seq>', 'only events after this sequence number (to continue an earlier export)', '0')
    .option('-n, --limit <n>', 'at most this many events (default: all)')
    .option('-o, --output <file>', 'write to this file (created 0600) instead of stdout')
    .action((opts: ClientOptions & { after: string; limit?: string; output?: string }) =>
      run(opts, async () => {
        if (!/^\d{1,15}$/.test(opts.after)) throw usage(`--after "${opts.after}" must be a sequence number`);
        if (opts.limit !== undefined && (!/^\d{1,9}$/.test(opts.limit) || Number(opts.limit) < 1)) throw usage(`--limit "${opts.limit}" must be a positive number`);
        const api = new BrokerApi(openSession(opts));
        const max = opts.limit === undefined ? Infinity : Number(opts.limit);
        const fd = opts.output ? openSync(opts.output, 'w', 0o600) : 1;
        let after = Number(opts.after);
        let count = 0;
        let lastSeq: number | undefined;
        try {
          while (count < max) {
            const page = await api.get<{ events: { seq: number }[]; next?: number | null }>(`/audit?after=${after}&limit=${Math.min(PAGE, max - count)}`);
            // Events go out byte for byte as the broker sent them: their hashes must still verify.
            for (const e of page.events) writeSync(fd, `${JSON.stringify(e)}\n`);
            count += page.events.length;
            lastSeq = page.events.at(-1)?.seq ?? lastSeq;
            const next = typeof page.next === 'number' ? page.next : undefined;
            if (!page.events.length || next === undefined || next <= after) break;
            after = next;
          }
        } finally {
          if (fd !== 1) closeSync(fd);
        }
        note(`exported ${count} events${lastSeq !== undefined ? `, through seq ${lastSeq}` : ''}${opts.output ? ` to ${opts.output}` : ''}`);
        return 0;
      }),
    );
}
