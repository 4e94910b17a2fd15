// `portcullis serve` with no config at all: SQLite under ./data, the development IdP, simulated
// firewalls, all said plainly in the banner and in /readyz.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { api, ROOT, tempDir } from '../helpers/broker.ts';
import { IN_CI } from '../helpers/env.ts';
import { spawn } from 'node:child_process';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

test('with no config the broker serves 127.0.0.1:8080 on SQLite, the development IdP and SIMULATED firewalls', async (t) => {
  // The embedded default listens on 8080 by design; a developer's running `npm start` holds it.
  if (!(await portFree(8080))) {
    if (IN_CI) throw new Error('port 8080 is taken on the CI machine');
    t.skip('port 8080 is in use (is `npm start` running?)');
    return;
  }
  const tmp = tempDir();
  const env: NodeJS.ProcessEnv = { ...process.env, PORTCULLIS_LOG: 'info' };
  delete env.PORTCULLIS_CONFIG;
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(ROOT, 'src/cli/main.ts'), 'serve'], { cwd: tmp.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner in 60 s:\n${out}`)), 60_000);
      child.stdout.on('data', () => {
        if (/health: /.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}:\n${out}`)));
    });
    assert.match(out, /listening on http:\/\/127\.0\.0\.1:8080/);
    assert.match(out, /store:\s+sqlite:\.\/data\/portcullis\.db/);
    assert.match(out, /DEVELOPMENT IdP/);
    assert.match(out, /SIMULATED firewall/);
    for (const user of ['alice', 'bob', 'tess', 'nina']) assert.match(out, new RegExp(`\\b${user}\\b.*${user}-demo`));
    assert.match(out, /\/auth\/login/, 'says how to sign in on the web');
    assert.match(out, /portcullis login --server http:\/\/127\.0\.0\.1:8080/, 'says how to get a token');
    assert.ok(existsSync(join(tmp.dir, 'data', 'portcullis.db')));

    const ready = await api('http://127.0.0.1:8080', '/readyz');
    assert.equal(ready.status, 200);
    assert.match(ready.body.warning, /SIMULATED FIREWALL/);
    assert.equal(ready.body.checks['firewall:simulated:demo-pc'].simulated, true);
    const discovery = await api('http://127.0.0.1:8080', '/idp/.well-known/openid-configuration');
    assert.equal(discovery.body.issuer, 'http://127.0.0.1:8080/idp');
    assert.equal((await api('http://127.0.0.1:8080', '/api/v1/me')).body.error.code, 'AUTH_REQUIRED');
  } finally {
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
    tmp.cleanup();
  }
});
