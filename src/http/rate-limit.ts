// Rate limits per address prefix and per user on sign-in, refused credentials and grant requests
// (rate-limiter-flexible, in memory per broker), answered 429 RATE_LIMITED with Retry-After.
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { PortcullisError, type ErrorCode } from '../errors.ts';
import { addressText, parseAddress } from '../net/cidr.ts';

export interface RateLimitSettings {
  windowSeconds: number;
  /** Sign-in steps (start, callback, step-up) per address prefix per window. */
  signInPerAddress: number;
  /** Refused credentials per address prefix per window; past it the prefix is answered 429 unchecked. */
  refusedPerAddress: number;
  grantRequestsPerUser: number;
  grantRequestsPerAddress: number;
  /** Sign-ins started and not yet finished or expired, per address prefix (and per user for step-ups). */
  inFlightSignInsPerAddress: number;
  /** The same, in all: the most `login_flows` rows anonymous traffic can create. */
  inFlightSignIns: number;
  /** How long an unfinished sign-in lives. */
  signInTtlSeconds: number;
}

export const DEFAULT_RATE_LIMITS: RateLimitSettings = {
  windowSeconds: 60,
  signInPerAddress: 60,
  refusedPerAddress: 120,
  grantRequestsPerUser: 30,
  grantRequestsPerAddress: 300,
  inFlightSignInsPerAddress: 30,
  inFlightSignIns: 10_000,
  signInTtlSeconds: 600,
};

/**
 * The unit an attacker pays for: a /24 of IPv4 or a /64 of IPv6 (what one subscriber usually gets),
 * so rotating through one's own addresses does not multiply the budget.
 */
export function addressPrefix(ip: string): string {
  const a = parseAddress(ip);
  if (!a) return `other:${ip.slice(0, 64)}`;
  const bits = a.family === 4 ? 24 : 64;
  const total = a.family === 4 ? 32 : 128;
  const masked = (a.value >> BigInt(total - bits)) << BigInt(total - bits);
  return `${addressText(masked, a.family)}/${bits}`;
}

export function rateLimited(code: ErrorCode, message: string, msBeforeNext: number): PortcullisError {
  return new PortcullisError(code, message, { details: { retryAfterSeconds: Math.max(1, Math.ceil(msBeforeNext / 1000)) } });
}

export class RateLimits {
  readonly settings: RateLimitSettings;
  private readonly signIn: RateLimiterMemory;
  private readonly refused: RateLimiterMemory;
  private readonly grantsByUser: RateLimiterMemory;
  private readonly grantsByAddress: RateLimiterMemory;
  private readonly inFlight: RateLimiterMemory;

  constructor(settings: Partial<RateLimitSettings> = {}, private readonly onLimited: (limit: string) => void = () => {}) {
    const s = (this.settings = { ...DEFAULT_RATE_LIMITS, ...settings });
    const mk = (points: number, duration = s.windowSeconds) => new RateLimiterMemory({ points, duration });
    this.signIn = mk(s.signInPerAddress);
    this.refused = mk(s.refusedPerAddress);
    this.grantsByUser = mk(s.grantRequestsPerUser);
    this.grantsByAddress = mk(s.grantRequestsPerAddress);
    this.inFlight = mk(s.inFlightSignInsPerAddress, s.signInTtlSeconds);
  }

  private async consume(limiter: RateLimiterMemory, key: string, limit: string, message: string, code: ErrorCode = 'RATE_LIMITED'): Promise<void> {
    try {
      await limiter.consume(key);
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      this.onLimited(limit);
      throw rateLimited(code, message, e.msBeforeNext);
    }
  }

  /** One step of a sign-in (start, callback, step-up) from this address. */
  signInStep(ip: string): Promise<void> {
    return this.consume(this.signIn, addressPrefix(ip), 'sign_in', 'too many sign-in attempts from your network; wait and try again');
  }

  /** A sign-in flow is about to be stored: at most N in flight per address prefix (or per user, for step-ups). */
  async flowStarted(key: { ip: string } | { user: string }): Promise<void> {
    const k = 'ip' in key ? addressPrefix(key.ip) : `user:${key.user}`;
    try {
      await this.consume(this.inFlight, k, 'sign_in_in_flight', 'too many unfinished sign-ins; finish one or wait a few minutes', 'SIGN_IN_BUSY');
    } catch (e) {
      // A refused start holds no slot: undo its count, so a finished sign-in frees a real one.
      await this.inFlight.reward(k);
      throw e;
    }
  }

  /** A flow finished (used or refused): its slot is free again. */
  async flowEnded(key: { ip: string } | { user: string }): Promise<void> {
    const k = 'ip' in key ? addressPrefix(key.ip) : `user:${key.user}`;
    // Only a slot this key holds: a sign-in finished from another network frees nothing there.
    const held = await this.inFlight.get(k);
    if (held && held.consumedPoints > 0) await this.inFlight.reward(k);
  }

  /** Refuses at once when this prefix has spent its refused-credential budget: no verification, no audit. */
  async refusedCheck(ip: string): Promise<void> {
    const r = await this.refused.get(addressPrefix(ip));
    if (r && r.consumedPoints >= this.settings.refusedPerAddress) {
      this.onLimited('refused_credentials');
      throw rateLimited('RATE_LIMITED', 'too many refused credentials from your network; wait and try again', r.msBeforeNext);
    }
  }

  /** Counts one refused credential of this prefix. */
  async refusedNote(ip: string): Promise<void> {
    await this.refused.consume(addressPrefix(ip)).catch((e) => {
      if (!(e instanceof RateLimiterRes)) throw e;
    });
  }

  async grantRequest(user: string, ip: string): Promise<void> {
    await this.consume(this.grantsByAddress, addressPrefix(ip), 'grant_requests_address', 'too many access requests from your network; wait and try again');
    await this.consume(this.grantsByUser, user, 'grant_requests_user', 'too many access requests; wait and try again');
  }
}
