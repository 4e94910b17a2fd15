// The policy context: local hour and weekday in policy.timeZone, sign-in age, rounding.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Principal, UserId } from '../../src/domain/index.ts';
import { buildPolicyContext, localTime, UNKNOWN_AUTH_AGE } from '../../src/policy/context.ts';

const principal = (authTime?: number): Principal => ({ sub: 'alice' as UserId, groups: [], mfa: true, amr: ['mfa'], authTime });
const input = (over: Partial<Parameters<typeof buildPolicyContext>[0]> = {}) => ({
  principal: principal(),
  durationMinutes: 60,
  port: 3389,
  sourceIp: '198.51.100.7',
  sourcePrefixLength: 32,
  channel: 'web' as const,
  reason: 'T-1',
  now: Date.parse('2026-03-06T17:30:00Z'),
  timeZone: 'UTC',
  ...over,
});

describe('buildPolicyContext', () => {
  it('reads hour and weekday in the configured zone, including across midnight', () => {
    const now = Date.parse('2026-03-06T23:30:00Z'); // Friday in UTC
    assert.deepEqual(localTime(now, 'UTC'), { hour: 23, weekday: 'Friday' });
    assert.deepEqual(localTime(now, 'Europe/Berlin'), { hour: 0, weekday: 'Saturday' });
    assert.deepEqual(localTime(now, 'America/New_York'), { hour: 18, weekday: 'Friday' });
    assert.deepEqual(localTime(Date.parse('2026-03-09T00:15:00Z'), 'Asia/Kolkata'), { hour: 5, weekday: 'Monday' });
  });

  it('follows daylight saving time', () => {
    // Europe moves to summer time on 29 March 2026: 07:30 UTC is 08:30 before and 09:30 after.
    assert.equal(localTime(Date.parse('2026-03-28T07:30:00Z'), 'Europe/Berlin').hour, 8);
    assert.equal(localTime(Date.parse('2026-03-30T07:30:00Z'), 'Europe/Berlin').hour, 9);
  });

  it('computes the sign-in age from auth_time', () => {
    const now = Date.parse('2026-03-06T17:30:00Z');
    assert.equal(buildPolicyContext(input({ principal: principal(now / 1000 - 754), now })).authAgeSeconds, 754);
    // A clock slightly behind the IdP's: zero, never negative.
    assert.equal(buildPolicyContext(input({ principal: principal(now / 1000 + 5), now })).authAgeSeconds, 0);
  });

  it('an unknown auth_time reads as too old for any freshness rule', () => {
    assert.equal(buildPolicyContext(input()).authAgeSeconds, UNKNOWN_AUTH_AGE);
  });

  it('rounds a fractional duration up and passes the rest through', () => {
    const c = buildPolicyContext(input({ durationMinutes: 1.5, requester: 'bob', timeZone: 'Europe/Berlin' }));
    assert.deepEqual(c, {
      mfa: true,
      authAgeSeconds: UNKNOWN_AUTH_AGE,
      durationMinutes: 2,
      port: 3389,
      sourceIp: '198.51.100.7',
      sourcePrefixLength: 32,
      channel: 'web',
      reason: 'T-1',
      hour: 18,
      weekday: 'Friday',
      requester: 'bob',
    });
  });
});
