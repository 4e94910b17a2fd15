// Rate limits: per address prefix and per user, configurable under server.rateLimits, answered with a code and Retry-After.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import { isPortcullisError } from '../../src/errors.ts';
import { RateLimits } from '../../src/http/rate-limit.ts';

test('server.rateLimits has defaults, and a window outside 1s-1h or a limit below 1 is refused naming the key', () => {
  const d = configSchema.parse({ dev: { embeddedIdp: true } }).server.rateLimits;
  assert.deepEqual(d, { window: '1m', signInPerAddress: 60, refusedPerAddress: 120, grantRequestsPerUser: 30, grantRequestsPerAddress: 300, inFlightSignInsPerAddress: 30, inFlightSignIns: 10_000 });
  for (const [over, key] of [[{ window: '0s' }, 'server.rateLimits.window'], [{ window: '2h' }, 'server.rateLimits.window'], [{ signInPerAddress: 0 }, 'server.rateLimits.signInPerAddress'], [{ bogus: 1 }, 'server.rateLimits']] as const) {
    const r = configSchema.safeParse({ dev: { embeddedIdp: true }, server: { rateLimits: over } });
    assert.equal(r.success, false, JSON.stringify(over));
    assert.ok(r.error!.issues.some((i) => i.path.join('.') === key || i.path.join('.').startsWith(`${key}`)), `${JSON.stringify(r.error!.issues)} names ${key}`);
  }
});

test('grant requests: per user and per address prefix, the refusal says how long to wait', async () => {
  const limited: string[] = [];
  const l = new RateLimits({ grantRequestsPerUser: 2, grantRequestsPerAddress: 3, windowSeconds: 3600 }, (x) => limited.push(x));
  await l.grantRequest('alice', '198.51.100.7');
  await l.grantRequest('alice', '198.51.100.8');
  const e = await l.grantRequest('alice', '198.51.100.9').catch((x: unknown) => x);
  assert.ok(isPortcullisError(e, 'RATE_LIMITED'));
  assert.ok(Number(e.details!.retryAfterSeconds) >= 3500);
  await l.grantRequest('bob', '203.0.113.1');
  const f = await l.grantRequest('carol', '198.51.100.200').catch((x: unknown) => x);
  assert.ok(isPortcullisError(f, 'RATE_LIMITED'), 'the /24 of alice is spent: another user there waits too');
  assert.deepEqual(limited, ['grant_requests_user', 'grant_requests_address']);
});

test('in-flight sign-ins: a finished one frees its slot, one finished elsewhere frees nothing', async () => {
  const l = new RateLimits({ inFlightSignInsPerAddress: 2, signInTtlSeconds: 600 });
  await l.flowStarted({ ip: '10.0.0.1' });
  await l.flowStarted({ ip: '10.0.0.2' });
  assert.ok(isPortcullisError(await l.flowStarted({ ip: '10.0.0.3' }).catch((x: unknown) => x), 'SIGN_IN_BUSY'));
  await l.flowEnded({ ip: '10.0.0.1' });
  await l.flowStarted({ ip: '10.0.0.4' });
  await l.flowEnded({ ip: '192.0.2.1' });
  await l.flowStarted({ ip: '192.0.2.1' });
  await l.flowStarted({ ip: '192.0.2.1' });
  assert.ok(isPortcullisError(await l.flowStarted({ ip: '192.0.2.1' }).catch((x: unknown) => x), 'SIGN_IN_BUSY'), 'a free slot is not minted by an unmatched finish');
});
