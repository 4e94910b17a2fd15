// The Cedar engine: decisions with file-qualified ids, fail-closed evaluation, and reloads that
// either take effect whole or leave the running set untouched.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { isPortcullisError, type PortcullisError } from '../../src/errors.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { decideRequest } from '../../src/policy/decision.ts';
import { engineerQuery, EXAMPLE_DIR, tempPolicyDir } from './helpers/policy-dir.ts';

const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((c) => c()));

describe('decide', () => {
  const engine = loadPolicyEngine({ dir: EXAMPLE_DIR });

  it('lets an engineer with MFA open a dev machine and names the permit, file-qualified', () => {
    const d = engine.decide({ ...engineerQuery({ durationMinutes: 120 }), action: 'OpenPort' });
    assert.deepEqual(d, { allowed: true, policyIds: ['it-team/engineers-self-serve-nonprod'], errors: [] });
  });

  it('names the forbid that refused', () => {
    const d = engine.decide({ ...engineerQuery({ mfa: false }), action: 'OpenPort' });
    assert.deepEqual(d, { allowed: false, policyIds: ['global/require-mfa'], errors: [] });
  });

  it('maps a user with no permit to a deny with no ids', () => {
    const d = engine.decide({ ...engineerQuery({}, ['sales']), action: 'OpenPort' });
    assert.deepEqual(d, { allowed: false, policyIds: [], errors: [] });
  });

  it('gives the request decision: allow, approval, deny', () => {
    assert.equal(decideRequest(engine, engineerQuery({ durationMinutes: 120 })).outcome, 'allow');
    assert.equal(decideRequest(engine, engineerQuery({ durationMinutes: 121 })).outcome, 'approval');
    const deny = decideRequest(engine, engineerQuery({ durationMinutes: 60, port: 22 }));
    assert.deepEqual(deny, { outcome: 'deny', policyIds: ['global/declared-ports-only'], errors: [] });
  });

  it('refuses a malformed context with a deny and a named error instead of throwing', () => {
    const d = engine.decide({ ...engineerQuery({ sourceIp: 'not-an-ip' }), action: 'OpenPort' });
    assert.equal(d.allowed, false);
    assert.match(d.errors.join(), /sourceIp/);
    const e = engine.decide({ ...engineerQuery({ durationMinutes: 1.5 }), action: 'OpenPort' });
    assert.equal(e.allowed, false);
    assert.match(e.errors.join(), /durationMinutes must be an integer/);
  });

  it('describes every policy with its location and its comment', () => {
    const all = engine.describe();
    const mfa = all.find((p) => p.id === 'global/require-mfa');
    assert.match(mfa!.file, /global\.cedar:\d+:1$/);
    assert.match(mfa!.comment, /MFA/);
    assert.ok(all.every((p) => p.comment.length > 0), 'every example policy starts with a comment of its intent');
  });
});

describe('an evaluation error is never an allow', () => {
  // Cedar skips a policy whose evaluation fails and may still allow: here the forbid overflows
  // for any port above 1 and the permit would allow everything.
  const t = tempPolicyDir(
    {
      'x.cedar': [
        '// Permits everything, so only the forbid below can refuse.',
        '@id("everything")',
        'permit (principal, action, resource);',
        '',
        '// Overflows 64-bit arithmetic at evaluation time, which the validator cannot see.',
        '@id("overflowing-forbid")',
        'forbid (principal, action, resource)',
        'when { context.port * 9223372036854775807 > 0 };',
      ].join('\n'),
    },
    { examples: false },
  );
  cleanups.push(t.cleanup);
  const engine = loadPolicyEngine({ dir: t.dir });

  it('denies and reports the failing policy', () => {
    const d = engine.decide({ ...engineerQuery(), action: 'OpenPort' });
    assert.equal(d.allowed, false);
    assert.deepEqual(d.policyIds, ['x/everything'], 'Cedar itself would have allowed by this permit');
    assert.equal(d.errors.length, 1);
    assert.match(d.errors[0]!, /^x\/overflowing-forbid: .*overflow/);
  });

  it('allows when the same forbid evaluates cleanly (the test can tell the difference)', () => {
    const d = engine.decide({ ...engineerQuery({ port: 1 }), action: 'OpenPort' });
    assert.deepEqual(d, { allowed: false, policyIds: ['x/overflowing-forbid'], errors: [] });
    const q = engineerQuery({ port: 0 });
    assert.deepEqual(engine.decide({ ...q, action: 'OpenPort' }), { allowed: true, policyIds: ['x/everything'], errors: [] });
  });
});

describe('reload', () => {
  it('takes a valid new set at once', () => {
    const t = tempPolicyDir();
    cleanups.push(t.cleanup);
    const engine = loadPolicyEngine({ dir: t.dir });
    assert.equal(engine.decide({ ...engineerQuery(), action: 'OpenPort' }).allowed, true);
    t.write('zz-lockdown.cedar', '// Lock everything down.\n@id("lockdown")\nforbid (principal, action, resource);\n');
    const r = engine.reload();
    assert.deepEqual(r, { generation: 2, policies: engine.describe().length });
    assert.deepEqual(engine.decide({ ...engineerQuery(), action: 'OpenPort' }), {
      allowed: false,
      policyIds: ['zz-lockdown/lockdown'],
      errors: [],
    });
  });

  it('keeps the old set when the new one does not validate, and says so', () => {
    const t = tempPolicyDir();
    cleanups.push(t.cleanup);
    const engine = loadPolicyEngine({ dir: t.dir });
    const before = engine.decide({ ...engineerQuery(), action: 'OpenPort' });
    const described = engine.describe();
    assert.equal(before.allowed, true);

    // A lockdown that would change the decision, plus a schema error in the same reload.
    t.write('zz-lockdown.cedar', '// Lock everything down.\n@id("lockdown")\nforbid (principal, action, resource);\n');
    t.write('zz-typo.cedar', '// Typo.\n@id("typo")\nforbid (principal, action, resource) when { context.mfaa };\n');
    let thrown: PortcullisError | undefined;
    try {
      engine.reload();
    } catch (e) {
      if (isPortcullisError(e)) thrown = e;
      else throw e;
    }
    assert.equal(thrown?.code, 'POLICY_INVALID');
    assert.match(thrown!.message, /reload .* failed; keeping the previous set of \d+ policies/);
    assert.match(thrown!.message, /zz-typo\.cedar:3:45: /);
    assert.equal(thrown!.details?.['keptPrevious'], true);

    assert.deepEqual(engine.decide({ ...engineerQuery(), action: 'OpenPort' }), before);
    assert.deepEqual(engine.describe(), described);
    assert.equal(engine.generation, 1);

    // Fixing the typo lets the lockdown through: the failed reload had really been refused.
    t.write('zz-typo.cedar', '// Fixed.\n@id("typo")\nforbid (principal, action, resource) when { !context.mfa };\n');
    engine.reload();
    assert.equal(engine.decide({ ...engineerQuery(), action: 'OpenPort' }).allowed, false);
  });

  it('keeps the old set after repeated failed reloads and across slot reuse', () => {
    const t = tempPolicyDir();
    cleanups.push(t.cleanup);
    const engine = loadPolicyEngine({ dir: t.dir });
    t.write('broken.cedar', '@id("b")\npermit (principal, action, resource) when {\n');
    for (let i = 0; i < 3; i++) assert.throws(() => engine.reload(), { code: 'POLICY_INVALID' });
    assert.equal(engine.decide({ ...engineerQuery(), action: 'OpenPort' }).allowed, true);
  });

  it('keeps two engines apart (Cedar caches preparsed sets per thread by name)', () => {
    const t = tempPolicyDir({ 'zz-lockdown.cedar': '// Lock.\n@id("lockdown")\nforbid (principal, action, resource);\n' });
    cleanups.push(t.cleanup);
    const open = loadPolicyEngine({ dir: EXAMPLE_DIR });
    const locked = loadPolicyEngine({ dir: t.dir });
    assert.equal(open.decide({ ...engineerQuery(), action: 'OpenPort' }).allowed, true);
    assert.equal(locked.decide({ ...engineerQuery(), action: 'OpenPort' }).allowed, false);
  });
});
