// The engine's memo of maxDuration: what it leaves out of the key (the target's id unless a policy
// names one, the exact sign-in age within a band of the policies' thresholds) never changes an
// answer, and a reload forgets everything.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { maxDuration } from '../../src/policy/max-duration.ts';
import { ageBand, setFacts } from '../../src/policy/memo.ts';
import type { PolicyEngine, PolicyQuery } from '../../src/policy/port.ts';
import { policySetTextToParts, policyToJson } from '@cedar-policy/cedar-wasm/nodejs';
import { engineerQuery, EXAMPLE_DIR, tempPolicyDir } from './helpers/policy-dir.ts';

const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((c) => c()));

/** The same engine without remember(): every call evaluates every candidate. */
const uncached = (e: PolicyEngine): PolicyEngine => ({ decide: (q, o) => e.decide(q, o), describe: () => e.describe() });

const facts = (...texts: string[]) =>
  setFacts(texts.flatMap((t) => {
    const parts = policySetTextToParts(t);
    return parts.type === 'success' ? parts.policies : [t];
  }).map((t) => {
    const j = policyToJson(t);
    assert.equal(j.type, 'success');
    return j.type === 'success' ? j.json : null;
  }));

// Sign-in age bands: fresh (<= 600 s) opens at once for 2 h; up to an hour asks; exactly 1234 s is forbidden.
const AGE_POLICIES = `
@id("fresh-opens")
permit (principal in Portcullis::Group::"engineers", action == Portcullis::Action::"OpenPort", resource)
when { context.authAgeSeconds <= 600 && context.durationMinutes <= 120 };

@id("recent-asks")
permit (principal in Portcullis::Group::"engineers", action == Portcullis::Action::"RequestPort", resource)
when { 3600 > context.authAgeSeconds && context.durationMinutes <= 480 };

@id("not-exactly-1234")
forbid (principal, action, resource) when { context.authAgeSeconds == 1234 };
`;

// A target named by id gets more; every other target with the same tags does not.
const NAMED_TARGET = `
@id("special-box")
permit (principal, action == Portcullis::Action::"OpenPort", resource == Portcullis::Target::"special")
when { context.durationMinutes <= 480 };
`;

describe('setFacts', () => {
  it('collects the numbers the sign-in age is compared with, on either side', () => {
    assert.deepEqual(facts(AGE_POLICIES), { namesTarget: false, ageThresholds: [600, 1234, 3600] });
  });

  it('gives up banding when the age is used any other way, or the context as a whole', () => {
    assert.equal(facts('permit (principal, action, resource) when { context.authAgeSeconds + 60 > 600 };').ageThresholds, null);
    assert.equal(facts('permit (principal, action, resource) when { context.authAgeSeconds > context.durationMinutes };').ageThresholds, null);
    assert.equal(facts('permit (principal, action, resource) when { (if context.mfa then context else context).authAgeSeconds > 5 };').ageThresholds, null);
  });

  it('notices a Target entity named in the scope or in a condition, and only that', () => {
    assert.equal(facts(NAMED_TARGET).namesTarget, true);
    assert.equal(facts('permit (principal, action, resource) when { resource == Portcullis::Target::"x" };').namesTarget, true);
    assert.equal(facts('permit (principal, action, resource in Portcullis::TargetGroup::"env:prod");').namesTarget, false);
    assert.equal(facts(`permit (principal == Portcullis::User::"u", action, resource);`).namesTarget, false);
  });

  it('bands: two ages with the same band compare alike with every threshold', () => {
    const t = [600, 1234, 3600];
    assert.equal(ageBand(0, t), ageBand(599, t));
    assert.notEqual(ageBand(600, t), ageBand(599, t));
    assert.notEqual(ageBand(600, t), ageBand(601, t));
    assert.equal(ageBand(601, t), ageBand(1233, t));
    assert.notEqual(ageBand(1234, t), ageBand(1233, t));
    assert.equal(ageBand(3601, t), ageBand(Number.MAX_SAFE_INTEGER, t));
    assert.notEqual(ageBand(5, null), ageBand(6, null));
  });
});

describe('the maxDuration memo', () => {
  it('answers exactly as uncached evaluation across every band edge, in either order', () => {
    const p = tempPolicyDir({ 'ages.cedar': AGE_POLICIES }, { examples: false });
    cleanups.push(p.cleanup);
    const engine = loadPolicyEngine({ dir: p.dir });
    const plain = uncached(engine);
    const ages = [0, 1, 599, 600, 601, 1000, 1233, 1234, 1235, 3599, 3600, 3601, 86_400, Number.MAX_SAFE_INTEGER];
    const seen = new Set<string>();
    for (const order of [ages, [...ages].reverse()]) {
      for (const authAgeSeconds of order) {
        const q = engineerQuery({ authAgeSeconds });
        const want = maxDuration(plain, q);
        assert.deepEqual(maxDuration(engine, q), want, `age ${authAgeSeconds}`);
        seen.add(`${want.minutes}/${want.approval}/${want.immediateMinutes}`);
      }
    }
    assert.ok(seen.size >= 3, 'the ages above reach different answers');
    // 7 bands (below 600, =600, 601-1233, =1234, 1235-3599, =3600, above) for 14 ages: the memo is used.
    assert.equal(engine.memoSize, 7);
  });

  it('answers for the target asked about when a policy names a Target id', () => {
    const p = tempPolicyDir({ 'named.cedar': NAMED_TARGET });
    cleanups.push(p.cleanup);
    const engine = loadPolicyEngine({ dir: p.dir });
    const plain = uncached(engine);
    const on = (id: string): Omit<PolicyQuery, 'action'> => ({ ...engineerQuery({}, ['sales']), target: { id, tags: { env: 'dev', customer: 'internal' }, ports: [3389] } });
    for (const id of ['other', 'special', 'other', 'special']) assert.deepEqual(maxDuration(engine, on(id)), maxDuration(plain, on(id)), id);
    assert.equal(maxDuration(engine, on('special')).immediateMinutes, 480);
    assert.equal(maxDuration(engine, on('other')).minutes, 0);
  });

  it('shares one answer between targets of the same tags and ports when no policy names one', () => {
    const engine = loadPolicyEngine({ dir: EXAMPLE_DIR });
    const on = (id: string): Omit<PolicyQuery, 'action'> => ({ ...engineerQuery(), target: { id, tags: { env: 'dev', customer: 'internal' }, ports: [3389] } });
    const a = maxDuration(engine, on('pc-1'));
    const b = maxDuration(engine, on('pc-2'));
    assert.deepEqual(a, b);
    assert.equal(engine.memoSize, 1);
    // Another port list is another key.
    maxDuration(engine, { ...on('pc-3'), target: { id: 'pc-3', tags: { env: 'dev', customer: 'internal' }, ports: [22] } });
    assert.equal(engine.memoSize, 2);
  });

  it('is emptied by a reload, so the new policies answer', () => {
    const p = tempPolicyDir({ 'ages.cedar': AGE_POLICIES }, { examples: false });
    cleanups.push(p.cleanup);
    const engine = loadPolicyEngine({ dir: p.dir });
    assert.equal(maxDuration(engine, engineerQuery()).immediateMinutes, 120);
    assert.equal(engine.memoSize, 1);
    p.write('lockdown.cedar', '@id("lockdown")\nforbid (principal, action, resource);\n');
    engine.reload();
    assert.equal(engine.memoSize, 0);
    assert.deepEqual(maxDuration(engine, engineerQuery()), { minutes: 0, approval: false, immediateMinutes: 0, policyIds: [] });
  });

  it('keeps a malformed context out of the memo: its deny does not stand for good queries', () => {
    const engine = loadPolicyEngine({ dir: EXAMPLE_DIR });
    assert.equal(maxDuration(engine, engineerQuery({ authAgeSeconds: Number.NaN })).minutes, 0);
    assert.equal(engine.memoSize, 0);
    assert.equal(maxDuration(engine, engineerQuery()).minutes, 480);
  });
});
