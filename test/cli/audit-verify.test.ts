// `portcullis audit verify` on a real JSONL trail: intact → exit 0; altered, reordered or truncated → exit 1 naming the link.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsonlSink } from '../../src/audit/jsonl.ts';
import { openDb } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import { ROOT, tempDir } from '../helpers/broker.ts';

function verify(file: string) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'audit', 'verify', '--file', file], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('audit verify names the first broken link of an altered, reordered or truncated JSONL trail', async () => {
  const tmp = tempDir();
  try {
    const db = await openDb(`sqlite:${join(tmp.dir, 's.db')}`);
    const store = new Store(db);
    const file = join(tmp.dir, 'audit.jsonl');
    const sink = new JsonlSink(file);
    store.onAudit((e) => sink.write(e));
    for (let i = 0; i < 5; i++) await store.audit({ type: 'grant.requested', actor: `user${i}`, reason: `T-${i}` });
    await db.close();

    const ok = verify(file);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /OK: 5 events/);

    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const altered = join(tmp.dir, 'altered.jsonl');
    writeFileSync(altered, [...lines.slice(0, 2), lines[2]!.replace('T-2', 'T-9'), ...lines.slice(3)].join('\n') + '\n');
    let r = verify(altered);
    assert.equal(r.code, 1);
    assert.match(r.out, /BROKEN: first broken link at seq 3 \(line 3\): hash does not match/);

    const reordered = join(tmp.dir, 'reordered.jsonl');
    writeFileSync(reordered, [lines[0], lines[2], lines[1], ...lines.slice(3)].join('\n') + '\n');
    r = verify(reordered);
    assert.equal(r.code, 1);
    assert.match(r.out, /at seq 3 \(line 2\): expected seq 2, found 3/);

    const dropped = join(tmp.dir, 'dropped.jsonl');
    writeFileSync(dropped, [lines[0], ...lines.slice(2)].join('\n') + '\n');
    assert.equal(verify(dropped).code, 1);

    assert.equal(verify(join(tmp.dir, 'missing.jsonl')).code, 2);
  } finally {
    tmp.cleanup();
  }
});
