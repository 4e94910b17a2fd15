// The `simulated` backend of the zero-config demo: holds rules durably in its own SQLite file,
// apart from the broker's store, so restarts, crashes and reconcile behave as with a real backend.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { TableFirewall, type RuleRecord, type RuleTable } from './memory.ts';

/** One connection per file, shared by every target's table in it (many targets, one file). */
const files = new Map<string, { db: SqliteDatabase.Database; users: number }>();

function openFile(path: string): SqliteDatabase.Database {
  const open = files.get(path);
  if (open && path !== ':memory:') {
    open.users += 1;
    return open.db;
  }
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new SqliteDatabase(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.exec(`create table if not exists rules (
    ref text primary key, scope text not null, grant_id text not null,
    source text not null, port integer not null, expires_at integer not null)`);
  db.exec('create index if not exists rules_grant on rules (scope, grant_id)');
  if (path !== ':memory:') files.set(path, { db, users: 1 });
  return db;
}

function closeFile(path: string, db: SqliteDatabase.Database): void {
  const open = files.get(path);
  if (open && open.db === db) {
    open.users -= 1;
    if (open.users > 0) return;
    files.delete(path);
  }
  db.close();
}

class SqliteRuleTable implements RuleTable {
  private readonly db: SqliteDatabase.Database;
  private readonly stmts;

  constructor(private readonly path: string, private readonly scope: string) {
    this.db = openFile(path);
    this.stmts = {
      byGrant: this.db.prepare('select ref, grant_id as grantId, source, port, expires_at as expiresAt from rules where scope = ? and grant_id = ?'),
      insert: this.db.prepare('insert or replace into rules (ref, scope, grant_id, source, port, expires_at) values (?, ?, ?, ?, ?, ?)'),
      remove: this.db.prepare('delete from rules where scope = ? and ref = ?'),
      all: this.db.prepare('select ref, grant_id as grantId, source, port, expires_at as expiresAt from rules where scope = ?'),
      count: this.db.prepare('select count(*) as n from rules where scope = ?'),
    };
  }

  byGrant(grantId: string) {
    return this.stmts.byGrant.get(this.scope, grantId) as RuleRecord | undefined;
  }
  insert(r: RuleRecord) {
    this.stmts.insert.run(r.ref, this.scope, r.grantId, r.source, r.port, r.expiresAt);
  }
  remove(refs: string[]) {
    this.db.transaction(() => {
      for (const ref of refs) this.stmts.remove.run(this.scope, ref);
    })();
  }
  all() {
    return this.stmts.all.all(this.scope) as RuleRecord[];
  }
  count() {
    return (this.stmts.count.get(this.scope) as { n: number }).n;
  }
  close() {
    closeFile(this.path, this.db);
  }
}

/** One simulated backend per target, all in one file (`path`, one connection), told apart by scope. */
export function createSimulatedAdapter(path: string, targetId: string): TableFirewall {
  const table = new SqliteRuleTable(path, `simulated:${targetId}`);
  const fw = new TableFirewall('simulated', `simulated:${targetId}`, table);
  fw.shutdown = async () => table.close();
  return fw;
}
