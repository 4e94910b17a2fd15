// The policy context: local hour and weekday in policy.timeZone, sign-in age, rounding, and the source facts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Principal, UserId } from '../../src/domain/index.ts';
import { buildPolicyContext, localTime, sourceFacts, UNKNOWN_AUTH_AGE } from '../../src/policy/context.ts';

const principal = (authTime?: number): Principal => ({ sub: 'alice' as UserId, groups: [], mfa: true, amr: ['mfa'], authTime });
const input = (over: Partial<Parameters<typeof buildPolicyContext>[0]> = {}): Parameters<typeof buildPolicyContext>[0] => ({
  principal: principal(),
  durationMinutes: 60,
  port: 3389,
  sourceIp: '198.51.100.7',
  sourcePrefixLength: 32,
  callerIp: '198.51.100.7',
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
      sourceIp: '198.51.100.7/32',
      sourcePrefixLength: 32,
      callerIp: '198.51.100.7',
      sourceIsCaller: true,
      channel: 'web',
      reason: 'T-1',
      hour: 18,
      weekday: 'Friday',
      requester: 'bob',
    });
  });

  it('sourceIp carries the whole prefix; sourceIsCaller only for exactly the caller\'s one host', () => {
    assert.deepEqual(sourceFacts('10.213.0.0', 24, '10.213.0.9'), { sourceIp: '10.213.0.0/24', sourcePrefixLength: 24, callerIp: '10.213.0.9', sourceIsCaller: false });
    assert.equal(sourceFacts('198.51.100.7', 32, '198.51.100.7').sourceIsCaller, true);
    assert.equal(sourceFacts('198.51.100.8', 32, '198.51.100.7').sourceIsCaller, false);
    assert.deepEqual(sourceFacts('2001:db8::1', 128, '2001:DB8:0::1'), { sourceIp: '2001:db8::1/128', sourcePrefixLength: 128, callerIp: '2001:db8::1', sourceIsCaller: true });
  });

  it('an unknown caller is the unspecified address of the family and never the source', () => {
    assert.deepEqual(sourceFacts('198.51.100.7', 32, null), { sourceIp: '198.51.100.7/32', sourcePrefixLength: 32, callerIp: '0.0.0.0', sourceIsCaller: false });
    assert.equal(sourceFacts('2001:db8::1', 128, undefined).callerIp, '::');
    assert.equal(buildPolicyContext(input({ callerIp: null })).sourceIsCaller, false);
  });
});
