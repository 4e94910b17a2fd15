// Opens the store named by `store.url` (SQLite file or PostgreSQL) and brings its schema up to date.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type MigrationProvider } from 'kysely';
import pg from 'pg';
import { PortcullisError } from '../errors.ts';
import { migrations } from './migrations.ts';
import { assertSchemaKnown } from './schema-version.ts';
import type { Database } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Db {
  kysely: Kysely<Database>;
  dialect: Dialect;
  close(): Promise<void>;
}

// int8 (bigint) columns hold epoch milliseconds, well inside Number's exact range.
pg.types.setTypeParser(20, (v: string) => Number(v));

export async function openDb(url: string): Promise<Db> {
  let kysely: Kysely<Database>;
  let dialect: Dialect;
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const sqlite = new SqliteDatabase(path);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingPrepare(sqlite) }) });
    dialect = 'sqlite';
  } else if (/^postgres(ql)?:\/\//.test(url)) {
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    // An idle client's error would otherwise crash the process; queries still fail and are reported.
    pool.on('error', () => {});
    kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    dialect = 'postgres';
  } else {
    throw new PortcullisError('CONFIG_INVALID', 'store.url must be sqlite:PATH or postgres://…', { field: 'store.url' });
  }
  try {
    await assertSchemaKnown(kysely, Object.keys(migrations));
    await migrate(kysely);
  } catch (e) {
    await kysely.destroy().catch(() => {});
    if (e instanceof PortcullisError) throw e;
    throw new PortcullisError('STORE_UNAVAILABLE', `store migration failed: ${(e as Error).message}`, { cause: e });
  }
  return { kysely, dialect, close: () => kysely.destroy() };
}

/**
 * Kysely prepares every statement anew; preparing costs about as much as running a small one.
 * The driver runs one statement at a time on its single connection, so reusing them is safe.
 */
function cachingPrepare(db: SqliteDatabase.Database) {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => db.close(),
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (!stmt) {
        stmt = db.prepare(sql);
        if (cache.size >= 512) cache.delete(cache.keys().next().value!);
        cache.set(sql, stmt);
      }
      return stmt;
    },
  };
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

async function migrate(kysely: Kysely<Database>): Promise<void> {
  const { error, results } = await new Migrator({ db: kysely, provider }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed}: ${(error as Error).message}`, { cause: error });
  }
}
