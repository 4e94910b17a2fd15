// Test helpers for the web: fresh TOTP codes per demo user, and a sign-in through the development IdP over HTTP.
import { DEMO_USERS, totpFor } from '../../src/dev/idp.ts';
import { CookieJar, formFields } from '../helpers/idp.ts';

const usedStep = new Map<string, number>();

/**
 * A TOTP code the IdP has not accepted yet. It takes each 30 s step once and accepts the next step, so a
 * user signs in at most twice per step; a third sign-in waits until the clock reaches a new step.
 */
export async function freshCode(userId: string): Promise<string> {
  const user = DEMO_USERS.find((u) => u.id === userId)!;
  for (;;) {
    const now = Math.floor(Date.now() / 30_000);
    const last = usedStep.get(userId) ?? -1;
    const step = Math.max(now, last + 1);
    if (step <= now + 1) {
      usedStep.set(userId, step);
      return totpFor(user).generate({ timestamp: step * 30_000 + 1000 });
    }
    // Wait for the TOTP clock to reach the next step (a condition of the protocol, not a guess).
    await new Promise((r) => setTimeout(r, (now + 1) * 30_000 - Date.now() + 50));
  }
}

/** Signs a demo user in to the broker's web UI without a browser; returns the jar holding the session cookie. */
export async function signInHttp(base: string, userId: string): Promise<CookieJar> {
  const jar = new CookieJar();
  const user = DEMO_USERS.find((u) => u.id === userId)!;
  let res = await jar.fetch(`${base}/auth/login?returnTo=%2F`);
  for (let hop = 0; hop < 20; hop++) {
    if (res.status >= 300 && res.status < 400) {
      const loc = new URL(res.headers.get('location')!, base);
      if (loc.origin === base && loc.pathname === '/') return jar;
      res = await jar.fetch(loc);
      continue;
    }
    const url = res.url || base;
    const html = await res.text();
    if (/name="password"/.test(html)) {
      const f = formFields(html);
      res = await jar.fetch(new URL(f.action!, base), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ login: user.id, password: user.password }) });
    } else if (/name="otp"/.test(html)) {
      const f = formFields(html);
      res = await jar.fetch(new URL(f.action!, base), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ otp: await freshCode(userId) }) });
    } else {
      throw new Error(`sign-in of ${userId} stopped at ${url} (${res.status}): ${html.slice(0, 200)}`);
    }
  }
  throw new Error(`sign-in of ${userId} did not finish`);
}
