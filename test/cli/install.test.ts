// The package installs: `npm pack`, then `npm install -g` of the tarball into a temp prefix (offline, from the npm
// cache: tests use no network), and the installed `portcullis` runs. Slow (minutes), so it runs with
// PORTCULLIS_TEST_INSTALL=1 or in CI.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, tempDir } from '../helpers/broker.ts';

const enabled = process.env.PORTCULLIS_TEST_INSTALL === '1' || Boolean(process.env.CI);

test('npm pack + npm install -g of the tarball gives a working `portcullis` binary', { skip: enabled ? false : 'slow; set PORTCULLIS_TEST_INSTALL=1 (runs in CI)', timeout: 15 * 60_000 }, () => {
  const tmp = tempDir('portcullis-install-');
  try {
    const npm = (args: string[], cwd: string) => {
      const r = spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
      assert.equal(r.status, 0, `npm ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };
    npm(['pack', '--pack-destination', tmp.dir], ROOT);
    const tgz = readdirSync(tmp.dir).find((f) => /^portcullis-.*\.tgz$/.test(f));
    assert.ok(tgz, 'npm pack wrote a tarball');
    const prefix = join(tmp.dir, 'prefix');
    npm(['install', '-g', '--offline', '--prefix', prefix, join(tmp.dir, tgz)], tmp.dir);
    const bin = join(prefix, 'bin', 'portcullis');
    assert.ok(statSync(bin).mode & 0o111, 'the bin is executable');

    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: join(tmp.dir, 'xdg'), PATH: `${join(prefix, 'bin')}:${process.env.PATH}` };
    delete env.PORTCULLIS_PROFILE;
    const help = spawnSync('portcullis', ['--help'], { cwd: tmp.dir, env, encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    for (const cmd of ['login', 'logout', 'whoami', 'targets', 'open', 'ls', 'close', 'extend', 'approve', 'deny', 'serve']) assert.match(help.stdout, new RegExp(`^  ${cmd} `, 'm'));
    assert.match(help.stdout, /Exit codes \(client commands\):/);
    const open = spawnSync('portcullis', ['open', '--help'], { cwd: tmp.dir, env, encoding: 'utf8' });
    assert.match(open.stdout, /Examples:\n {2}portcullis open acme-dc01/);
    const ls = spawnSync('portcullis', ['ls'], { cwd: tmp.dir, env, encoding: 'utf8' });
    assert.equal(ls.status, 3, ls.stderr);
    assert.match(ls.stderr, /next: sign in first: portcullis login --server/);
  } finally {
    tmp.cleanup();
  }
});
