/// <reference lib="dom" />
// One headless Debian Chromium per test file with a fresh context per persona; axe checks and screenshots of each page.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumPath } from '../helpers/browser.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { ROOT } from '../helpers/broker.ts';

export const SCREENSHOTS = join(ROOT, 'docs/screenshots');
export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1180, height: 800 };

export interface Chromium {
  browser: Browser;
  /** Requests any page made to anywhere but loopback (refused). */
  blocked: string[];
  context(): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function launch(t: TestContext): Promise<Chromium | undefined> {
  const executablePath = chromiumPath();
  if (!requireOrSkip(t, executablePath !== undefined, 'Chromium is not installed (apt-get install chromium)')) return undefined;
  process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: executablePath!,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
  const blocked: string[] = [];
  return {
    browser,
    blocked,
    async context() {
      const c = await browser.newContext({ viewport: DESKTOP, deviceScaleFactor: 1, timezoneId: 'Europe/Berlin', locale: 'en-GB' });
      // A shared 2-core machine: generous, but every wait is for an element or a state.
      c.setDefaultTimeout(20_000);
      await c.route(/^(?!https?:\/\/127\.0\.0\.1[:/])/, (route) => {
        blocked.push(route.request().url());
        return route.abort('blockedbyclient');
      });
      return c;
    },
    close: () => browser.close(),
  };
}

export interface AxeCount {
  name: string;
  size: 'desktop' | 'phone';
  serious: number;
  critical: number;
  ids: string[];
}

/** Runs axe (WCAG 2.1 A/AA) on the page at desktop size and at 390×844, with a screenshot of each. */
export async function checkPage(page: Page, name: string, counts: AxeCount[], opts: { phoneShot?: boolean } = {}): Promise<void> {
  const { default: AxeBuilder } = await import('@axe-core/playwright');
  mkdirSync(SCREENSHOTS, { recursive: true });
  const original = page.viewportSize() ?? DESKTOP;
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    await page.setViewportSize(viewport);
    const r = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
    const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    counts.push({
      name,
      size,
      serious: bad.filter((v) => v.impact === 'serious').length,
      critical: bad.filter((v) => v.impact === 'critical').length,
      ids: bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`),
    });
    // Kept small for the repository: the viewport only, and the phone size for the main pages.
    if (size === 'desktop' || opts.phoneShot) await page.screenshot({ path: join(SCREENSHOTS, `${name}${size === 'phone' ? '-phone' : ''}.png`) });
  }
  await page.setViewportSize(original);
}

/** Phone layout: nothing but a marked table wrapper scrolls sideways. */
export async function assertNoSidewaysScroll(page: Page): Promise<number> {
  await page.setViewportSize(PHONE);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  await page.setViewportSize(DESKTOP);
  return overflow;
}
