// `portcullis policy validate|test` as a user runs them: exit codes, file:line:column, --json.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EXIT_FIXTURE_FAILED, EXIT_INVALID, testCommand, validateCommand } from '../../src/cli/policy.ts';
import { EXAMPLE_DIR, tempPolicyDir } from './helpers/policy-dir.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((c) => c()));

function capture() {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
}

function portcullis(...args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'bin', 'portcullis.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, PORTCULLIS_CONFIG: join(ROOT, 'does-not-exist.yaml') },
    timeout: 60_000,
  });
}

describe('portcullis policy (spawned binary)', () => {
  it('validate on a broken file exits 78 and prints file:line:column', () => {
    const t = tempPolicyDir({ 'broken.cedar': '@id("a")\npermit (principal, action, resource)\nwhen { context.mfa && };\n' });
    cleanups.push(t.cleanup);
    const r = portcullis('policy', 'validate', '--dir', t.dir);
    assert.equal(r.status, EXIT_INVALID, r.stderr);
    assert.match(r.stderr, new RegExp(`${join(t.dir, 'broken.cedar').replace(/[.]/g, '\\.')}:3:23: `));
  });

  it('test --json runs the example suite and exits 0', () => {
    const r = portcullis('policy', 'test', '--dir', EXAMPLE_DIR, '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ok: boolean; total: number; failed: number; results: { policyIds: string[] }[] };
    assert.equal(out.ok, true);
    assert.equal(out.failed, 0);
    assert.ok(out.total >= 30);
    assert.ok(out.results.some((x) => x.policyIds.includes('it-team/engineers-self-serve-nonprod')));
  });
});

describe('policy commands (in process)', () => {
  it('validate lists the policies with ids and comments', () => {
    const out = capture();
    const err = capture();
    assert.equal(validateCommand({ dir: EXAMPLE_DIR }, out, err), 0);
    assert.match(out.text, /policies valid/);
    assert.match(out.text, /forbid global\/require-mfa\s+Every request and every approval needs a sign-in that passed MFA\./);
    assert.equal(err.text, '');
  });

  it('test prints each result with its deciding ids and fails on a mismatch', () => {
    const t = tempPolicyDir();
    cleanups.push(t.cleanup);
    t.write(
      'tests/zz-wrong.yaml',
      [
        'fixtures:',
        '  - name: deliberately wrong expectation',
        '    principal: { id: alice, groups: [engineers] }',
        '    target: { id: demo-pc, tags: { env: dev, customer: internal } }',
        '    expect: deny',
      ].join('\n'),
    );
    const out = capture();
    assert.equal(testCommand({ dir: t.dir }, out, capture()), EXIT_FIXTURE_FAILED);
    assert.match(out.text, /FAIL {2}tests\/zz-wrong\.yaml {2}deliberately wrong expectation\n {6}request -> allow {2}by it-team\/engineers-self-serve-nonprod\n {6}expected deny, got allow/);
    assert.match(out.text, /fixtures: \d+ passed, 1 failed/);
  });

  it('test on invalid policies exits 78 with the problem located', () => {
    const t = tempPolicyDir({ 'zz.cedar': '@id("z")\nforbid (principal, action, resource) when { context.nope };\n' });
    cleanups.push(t.cleanup);
    const err = capture();
    assert.equal(testCommand({ dir: t.dir }, capture(), err), EXIT_INVALID);
    assert.match(err.text, /zz\.cedar:2:45: .*nope/);
  });
});
