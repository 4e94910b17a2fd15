// Which schema migrations a database has, and the refusal to run against a schema newer than this build knows.
import { sql, type Kysely } from 'kysely';
import { PortcullisError } from '../errors.ts';

/** Kysely's Migrator keeps one row per applied migration in this table (its default name). */
const MIGRATION_TABLE = 'kysely_migration';

export interface SchemaStatus {
  /** Applied migrations, in name order, with when they ran (ISO 8601, as Kysely writes it). */
  applied: { name: string; at: string }[];
  /** Known to this build and not yet applied. */
  pending: string[];
  /** Applied by a newer build: this build does not know them. */
  unknown: string[];
}

export async function schemaStatus(db: Kysely<any>, known: readonly string[]): Promise<SchemaStatus> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  const applied = tables.some((t) => t.name === MIGRATION_TABLE)
    ? (await sql<{ name: string; timestamp: string }>`select name, timestamp from ${sql.table(MIGRATION_TABLE)} order by name`.execute(db)).rows.map((r) => ({ name: r.name, at: r.timestamp }))
    : [];
  const have = new Set(applied.map((a) => a.name));
  const knownSet = new Set(known);
  return { applied, pending: known.filter((n) => !have.has(n)), unknown: applied.map((a) => a.name).filter((n) => !knownSet.has(n)) };
}

/**
 * Refuses a database that a newer Portcullis has migrated: this build would not know the meaning of
 * what the newer one writes. Migrations are expand-then-contract, so the reverse (an older schema) is
 * fine: the missing migrations are applied, and a previous version keeps working on the expanded schema.
 */
export async function assertSchemaKnown(db: Kysely<any>, known: readonly string[]): Promise<void> {
  const { unknown } = await schemaStatus(db, known);
  if (unknown.length === 0) return;
  throw new PortcullisError(
    'SCHEMA_TOO_NEW',
    `the database schema is newer than this version of Portcullis knows (unknown migrations: ${unknown.join(', ')}; newest known: ${known[known.length - 1] ?? 'none'}); run the newer version, or restore a backup taken before its migrate`,
    { field: 'store.url', details: { unknown } },
  );
}
