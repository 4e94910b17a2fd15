// The MFA rule of the configuration: which sign-ins count as multi-factor, and how long they stay fresh.
import type { Config } from '../config/schema.ts';
import { parseDuration } from '../config/duration.ts';
import { PortcullisError } from '../errors.ts';

export type MfaConfig = Config['oidc']['mfa'];

export interface MfaFacts {
  amr: string[];
  acr?: string | undefined;
  /** Seconds since epoch, from `auth_time`. */
  authTime?: number | undefined;
}

export interface MfaVerdict {
  /** The sign-in used a factor the configuration accepts as MFA. */
  mfa: boolean;
  /** The MFA sign-in is within `maxAge` of `nowSeconds`. */
  fresh: boolean;
  /** Seconds since the sign-in, when known. */
  ageSeconds?: number | undefined;
}

/** Reads `amr`/`acr`/`auth_time` from claims without trusting their types. */
export function mfaFacts(claims: Record<string, unknown>): MfaFacts {
  const amr = Array.isArray(claims.amr) ? claims.amr.filter((v): v is string => typeof v === 'string') : [];
  const acr = typeof claims.acr === 'string' ? claims.acr : undefined;
  const authTime = typeof claims.auth_time === 'number' && Number.isFinite(claims.auth_time) ? claims.auth_time : undefined;
  return { amr, acr, authTime };
}

export function maxAgeSeconds(cfg: MfaConfig): number {
  const s = parseDuration(cfg.maxAge);
  // The schema already refuses a bad duration; this guards a config built by hand in code.
  if (s === undefined) throw new PortcullisError('CONFIG_INVALID', 'oidc.mfa.maxAge is not a duration', { field: 'oidc.mfa.maxAge' });
  return s;
}

export function evaluateMfa(facts: MfaFacts, cfg: MfaConfig, nowSeconds: number): MfaVerdict {
  const mfa = facts.amr.some((m) => cfg.amr.includes(m)) || (facts.acr !== undefined && cfg.acr.includes(facts.acr));
  if (facts.authTime === undefined) return { mfa, fresh: false };
  const ageSeconds = Math.max(0, nowSeconds - facts.authTime);
  return { mfa, fresh: ageSeconds <= maxAgeSeconds(cfg), ageSeconds };
}

/** Throws MFA_REQUIRED when the sign-in lacked a second factor, MFA_TOO_OLD when it is older than maxAge. */
export function assertMfa(facts: MfaFacts, cfg: MfaConfig, nowSeconds: number): MfaVerdict {
  const v = evaluateMfa(facts, cfg, nowSeconds);
  if (!v.mfa) {
    throw new PortcullisError('MFA_REQUIRED', 'this sign-in did not use multi-factor authentication; sign in again with your second factor', {
      details: { amr: facts.amr, acr: facts.acr },
    });
  }
  if (!v.fresh) {
    // Without auth_time the age cannot be bounded, so it is treated as too old (fail closed).
    const msg = v.ageSeconds === undefined
      ? 'the sign-in does not say when it happened (no auth_time); sign in again'
      : `the multi-factor sign-in is ${v.ageSeconds}s old, more than the allowed ${cfg.maxAge}; sign in again`;
    throw new PortcullisError('MFA_TOO_OLD', msg, { details: { ageSeconds: v.ageSeconds, maxAge: cfg.maxAge } });
  }
  return v;
}
