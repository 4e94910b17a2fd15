// `portcullis migrate`: upgrades a store at the previous schema, keeps an older replica serving meanwhile, and a
// replica refuses a schema newer than it knows.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { stringify } from 'yaml';
import { openDb } from '../../src/store/db.ts';
import { migrations } from '../../src/store/migrations.ts';
import { schemaStatus } from '../../src/store/schema-version.ts';
import { api, ROOT, spawnBroker, tempDir, testConfig, waitFor } from '../helpers/broker.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { startTestIdp } from '../helpers/idp.ts';
import { postgresUnavailable, startPostgres } from '../helpers/postgres.ts';

// Not imported: importing it would make this process the next version too.
const NEXT = join(ROOT, 'test/cli/helpers/next-schema.ts');
const NEXT_MIGRATION = '9001_test_grant_labels';
const known = Object.keys(migrations);

function cli(args: string[], opts: { next?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...(opts.next ? ['--import', NEXT] : []), join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

function writeConfig(dir: string, raw: Record<string, unknown>): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(raw));
  return file;
}

test('migrate brings a store at the previous schema up to date, names what it applied, and then has nothing to do', async () => {
  const tmp = tempDir();
  try {
    const path = join(tmp.dir, 'portcullis.db');
    // The previous version: every migration but the newest.
    const previous = Object.fromEntries(Object.entries(migrations).slice(0, -1));
    const old = new Kysely<any>({ dialect: new SqliteDialect({ database: new SqliteDatabase(path) }) });
    const r0 = await new Migrator({ db: old, provider: { getMigrations: async () => previous } }).migrateToLatest();
    assert.equal(r0.error, undefined);
    await sql`insert into grants (id, target_id, port, source, requester, reason, duration_seconds, channel, state, created_at, updated_at)
      values ('g_old', 'lab-pc', 3389, '198.51.100.7/32', 'alice', 'T-1', 3600, 'cli', 'closed', 1, 1)`.execute(old);
    await old.destroy();

    const file = writeConfig(tmp.dir, testConfig(tmp.dir, { dev: { embeddedIdp: true } }));
    const first = await cli(['migrate', '--config', file, '--json']);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), { applied: [known.at(-1)], schema: known.at(-1) });

    const again = await cli(['migrate', '--config', file]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`schema is current at ${known.at(-1)} \\(${known.length} migrations\\); nothing to apply`));

    // The row written under the previous schema survives, with the new column's default.
    const db = await openDb(`sqlite:${path}`);
    try {
      const row = await db.kysely.selectFrom('grants').select(['id', 'required_approvals']).where('id', '=', 'g_old' as never).executeTakeFirstOrThrow();
      assert.deepEqual(row, { id: 'g_old', required_approvals: 1 });
    } finally {
      await db.close();
    }
  } finally {
    tmp.cleanup();
  }
});

test('a store migrated by a newer version is refused at open with SCHEMA_TOO_NEW, naming the unknown migration', async () => {
  const tmp = tempDir();
  try {
    const file = writeConfig(tmp.dir, testConfig(tmp.dir, { dev: { embeddedIdp: true } }));
    const up = await cli(['migrate', '--config', file, '--json'], { next: true });
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(JSON.parse(up.stdout).applied, [...known, NEXT_MIGRATION]);

    await assert.rejects(openDb(`sqlite:${join(tmp.dir, 'portcullis.db')}`), (e: any) => e.code === 'SCHEMA_TOO_NEW' && e.message.includes(NEXT_MIGRATION));
    const serve = await cli(['serve', '--config', file]);
    assert.equal(serve.code, 1);
    assert.match(serve.stderr, new RegExp(`SCHEMA_TOO_NEW: the database schema is newer than this version of Portcullis knows \\(unknown migrations: ${NEXT_MIGRATION}`));
    const down = await cli(['migrate', '--config', file]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /SCHEMA_TOO_NEW/);
  } finally {
    tmp.cleanup();
  }
});

test('PostgreSQL: a replica of the previous version keeps serving reads and writes while migrate applies the next schema', async (t) => {
  const why = postgresUnavailable();
  if (!requireOrSkip(t, why === undefined, why ?? '')) return;
  const pgServer = await startPostgres();
  const idp = await startTestIdp({ mfa: 'amr-mfa', users: { alice: { email: 'alice@example.test', groups: ['engineers'] } } });
  const tmp = tempDir();
  const gate = join(tmp.dir, 'gate');
  let replica: Awaited<ReturnType<typeof spawnBroker>> | undefined;
  try {
    const raw = testConfig(tmp.dir, {
      store: { url: pgServer.url },
      audit: {},
      oidc: { issuer: idp.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } } },
    });
    // The running replica is this build; the migrate below is the next one (one more migration).
    replica = await spawnBroker(raw, tmp.dir);
    const token = await idp.getIdToken('alice');
    const made = await api(replica.url, '/api/v1/grants', { token, body: { target: 'lab-pc', duration: '1h', reason: 'T-1 before' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const id = made.body.grant.id as string;

    const migrating = cli(['migrate', '--config', writeConfig(tmp.dir, raw), '--json'], { next: true, env: { PORTCULLIS_TEST_MIGRATION_GATE: gate } });
    await waitFor('migration at its gate', async () => existsSync(`${gate}.reached`), 30_000);
    // Mid-migration: the previous version reads and writes as before.
    const during = await api(replica.url, `/api/v1/grants/${id}`, { token });
    assert.equal(during.status, 200);
    assert.equal(during.body.grant.state, 'active');
    const list = await api(replica.url, '/api/v1/grants', { token });
    assert.deepEqual(list.body.grants.map((g: { id: string }) => g.id), [id]);
    writeFileSync(`${gate}.go`, '');
    const done = await migrating;
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(JSON.parse(done.stdout).applied, [NEXT_MIGRATION]);

    // After it: still reads, still writes (a new grant, a revoke), on the expanded schema.
    assert.equal((await api(replica.url, `/api/v1/grants/${id}`, { token })).body.grant.state, 'active');
    const second = await api(replica.url, '/api/v1/grants', { token, body: { target: 'lab-pc', duration: '1h', reason: 'T-2 after', port: 3389 } });
    assert.equal(second.status, 201, JSON.stringify(second.body));
    const revoked = await api(replica.url, `/api/v1/grants/${id}/revoke`, { token, method: 'POST' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body.grant.state, 'closed');

    const db = await openDb(pgServer.url).catch((e) => e);
    assert.equal(db.code, 'SCHEMA_TOO_NEW', 'a fresh replica of the previous version refuses the newer schema');
    const kysely = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgServer.url }) }) });
    try {
      const status = await schemaStatus(kysely, [...known, NEXT_MIGRATION]);
      assert.deepEqual(status.pending, []);
      assert.deepEqual(status.unknown, []);
      const cols = await sql<{ column_name: string }>`select column_name from information_schema.columns where table_name = 'grants' and column_name = 'label'`.execute(kysely);
      assert.equal(cols.rows.length, 1);
    } finally {
      await kysely.destroy();
    }
  } finally {
    await replica?.kill('SIGTERM');
    await idp.close();
    await pgServer.stop();
    tmp.cleanup();
  }
});
