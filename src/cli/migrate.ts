// `portcullis migrate`: brings the store's schema up to this version's and says which migrations it applied.
import type { Command } from 'commander';
import { loadConfig } from '../config/load.ts';
import { isPortcullisError } from '../errors.ts';
import { openDb } from '../store/db.ts';
import { migrations } from '../store/migrations.ts';
import { schemaStatus } from '../store/schema-version.ts';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply the schema migrations this version knows to the store (run before rolling out a new version)')
    .option('-c, --config <path>', 'YAML config file (default: $PORTCULLIS_CONFIG, else the embedded default)')
    .option('--json', 'print { applied, schema } as JSON')
    .addHelpText(
      'after',
      '\nMigrations only add (tables, nullable or defaulted columns, indexes), so replicas of the previous version keep\nserving while it runs. A store migrated by a newer version is refused (exit 1, SCHEMA_TOO_NEW).\n\nExit codes: 0 the schema is current, 1 a migration failed or the schema is newer than this version.\n\nExamples:\n  portcullis migrate --config /etc/portcullis.yaml\n  PORTCULLIS_CONFIG=/etc/portcullis.yaml portcullis migrate --json',
    )
    .action(async (opts: { config?: string; json?: boolean }) => {
      const config = loadConfig({ path: opts.config ?? process.env.PORTCULLIS_CONFIG });
      const started = new Date().toISOString();
      let status;
      try {
        const db = await openDb(config.store.url);
        try {
          status = await schemaStatus(db.kysely, Object.keys(migrations));
        } finally {
          await db.close();
        }
      } catch (e) {
        const code = isPortcullisError(e) ? e.code : 'STORE_UNAVAILABLE';
        if (opts.json) process.stdout.write(`${JSON.stringify({ error: { code, message: (e as Error).message } })}\n`);
        process.stderr.write(`portcullis: ${code}: ${(e as Error).message}\n`);
        process.exit(1);
      }
      // Kysely stamps each migration with the time it ran; those from this run are the ones we applied.
      const applied = status.applied.filter((a) => a.at >= started).map((a) => a.name);
      const schema = status.applied.at(-1)?.name ?? null;
      if (opts.json) process.stdout.write(`${JSON.stringify({ applied, schema })}\n`);
      else if (applied.length === 0) process.stdout.write(`schema is current at ${schema} (${status.applied.length} migrations); nothing to apply\n`);
      else process.stdout.write(`applied ${applied.length} migration(s): ${applied.join(', ')}; schema now at ${schema}\n`);
      process.exit(0);
    });
}
