// `portcullis sweep --once [--tags-only]`: one safety sweep outside `serve`, for a scheduler (cron, ECS, a Kubernetes CronJob).
import type { Command } from 'commander';
import { loadConfig } from '../config/load.ts';
import { isPortcullisError } from '../errors.ts';
import { createLogger } from '../log.ts';

interface SweepOptions {
  once?: boolean;
  tagsOnly?: boolean;
  config?: string;
  json?: boolean;
}

export function registerSweepCommand(program: Command): void {
  program
    .command('sweep')
    .description('run one safety sweep: expire due grants and reconcile (or, with --tags-only, close overdue AWS rules from their tags alone)')
    .option('--once', 'sweep once and exit (the only mode; `serve` sweeps on reaper.sweep)')
    .option('--tags-only', 'AWS only: revoke every managed rule whose portcullis:expires tag has passed, without the store')
    .option('-c, --config <path>', 'YAML config file (default: $PORTCULLIS_CONFIG, else the embedded default)')
    .option('--json', 'print one JSON object per backend (and per closed rule) instead of text')
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2))
    .addHelpText(
      'after',
      '\n--tags-only needs only the targets of the config and AWS credentials allowed to describe and revoke: it opens no\ndatabase, so it closes AWS rules on time while every broker and the database are down. The store learns of it at\nthe next reconcile (the grant is closed as expired). Rules not tagged portcullis:managed=true are never touched.\n\nExit codes: 0 every backend was swept, 1 some backend (or the store) failed (the others were still swept), 2 usage.\n\nExamples:\n  portcullis sweep --once --tags-only --config /etc/portcullis.yaml\n  portcullis sweep --once --config /etc/portcullis.yaml',
    )
    .action(async (opts: SweepOptions) => {
      if (!opts.once) {
        process.stderr.write('portcullis: sweep needs --once (a continuous sweep is what `portcullis serve` runs)\n');
        process.exit(2);
      }
      const config = loadConfig({ path: opts.config ?? process.env.PORTCULLIS_CONFIG });
      process.exit(opts.tagsOnly ? await sweepTags(config, opts) : await sweepStore(config, opts));
    });
}

async function sweepTags(config: ReturnType<typeof loadConfig>, opts: SweepOptions): Promise<number> {
  // Loaded only here: the EC2 client is heavy, and other commands never need it.
  const { awsAdaptersOf, sweepByTags } = await import('../firewall/aws-tag-sweep.ts');
  const adapters = awsAdaptersOf(config.targets.map((t) => t.firewall));
  if (adapters.length === 0) {
    process.stderr.write('portcullis: --tags-only sweeps AWS security groups, and no target of this config is on one\n');
    return 2;
  }
  try {
    const now = Date.now();
    const reports = await sweepByTags(adapters, now);
    for (const r of reports) {
      if (opts.json) {
        for (const c of r.closed) process.stdout.write(`${JSON.stringify({ type: 'rule.closed_by_tag', backend: r.scope, ruleRef: c.ref, grants: c.grantIds, source: c.source, port: c.port, expiresAt: new Date(c.expiresAt!).toISOString() })}\n`);
        process.stdout.write(`${JSON.stringify({ type: 'sweep.backend', backend: r.scope, closed: r.closed.length, kept: r.kept, undated: r.undated.map((u) => u.ref), ...(r.error ? { error: r.error } : {}) })}\n`);
      } else {
        for (const c of r.closed) process.stdout.write(`closed ${c.ref} (grant ${c.grantIds.join(', ') || 'unknown'}, ${c.source} port ${c.port}, expired ${new Date(c.expiresAt!).toISOString()})\n`);
        for (const u of r.undated) process.stdout.write(`left ${u.ref}: managed but its expiry tag is missing or unreadable\n`);
        process.stdout.write(r.error ? `${r.scope}: FAILED ${r.error.code}: ${r.error.message}\n` : `${r.scope}: closed ${r.closed.length}, kept ${r.kept} not yet expired\n`);
      }
    }
    return reports.some((r) => r.error) ? 1 : 0;
  } finally {
    for (const a of adapters) await a.shutdown?.();
  }
}

async function sweepStore(config: ReturnType<typeof loadConfig>, opts: SweepOptions): Promise<number> {
  const log = createLogger();
  const { createPortcullis } = await import('../app.ts');
  let app;
  try {
    app = await createPortcullis(config, { log });
  } catch (e) {
    process.stderr.write(`portcullis: ${isPortcullisError(e) ? e.code : 'STORE_UNAVAILABLE'}: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    const expired = await app.broker.expireDue();
    const pendingExpired = await app.broker.expirePending();
    const rec = await app.broker.reconcile();
    const summary = { type: 'sweep.store', expired, pendingExpired, ...rec };
    process.stdout.write(
      opts.json
        ? `${JSON.stringify(summary)}\n`
        : `swept: ${expired} grants expired, ${pendingExpired} unapproved requests expired; reconcile: ${rec.orphansRemoved} orphan rules removed, ${rec.reopened} reopened, ${rec.settled} settled, ${rec.failedBackends} backends failed\n`,
    );
    return rec.failedBackends > 0 ? 1 : 0;
  } catch (e) {
    process.stderr.write(`portcullis: ${isPortcullisError(e) ? e.code : 'INTERNAL'}: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await app.stop();
  }
}
