// `portcullis audit tail`: the store's chain as JSONL (verifiable), resumable with --after, --follow sees new
// commits, and --format syslog frames each event as RFC 5424.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openDb, type Db } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { ROOT, tempDir, testConfig, waitFor } from '../helpers/broker.ts';

function start(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done, stdout: () => stdout };
}

// RFC 5424 §6: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA SP BOM MSG
const SYSLOG = /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z) ([\x21-\x7e]{1,255}) ([\x21-\x7e]{1,48}) ([\x21-\x7e]{1,128}) ([\x21-\x7e]{1,32}) \[([^ =\]"]{1,32})((?: [^ =\]"]{1,32}="(?:[^"\\\]]|\\["\\\]])*")*)\] \uFEFF(.*)$/;

describe('audit tail', () => {
  const tmp = tempDir();
  let db: Db;
  let store: Store;
  let config: string;

  before(async () => {
    db = await openDb(`sqlite:${join(tmp.dir, 'portcullis.db')}`);
    store = new Store(db);
    for (let i = 1; i <= 5; i++) await store.audit({ type: i === 3 ? 'auth.rejected' : 'grant.requested', actor: `user${i}`, grant: `g_${i}`, reason: `T-${i} "quoted" ] bracket` });
    config = join(tmp.dir, 'config.yaml');
    writeFileSync(config, stringify(testConfig(tmp.dir, { dev: { embeddedIdp: true }, audit: {} })));
  });
  after(async () => {
    await db.close();
    tmp.cleanup();
  });

  it('prints the chain as JSON lines that audit verify accepts, and resumes after a seq', async () => {
    const all = await start(['audit', 'tail', '--config', config]).done;
    assert.equal(all.code, 0, all.stderr);
    const events = await store.auditEvents({ limit: 100 });
    assert.equal(all.stdout, events.map((e) => `${JSON.stringify(e)}\n`).join(''));
    const file = join(tmp.dir, 'tail.jsonl');
    writeFileSync(file, all.stdout);
    const verify = await start(['audit', 'verify', '--file', file]).done;
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /OK: 5 events/);

    const rest = await start(['audit', 'tail', '--after', '3', '--config', config]).done;
    assert.deepEqual(rest.stdout.trim().split('\n').map((l) => JSON.parse(l).seq), [4, 5]);

    const bad = await start(['audit', 'tail', '--after', 'x', '--config', config]).done;
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /a seq is a whole number/);
  });

  it('--follow prints events committed after it started, in order, and stops cleanly on SIGTERM', async () => {
    const first = (await store.auditEvents({ limit: 100 })).at(-1)!.seq;
    const tail = start(['audit', 'tail', '--follow', '--interval', '1s', '--after', String(first), '--config', config]);
    const printed = () => tail.stdout().trim().split('\n').filter(Boolean).length;
    await store.audit({ type: 'rule.opened', actor: 'system', grant: 'g_f0' });
    // Once the first shows, the tail is in its follow loop: the next two are committed strictly after it started.
    await waitFor('the first new event', async () => printed() === 1, 20_000);
    for (let i = 1; i < 3; i++) await store.audit({ type: 'rule.opened', actor: 'system', grant: `g_f${i}` });
    const seqs = await waitFor('three new events', async () => {
      const got = tail.stdout().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).seq as number);
      return got.length >= 3 ? got : undefined;
    }, 20_000);
    assert.deepEqual(seqs, [first + 1, first + 2, first + 3]);
    tail.child.kill('SIGTERM');
    const r = await tail.done;
    assert.equal(r.code, 0, r.stderr);
  });

  it('--format syslog frames every event as RFC 5424 with the verifiable event as its message', async () => {
    const r = await start(['audit', 'tail', '--format', 'syslog', '--config', config]).done;
    assert.equal(r.code, 0, r.stderr);
    const events = await store.auditEvents({ limit: 100 });
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, events.length);
    lines.forEach((line, i) => {
      const m = SYSLOG.exec(line);
      assert.ok(m, `not RFC 5424: ${line}`);
      const e = events[i]!;
      // Facility 13 (log audit); a refused credential is a notice (5), the rest informational (6).
      assert.equal(Number(m[1]), 13 * 8 + (e.type === 'auth.rejected' ? 5 : 6));
      assert.equal(m[2], e.time);
      assert.equal(m[4], 'portcullis');
      assert.equal(m[6], e.type);
      assert.equal(m[7], 'portcullis@32473');
      assert.match(m[8]!, new RegExp(` seq="${e.seq}" hash="${e.hash}"`));
      assert.deepEqual(JSON.parse(m[9]!), e);
    });
  });
});
