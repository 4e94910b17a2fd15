// Headless Debian Chromium driven by playwright-core for web tests: never a downloaded browser; skips without one (fails in CI).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { requireOrSkip } from './env.ts';

const CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];

/** The Debian chromium binary, if installed (the lead's .ci/run installs the `chromium` package). */
export function chromiumPath(): string | undefined {
  const fromEnv = process.env.PORTCULLIS_CHROMIUM;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  return CANDIDATES.find((p) => existsSync(p));
}

export interface Browser {
  context: BrowserContext;
  /** Requests the page made to anywhere but loopback (refused); a test asserts there are none. */
  blocked: string[];
  close(): Promise<void>;
}

/**
 * A fresh headless Chromium with its own profile directory, or undefined after skipping the test
 * (on a laptop without Chromium; under CI=true the test fails instead).
 */
export async function launchChromium(t: TestContext): Promise<Browser | undefined> {
  const executablePath = chromiumPath();
  if (!requireOrSkip(t, executablePath !== undefined, `Chromium is not installed (looked for ${CANDIDATES.join(', ')}; apt-get install chromium)`)) return undefined;
  // playwright-core never downloads on launch; this also silences its hint to run `playwright install`.
  process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'portcullis-chromium-'));
  // A persistent context is how playwright takes a user-data-dir: a fresh one per test, removed after.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: executablePath!,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 860 },
    timeout: 30_000,
  });
  context.setDefaultTimeout(10_000);
  // Network only to loopback: anything else the page asks for is refused and recorded.
  const blocked: string[] = [];
  await context.route(/^(?!https?:\/\/127\.0\.0\.1[:/])/, (route) => {
    blocked.push(route.request().url());
    return route.abort('blockedbyclient');
  });
  return {
    context,
    blocked,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
