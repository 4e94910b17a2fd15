// Skips a test with a clear reason on a laptop that lacks a tool; fails it instead when CI is set.
import type { TestContext } from 'node:test';

export const IN_CI = Boolean(process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0');

/** Returns true when the test may go on; otherwise skips it (or throws under CI). */
export function requireOrSkip(t: TestContext, available: boolean, reason: string): boolean {
  if (available) return true;
  if (IN_CI) throw new Error(`required in CI but unavailable: ${reason}`);
  t.skip(reason);
  return false;
}
