// Builds the Cedar context of a request: MFA facts, duration, source, channel and the local time.
import type { PolicyContext } from '../policy/port.ts';
import type { Source } from './source.ts';
import type { Channel, Grant, Principal } from './types.ts';

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

export function policyContext(a: {
  principal: Principal;
  grant: Pick<Grant, 'durationSeconds' | 'port' | 'reason'>;
  source: Pick<Source, 'address' | 'prefixLength'>;
  channel: Channel;
  now: number;
  timeZone: string;
  requester?: string;
}): PolicyContext {
  const { hour, weekday } = localTime(a.now, a.timeZone);
  return {
    mfa: a.principal.mfa,
    authAgeSeconds: a.principal.authTime === undefined ? 2 ** 31 : Math.max(0, Math.floor(a.now / 1000 - a.principal.authTime)),
    durationMinutes: Math.ceil(a.grant.durationSeconds / 60),
    port: a.grant.port,
    sourceIp: a.source.address,
    sourcePrefixLength: a.source.prefixLength,
    channel: a.channel,
    reason: a.grant.reason,
    hour,
    weekday,
    requester: a.requester,
  };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

export function localTime(now: number, timeZone: string): { hour: number; weekday: string } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hour: 'numeric', hourCycle: 'h23', weekday: 'long' });
    formatters.set(timeZone, f);
  }
  const parts = f.formatToParts(new Date(now));
  const hour = Number(parts.find((p) => p.type === 'hour')!.value);
  const weekday = parts.find((p) => p.type === 'weekday')!.value;
  return { hour, weekday: WEEKDAYS.includes(weekday) ? weekday : 'Monday' };
}
