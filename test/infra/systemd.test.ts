// infra/systemd: the gateway unit verified by systemd-analyze and read as a scanner would: CAP_NET_ADMIN only,
// ProtectSystem=strict, NoNewPrivileges, a state directory, and systemd's own exposure score.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { requireOrSkip } from '../helpers/env.ts';
import { INFRA, read, which } from './helpers.ts';

const UNIT = join(INFRA, 'systemd/portcullis.service');

/** Key → every value it is given in [Service] (systemd allows repeats). */
function service(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) section = sec[1]!;
    else if (section === 'Service') {
      const i = line.indexOf('=');
      out.set(line.slice(0, i), [...(out.get(line.slice(0, i)) ?? []), line.slice(i + 1)]);
    }
  }
  return out;
}

describe('infra/systemd', () => {
  const s = service(read(UNIT));
  const one = (k: string) => s.get(k)?.at(-1);

  it('grants CAP_NET_ADMIN and nothing else, forbids new privileges, and runs as its own user', () => {
    assert.deepEqual(s.get('CapabilityBoundingSet'), ['CAP_NET_ADMIN']);
    assert.deepEqual(s.get('AmbientCapabilities'), ['CAP_NET_ADMIN']);
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('User'), 'portcullis');
    assert.equal(s.get('PrivateNetwork'), undefined, 'nft must see the host network');
  });

  it('a read-only system (ProtectSystem=strict) with one state directory, private /tmp and no home', () => {
    assert.equal(one('ProtectSystem'), 'strict');
    assert.equal(one('StateDirectory'), 'portcullis');
    assert.equal(one('StateDirectoryMode'), '0700');
    assert.equal(one('ProtectHome'), 'yes');
    assert.equal(one('PrivateTmp'), 'yes');
    assert.equal(s.get('ReadWritePaths'), undefined, 'nothing writable beyond the state directory');
    assert.match(one('ExecStart')!, /dist\/cli\/main\.js serve$/);
    assert.match(one('ExecStartPre')!, /dist\/cli\/main\.js migrate$/);
    assert.ok(!read(UNIT).match(/^Environment=.*(SECRET|PASSWORD|TOKEN)=/m), 'secrets come from the EnvironmentFile, not the unit');
  });

  it('systemd-analyze verify accepts the unit, and its exposure score is at most 2.0 ("OK")', (t) => {
    const analyze = which('systemd-analyze');
    if (!requireOrSkip(t, analyze !== undefined, 'systemd-analyze not found; install the Debian package systemd')) return;
    const v = spawnSync(analyze!, ['verify', UNIT], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stdout + v.stderr);
    // `verify` warns about unknown keys without failing; a clean unit prints nothing about itself.
    assert.doesNotMatch(v.stdout + v.stderr, /portcullis\.service:\d+:/);
    const sec = spawnSync(analyze!, ['security', '--offline=yes', '--no-pager', UNIT], { encoding: 'utf8' });
    assert.equal(sec.status, 0, sec.stderr);
    const m = /Overall exposure level for portcullis\.service: (\d+\.\d+)/.exec(sec.stdout);
    assert.ok(m, sec.stdout.slice(-500));
    assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]}`);
  });
});
