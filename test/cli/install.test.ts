// The package installs: `npm pack`, the tarball unpacked, then `npm install -g` of it into a temp prefix, and the
// installed `portcullis` runs. Nothing comes from the registry or from an earlier session: npm gets an empty cache and
// no user config of its own, runs --offline, and the package's production dependencies are the project's own
// node_modules (linked in as npm would have placed them), so npm has nothing to resolve. Slow, so it runs with
// PORTCULLIS_TEST_INSTALL=1 or in CI.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { ROOT, tempDir } from '../helpers/broker.ts';

const enabled = process.env.PORTCULLIS_TEST_INSTALL === '1' || Boolean(process.env.CI);

test('npm pack + npm install -g of the tarball gives a working `portcullis` binary', { skip: enabled ? false : 'slow; set PORTCULLIS_TEST_INSTALL=1 (runs in CI)', timeout: 15 * 60_000 }, () => {
  const tmp = tempDir('portcullis-install-');
  try {
    const npmEnv: NodeJS.ProcessEnv = {
      ...process.env,
      npm_config_cache: join(tmp.dir, 'npm-cache'),
      npm_config_userconfig: join(tmp.dir, 'npmrc'),
      npm_config_offline: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
    };
    const npm = (args: string[], cwd: string) => {
      const r = spawnSync('npm', args, { cwd, encoding: 'utf8', env: npmEnv });
      assert.equal(r.status, 0, `npm ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };
    npm(['pack', '--pack-destination', tmp.dir], ROOT);
    const tgz = readdirSync(tmp.dir).find((f) => /^portcullis-.*\.tgz$/.test(f));
    assert.ok(tgz, 'npm pack wrote a tarball');
    const pkg = join(tmp.dir, 'unpacked');
    mkdirSync(pkg);
    const untar = spawnSync('tar', ['xzf', join(tmp.dir, tgz), '-C', pkg, '--strip-components=1'], { encoding: 'utf8' });
    assert.equal(untar.status, 0, untar.stderr);
    linkProductionDependencies(pkg);
    const prefix = join(tmp.dir, 'prefix');
    npm(['install', '-g', '--offline', '--prefix', prefix, pkg], tmp.dir);
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

/**
 * Links every top-level production package of the project's lockfile into `pkg/node_modules`, where `npm ci
 * --omit=dev` would have put it; nested copies come along inside their parents. Dev-only packages stay out, so a
 * runtime import of a dev dependency fails here as it would for a user.
 */
function linkProductionDependencies(pkg: string): void {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  for (const [path, entry] of Object.entries(lock.packages)) {
    const name = /^node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(path)?.[1];
    if (!name || entry.dev) continue;
    const source = join(ROOT, 'node_modules', name);
    // Optional packages for other platforms are in the lockfile but not installed.
    if (!existsSync(source)) continue;
    const target = join(pkg, 'node_modules', name);
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync(source, target);
  }
}
