// `policy test` in CI: every fixture of policies/tests/ passes, there are at least 30, and they
// cover every action, every outcome, every context field and every example policy.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { isPortcullisError } from '../../src/errors.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { loadFixtures, runFixtures } from '../../src/policy/fixtures.ts';
import { EXAMPLE_DIR, tempPolicyDir } from './helpers/policy-dir.ts';

const CONTEXT_FIELDS = [
  'mfa',
  'authAgeSeconds',
  'durationMinutes',
  'port',
  'sourceIp',
  'sourcePrefixLength',
  'callerIp',
  'channel',
  'reason',
  'hour',
  'weekday',
  'requester',
];

const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((c) => c()));

describe('the example fixture suite', () => {
  const engine = loadPolicyEngine({ dir: EXAMPLE_DIR });
  const fixtures = loadFixtures(EXAMPLE_DIR);
  const results = runFixtures(engine, fixtures);

  it('has at least 30 fixtures and every one passes', () => {
    assert.ok(results.length >= 30, `only ${results.length} fixtures`);
    const failed = results.filter((r) => !r.ok).map((r) => `${r.file}: ${r.name}: ${r.mismatch}`);
    assert.deepEqual(failed, []);
  });

  it('covers every action and every outcome', () => {
    assert.deepEqual(new Set(results.map((r) => r.action)), new Set(['request', 'OpenPort', 'RequestPort', 'ApprovePort']));
    assert.deepEqual(new Set(results.map((r) => r.expected)), new Set(['allow', 'approval', 'deny']));
  });

  it('varies every context field in at least one fixture (not only in defaults)', () => {
    const mentioned = new Set<string>();
    const dir = join(EXAMPLE_DIR, 'tests');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml'))) {
      const doc = parseYaml(readFileSync(join(dir, f), 'utf8')) as { fixtures: { context?: Record<string, unknown> }[] };
      for (const fx of doc.fixtures) for (const k of Object.keys(fx.context ?? {})) mentioned.add(k);
    }
    // `at` sets hour and weekday through the time zone, as the broker does.
    assert.ok(mentioned.has('at'));
    assert.deepEqual(CONTEXT_FIELDS.filter((k) => !mentioned.has(k)), []);
  });

  it('shows every example policy deciding at least once', () => {
    const deciding = new Set(results.flatMap((r) => r.policyIds));
    const silent = engine.describe().filter((p) => !deciding.has(p.id)).map((p) => p.id);
    assert.deepEqual(silent, []);
  });
});

describe('the suite can fail', () => {
  it('a policy change that moves the end of business hours is caught by name', () => {
    const t = tempPolicyDir();
    cleanups.push(t.cleanup);
    const msp = readFileSync(join(t.dir, 'msp.cedar'), 'utf8');
    assert.ok(msp.includes('context.hour < 18'));
    t.write('msp.cedar', msp.replace('context.hour < 18', 'context.hour < 19'));
    const failed = runFixtures(loadPolicyEngine({ dir: t.dir }), loadFixtures(t.dir)).filter((r) => !r.ok);
    assert.deepEqual(
      failed.map((r) => [r.name, r.mismatch]),
      [
        ['18:00 is not', 'expected deny, got allow'],
        ['Friday 17:30 UTC is 18:30 in Berlin - after hours', 'expected approval, got allow'],
      ],
    );
  });

  it('a right outcome for the wrong reason fails when the fixture names its policies', () => {
    const t = tempPolicyDir();
    cleanups.push(t.cleanup);
    // A second MFA forbid under another name: outcomes stay the same, the deciding ids do not.
    t.write('zz-extra.cedar', '// Duplicate of require-mfa.\n@id("mfa-again")\nforbid (principal, action, resource) unless { context.mfa };\n');
    const failed = runFixtures(loadPolicyEngine({ dir: t.dir }), loadFixtures(t.dir)).filter((r) => !r.ok);
    assert.ok(failed.length >= 2);
    assert.ok(failed.every((r) => r.mismatch?.includes('zz-extra/mfa-again')), JSON.stringify(failed, null, 1));
  });

  it('a misspelt key in a fixture file is an error, not an ignored line', () => {
    const t = tempPolicyDir();
    cleanups.push(t.cleanup);
    t.write(
      'tests/typo.yaml',
      'fixtures:\n  - name: typo\n    principal: { id: a }\n    target: { id: b }\n    expected: allow\n',
    );
    assert.throws(
      () => loadFixtures(t.dir),
      (e: unknown) => isPortcullisError(e, 'POLICY_INVALID') && /typo\.yaml/.test(e.message) && /expected/.test(e.message),
    );
  });

  it('"approval" with an explicit action is refused', () => {
    const t = tempPolicyDir();
    cleanups.push(t.cleanup);
    t.write(
      'tests/bad.yaml',
      'fixtures:\n  - name: bad\n    action: OpenPort\n    principal: { id: a }\n    target: { id: b }\n    expect: approval\n',
    );
    assert.throws(() => loadFixtures(t.dir), /with an explicit action expect allow or deny/);
  });
});
