// Builds the PolicyContext from what the broker knows: the principal, the request and the clock,
// with hour and weekday in policy.timeZone.
import type { Principal } from '../domain/index.ts';
import { bitsOf, parseAddress } from '../net/cidr.ts';
import type { PolicyContext } from './port.ts';

/** What the broker knows of a request; hour, weekday, auth age and the source facts are derived from it. */
export type ContextInput = Pick<PolicyContext, 'durationMinutes' | 'port' | 'sourcePrefixLength' | 'channel' | 'reason' | 'requester'> & {
  /** The network address of the source (e.g. 10.213.0.0 of a /24). */
  sourceIp: string;
  /** The caller's address as the broker saw it; null when not known (a grant recorded before it was kept). */
  callerIp: string | null | undefined;
  principal: Principal;
  /** Milliseconds since epoch; injected so tests and the reaper's re-checks use one clock. */
  now: number;
  timeZone: string;
};

/**
 * Sign-in age when the IdP did not say `auth_time`: old enough that any freshness rule
 * refuses. Unknown must never read as "just now". Fits Cedar's 64-bit Long.
 */
export const UNKNOWN_AUTH_AGE = Number.MAX_SAFE_INTEGER;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // en-US with hourCycle h23 gives "Monday" and 0-23 on every ICU build; throws RangeError
    // for an unknown zone, which config validation has already refused.
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'long', hour: 'numeric', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Hour (0-23) and English weekday of an instant in a time zone. */
export function localTime(now: number, timeZone: string): { hour: number; weekday: string } {
  const parts = formatter(timeZone).formatToParts(new Date(now));
  const hour = Number(parts.find((p) => p.type === 'hour')?.value);
  const weekday = parts.find((p) => p.type === 'weekday')?.value;
  if (!Number.isInteger(hour) || weekday === undefined) throw new Error(`cannot read local time in ${timeZone}`);
  return { hour: hour % 24, weekday };
}

/**
 * `sourceIp` as the whole prefix, the caller's address, and whether the source is exactly the caller. An unknown
 * caller reads as the unspecified address, which is never the source: a policy that asks gets "no" (fail closed).
 */
export function sourceFacts(address: string, prefixLength: number, callerIp: string | null | undefined): Pick<PolicyContext, 'sourceIp' | 'sourcePrefixLength' | 'callerIp' | 'sourceIsCaller'> {
  const source = parseAddress(address);
  const caller = callerIp ? parseAddress(callerIp) : undefined;
  const family = source?.family ?? 4;
  return {
    sourceIp: `${source?.text ?? address}/${prefixLength}`,
    sourcePrefixLength: prefixLength,
    callerIp: caller?.text ?? (family === 4 ? '0.0.0.0' : '::'),
    sourceIsCaller: source !== undefined && caller !== undefined && caller.family === source.family && caller.value === source.value && prefixLength === bitsOf(family),
  };
}

export function buildPolicyContext(input: ContextInput): PolicyContext {
  const { hour, weekday } = localTime(input.now, input.timeZone);
  const authTime = input.principal.authTime;
  // A clock a little behind the IdP's would make the age negative; zero is the honest reading.
  const authAgeSeconds =
    authTime === undefined ? UNKNOWN_AUTH_AGE : Math.max(0, Math.floor(input.now / 1000 - authTime));
  return {
    mfa: input.principal.mfa,
    authAgeSeconds,
    // Rounded up: a 90 s grant is judged as 2 minutes, so a "≤ N minutes" rule is never beaten
    // by a fraction, and Cedar's Long stays an integer.
    durationMinutes: Math.ceil(input.durationMinutes),
    port: input.port,
    ...sourceFacts(input.sourceIp, input.sourcePrefixLength, input.callerIp),
    channel: input.channel,
    reason: input.reason,
    hour,
    weekday,
    requester: input.requester,
  };
}
