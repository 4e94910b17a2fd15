// The longest duration a user may ask for on a target, and whether it needs an approver.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UserId } from '../../src/domain/index.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { candidateDurations, maxDuration } from '../../src/policy/max-duration.ts';
import type { PolicyDecision, PolicyEngine, PolicyQuery } from '../../src/policy/port.ts';
import { engineerQuery, EXAMPLE_DIR } from './helpers/policy-dir.ts';

const engine = loadPolicyEngine({ dir: EXAMPLE_DIR });

describe('maxDuration with the example policies', () => {
  it('engineer on a dev machine: 2 h at once, 8 h with approval', () => {
    const got = maxDuration(engine, engineerQuery());
    assert.deepEqual(got, { minutes: 480, approval: true, immediateMinutes: 120, policyIds: ['it-team/engineers-request-internal'] });
  });

  it('engineer on production: nothing at once, 4 h with approval (the global cap)', () => {
    const q = engineerQuery();
    q.target = { id: 'demo-dc01', tags: { env: 'prod', customer: 'internal' }, ports: [3389] };
    assert.deepEqual(maxDuration(engine, q), {
      minutes: 240,
      approval: true,
      immediateMinutes: 0,
      policyIds: ['it-team/engineers-request-internal'],
    });
  });

  it('a grants.maxDuration cap below the policy limit wins, and the cap itself is a candidate', () => {
    assert.deepEqual(maxDuration(engine, engineerQuery(), { capMinutes: 90 }), {
      minutes: 90,
      approval: false,
      immediateMinutes: 90,
      policyIds: ['it-team/engineers-self-serve-nonprod'],
    });
  });

  it('MSP technician in business hours vs. on Saturday', () => {
    const tech = (weekday: string): Omit<PolicyQuery, 'action'> => ({
      principal: { sub: 'tom' as UserId, groups: ['msp-technicians', 'msp-customer-acme'], mfa: true, amr: [] },
      target: { id: 'acme-ws07', tags: { customer: 'acme', env: 'dev' }, ports: [3389] },
      context: { ...engineerQuery().context, weekday, sourceIp: '198.51.100.20/32', callerIp: '198.51.100.20', reason: 'T-4411' },
    });
    assert.deepEqual(
      [maxDuration(engine, tech('Tuesday')), maxDuration(engine, tech('Saturday'))].map((l) => [l.minutes, l.approval, l.immediateMinutes]),
      [
        [240, true, 120],
        [240, true, 0],
      ],
    );
  });

  it('a preview without a reason leaves out the forbids about the reason (technicians-cite-ticket), and only those', () => {
    const q: Omit<PolicyQuery, 'action'> = {
      principal: { sub: 'tom' as UserId, groups: ['msp-technicians', 'msp-customer-acme'], mfa: true, amr: [] },
      target: { id: 'acme-ws07', tags: { customer: 'acme', env: 'dev' }, ports: [3389] },
      context: { ...engineerQuery().context, weekday: 'Tuesday', sourceIp: '198.51.100.20/32', callerIp: '198.51.100.20', reason: '' },
    };
    assert.equal(maxDuration(engine, q).minutes, 0, 'an empty reason cites no ticket');
    assert.deepEqual([maxDuration(engine, q, { decide: { reasonUnknown: true } })].map((l) => [l.minutes, l.approval, l.immediateMinutes]), [[240, true, 120]]);
    // Other forbids still hold: without MFA nothing is permitted, reason or not.
    assert.equal(maxDuration(engine, { ...q, context: { ...q.context, mfa: false } }, { decide: { reasonUnknown: true } }).minutes, 0);
  });

  it('nothing permitted: 0 minutes', () => {
    assert.deepEqual(maxDuration(engine, engineerQuery({ mfa: false })), { minutes: 0, approval: false, immediateMinutes: 0, policyIds: [] });
  });
});

describe('maxDuration semantics', () => {
  // A hand-written engine: allowed set per action, so non-monotonic rules can be expressed.
  const fake = (open: number[], request: number[]): PolicyEngine & { calls: number } => {
    const e = {
      calls: 0,
      decide(q: PolicyQuery): PolicyDecision {
        e.calls++;
        const ok = (q.action === 'OpenPort' ? open : request).includes(q.context.durationMinutes);
        return { allowed: ok, policyIds: ok ? [`${q.action}-${q.context.durationMinutes}`] : [], errors: [] };
      },
      describe: () => [],
    };
    return e;
  };

  it('evaluates every candidate: a rule that permits exactly 30 minutes is found', () => {
    const got = maxDuration(fake([30], []), engineerQuery());
    assert.deepEqual(got, { minutes: 30, approval: false, immediateMinutes: 30, policyIds: ['OpenPort-30'] });
  });

  it('approval only when the longest permitted duration is a request, not an open', () => {
    assert.deepEqual(maxDuration(fake([5, 15], [5, 15, 60]), engineerQuery()), {
      minutes: 60,
      approval: true,
      immediateMinutes: 15,
      policyIds: ['RequestPort-60'],
    });
    assert.deepEqual(maxDuration(fake([60], [5, 60]), engineerQuery()).approval, false);
  });

  it('asks RequestPort only when OpenPort was refused', () => {
    const e = fake([5, 15, 30, 60, 120, 240, 480], []);
    maxDuration(e, engineerQuery());
    assert.equal(e.calls, 7);
  });

  it('candidateDurations grows to the cap', () => {
    assert.deepEqual(candidateDurations(480), [5, 15, 30, 60, 120, 240, 480]);
    assert.deepEqual(candidateDurations(90), [5, 15, 30, 60, 90]);
    assert.deepEqual(candidateDurations(24 * 60, 15), [15, 30, 60, 120, 240, 480, 960, 1440]);
  });
});
