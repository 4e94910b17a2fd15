// yamllint over infra/, shellcheck over the shell scripts that ship (.ci/run, infra/**/*.sh).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/broker.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { filesUnder, INFRA, read, which } from './helpers.ts';

describe('infra lint', () => {
  it('yamllint finds nothing in infra/ (config: infra/.yamllint.yaml)', (t) => {
    const yamllint = which('yamllint');
    if (!requireOrSkip(t, yamllint !== undefined, 'yamllint not found; install the Debian package yamllint')) return;
    const r = spawnSync(yamllint!, ['--strict', '-f', 'parsable', '-c', join(INFRA, '.yamllint.yaml'), INFRA], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // Live: the same settings report a real mistake.
    const bad = spawnSync(yamllint!, ['-f', 'parsable', '-c', join(INFRA, '.yamllint.yaml'), '-'], { input: 'a: 1\na: 2\n', encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
  });

  it('shellcheck finds nothing in the shell scripts (.ci/run and any *.sh under infra/)', (t) => {
    const shellcheck = which('shellcheck');
    if (!requireOrSkip(t, shellcheck !== undefined, 'shellcheck not found; install the Debian package shellcheck')) return;
    const scripts = [join(ROOT, '.ci/run'), ...filesUnder(INFRA, (n) => n.endsWith('.sh'))];
    for (const f of scripts) assert.match(read(f), /^#!\/usr\/bin\/env bash|^#!\/bin\/(ba)?sh/, `${f} has a shebang`);
    const r = spawnSync(shellcheck!, ['-S', 'style', ...scripts], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});
