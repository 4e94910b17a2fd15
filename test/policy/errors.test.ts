// Policy problems are reported as file:line:column, counted in characters, for syntax errors,
// schema errors, missing or duplicate ids and a broken schema.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isPortcullisError } from '../../src/errors.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { positionAt } from '../../src/policy/location.ts';
import { formatProblem, readPolicyDir } from '../../src/policy/source.ts';
import { tempPolicyDir } from './helpers/policy-dir.ts';

const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((c) => c()));
function dir(files: Record<string, string>) {
  const t = tempPolicyDir(files, { examples: false });
  cleanups.push(t.cleanup);
  return t;
}

function problems(d: string): string[] {
  const got = readPolicyDir(d);
  assert.equal(got.ok, false, 'expected problems');
  return got.ok ? [] : got.problems.map(formatProblem);
}

describe('policy problems carry file:line:column', () => {
  it('a syntax error points at the offending token', () => {
    const t = dir({
      'broken.cedar': '// An incomplete condition.\n@id("a")\npermit (principal, action, resource)\nwhen { context.mfa && };\n',
    });
    const [first, ...rest] = problems(t.dir);
    assert.equal(rest.length, 0);
    // Line 4, column 23 is the `}` after `&&`.
    assert.match(first!, new RegExp(`^${escape(join(t.dir, 'broken.cedar'))}:4:23: .*unexpected token \`\\}\``));
  });

  it('a schema error points at the unknown attribute, columns counted in characters not bytes', () => {
    const t = dir({
      'ok.cedar': '@id("fine")\npermit (principal, action == Portcullis::Action::"OpenPort", resource);\n',
      'typo.cedar': [
        '// Ünïcödé in a comment must not shift anything.',
        '@id("first")',
        'permit (principal, action == Portcullis::Action::"OpenPort", resource);',
        '',
        '@id("typo")',
        'permit (principal, action == Portcullis::Action::"OpenPort", resource)',
        'when { "café" == "café" && context.nope == 1 };',
        '',
      ].join('\n'),
    });
    const all = problems(t.dir);
    assert.equal(all.length, 1, all.join('\n'));
    // "café" is 5 bytes but 4 characters twice over: bytes would say column 30.
    assert.match(all[0]!, new RegExp(`^${escape(join(t.dir, 'typo.cedar'))}:7:28: `));
    assert.match(all[0]!, /attribute `nope` in context/);
    // The author's @id, not Cedar's positional "policy1".
    assert.match(all[0]!, /`typo`/);
  });

  it('a type error in a condition is a schema error too', () => {
    const t = dir({ 'types.cedar': '@id("t")\nforbid (principal, action, resource)\nwhen { context.hour == "ten" };\n' });
    const [p] = problems(t.dir);
    assert.match(p!, /types\.cedar:3:8: /);
  });

  it('a policy without @id and a duplicate @id are refused where they start', () => {
    const t = dir({
      'ids.cedar': [
        'permit (principal, action, resource) when { context.mfa };',
        '@id("x")',
        'permit (principal, action, resource) when { context.mfa };',
        '  @id("x") permit (principal, action, resource) when { context.mfa };',
      ].join('\n'),
    });
    const all = problems(t.dir);
    assert.equal(all.length, 2, all.join('\n'));
    assert.match(all[0]!, /ids\.cedar:1:1: policy has no @id/);
    assert.match(all[1]!, /ids\.cedar:4:3: duplicate @id\("x"\), first used at line 2/);
  });

  it('a broken schema file is reported at its own line and column', () => {
    const t = dir({ 'p.cedar': '@id("p")\npermit (principal, action, resource);\n' });
    t.write('schema.cedarschema', 'namespace Portcullis {\n  entity User in [Group\n}\n');
    const all = problems(t.dir);
    assert.match(all[0]!, /schema\.cedarschema:3:1: .*unexpected token `\}`/);
  });

  it('an empty directory is a problem, not a set that silently denies everything', () => {
    const t = dir({});
    assert.match(problems(t.dir)[0]!, /no \*\.cedar policy files/);
  });

  it('loadPolicyEngine throws POLICY_INVALID whose message lists each problem', () => {
    const t = dir({ 'broken.cedar': '@id("a")\npermit (principal, action, resource)\nwhen { context.mfa && };\n' });
    assert.throws(
      () => loadPolicyEngine({ dir: t.dir }),
      (e: unknown) => isPortcullisError(e, 'POLICY_INVALID') && e.message.includes('broken.cedar:3:23:'),
    );
  });
});

describe('positionAt', () => {
  it('counts lines and characters from UTF-8 byte offsets', () => {
    const text = 'ab\nçé x\n🙂y';
    assert.deepEqual(positionAt(text, 0), { line: 1, column: 1 });
    assert.deepEqual(positionAt(text, Buffer.byteLength('ab\nçé ')), { line: 2, column: 4 });
    assert.deepEqual(positionAt(text, Buffer.byteLength('ab\nçé x\n🙂')), { line: 3, column: 2 });
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
