// Test preload (`--import`): turns this process into "the next version" by appending one expand-only migration,
// which pauses at a gate (files named by PORTCULLIS_TEST_MIGRATION_GATE) so a test can use an older replica mid-migration.
import { existsSync, writeFileSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { migrations } from '../../../src/store/migrations.ts';

const gate = process.env.PORTCULLIS_TEST_MIGRATION_GATE;
migrations['9001_test_grant_labels'] = {
  async up(db: Kysely<any>) {
    // Expand only: a new table and a nullable column; nothing the previous version reads or writes changes meaning.
    await db.schema.createTable('grant_labels').addColumn('grant_id', 'text', (c) => c.notNull()).addColumn('label', 'text', (c) => c.notNull()).execute();
    if (gate) {
      writeFileSync(`${gate}.reached`, '');
      while (!existsSync(`${gate}.go`)) await new Promise((r) => setTimeout(r, 20));
    }
    await db.schema.alterTable('grants').addColumn('label', 'text').execute();
  },
};
