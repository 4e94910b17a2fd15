// The engineer's web journey in real headless Chromium: sign in with password + TOTP at the development IdP,
// request access, watch the countdown, close it; field errors beside their field; step-up; no external requests.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import type { GrantId } from '../../src/domain/index.ts';
import type { FirewallConfig, TargetConfig } from '../../src/config/schema.ts';
import { DEMO_USERS, totpFor } from '../../src/dev/idp.ts';
import { createMemoryAdapter } from '../../src/firewall/memory.ts';
import { startBroker, tempDir, testConfig, waitFor, type RunningBroker } from '../helpers/broker.ts';
import { launchChromium, type Browser } from '../helpers/browser.ts';

const SHOTS = '/tmp';

const TARGETS = [
  { id: 'lab-pc', description: 'Lab workstation', connect: 'lab-pc.example.test:3389', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } },
  { id: 'demo-pc', description: 'Demo PC', connect: 'demo-pc.example.test', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'simulated' } },
  // Configured as nftables (a real firewall, so no SIMULATED mark) and backed by the memory twin in this test.
  { id: 'prod-db', description: 'Production database host', connect: 'prod-db.example.test:3389', tags: { env: 'prod', customer: 'internal' }, firewall: { kind: 'nftables' } },
];
const nftAsMemory = { nftables: (_cfg: FirewallConfig, target: TargetConfig) => createMemoryAdapter(`memory:${target.id}`) };

const alice = DEMO_USERS.find((u) => u.id === 'alice')!;

/** A TOTP code the IdP has not seen yet: it accepts each time step once, and the next step within its window. */
function totpCode(offsetSteps = 0): string {
  return totpFor(alice).generate({ timestamp: Date.now() + offsetSteps * 30_000 });
}

/** The dev IdP's two pages: password, then the current code; ends back on the broker. */
async function passIdp(page: Page, code: string): Promise<void> {
  await page.waitForSelector('#password');
  await page.fill('#login', 'alice');
  await page.fill('#password', 'alice-demo');
  await page.click('button[type=submit]');
  await page.waitForSelector('#otp');
  await page.fill('#otp', code);
  await page.click('button[type=submit]');
}

async function ready(page: Page): Promise<void> {
  await page.waitForSelector('body[data-ready=true]');
}

function seconds(clock: string): number {
  const parts = clock.split(':').map(Number);
  return parts.reduce((acc, n) => acc * 60 + n, 0);
}

describe('web UI: the engineer journey in Chromium', () => {
  let browser: Browser | undefined;
  let broker: RunningBroker;
  let cleanup: () => void;

  before(async () => {
    const t = tempDir('portcullis-web-');
    cleanup = t.cleanup;
    broker = await startBroker(testConfig(t.dir, { dev: { embeddedIdp: true }, targets: TARGETS }), { firewallFactories: nftAsMemory });
  });
  after(async () => {
    await browser?.close();
    await broker?.stop();
    cleanup?.();
  });

  async function open(t: TestContext): Promise<Page | undefined> {
    browser ??= await launchChromium(t);
    if (!browser) return undefined;
    return browser.context.newPage();
  }

  test('signed out, / is a landing page with a Sign in link and a strict Content-Security-Policy', async (t) => {
    const page = await open(t);
    if (!page) return;
    const res = await page.goto(`${broker.url}/`);
    assert.equal(res?.status(), 200);
    const csp = (await res!.allHeaders())['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(await page.getAttribute('#sign-in', 'href'), '/auth/login?returnTo=%2F');
    assert.match(await page.textContent('h1') ?? '', /closed until you need it/);
    await page.screenshot({ path: `${SHOTS}/portcullis-web-landing.png` });
    await page.close();
  });

  test('sign in with password + TOTP, request 1 minute, see it active with a countdown and how to connect, close it now', async (t) => {
    const page = await open(t);
    if (!page) return;
    const scriptErrors: string[] = [];
    page.on('pageerror', (e) => scriptErrors.push(e.message));
    page.on('console', (m) => {
      // Chromium logs every 4xx fetch; the refused requests below are deliberate.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) scriptErrors.push(m.text());
    });
    const fw = broker.app.firewalls.get('lab-pc')!;

    await page.goto(`${broker.url}/`);
    await page.click('#sign-in');
    await passIdp(page, totpCode());
    await page.waitForURL(`${broker.url}/`);
    await ready(page);

    // Who you are, from the session.
    assert.equal(await page.textContent('#me-name'), 'Alice Requester');
    assert.equal(await page.textContent('#me-email'), 'alice@example.test');
    assert.deepEqual(await page.locator('#me-groups li').allTextContents(), ['engineers']);
    assert.equal(await page.textContent('#mfa-status'), 'Verified');
    // Targets from the API, the simulated one marked as such.
    assert.deepEqual(await page.locator('#targets tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-target'))), ['lab-pc', 'demo-pc', 'prod-db']);
    assert.match(await page.textContent('#targets tr[data-target="demo-pc"]') ?? '', /simulated SIMULATED firewall/);
    assert.match(await page.textContent('#targets tr[data-target="lab-pc"]') ?? '', /memory SIMULATED firewall/, 'the in-memory twin opens nothing real either');
    assert.doesNotMatch(await page.textContent('#targets tr[data-target="prod-db"]') ?? '', /SIMULATED/);
    assert.match(await page.textContent('#grants') ?? '', /no open access/);

    // A blank reason: the API's refusal shows beside the reason field, and nothing opens.
    await page.selectOption('#target', 'lab-pc');
    await page.selectOption('#duration', '1m');
    await page.click('#submit');
    await page.waitForSelector('#reason-error:not([hidden])');
    assert.match(await page.textContent('#reason-error') ?? '', /^Reason is required/);
    assert.equal(await page.getAttribute('#reason-error', 'data-code'), 'INVALID_REASON');
    assert.equal(await page.getAttribute('#reason', 'aria-invalid'), 'true');
    assert.equal(await page.locator('#reason').evaluate((e) => e === e.ownerDocument.activeElement), true, 'focus moves to the field in error');
    assert.equal(await page.isHidden('#form-error'), true);
    await page.screenshot({ path: `${SHOTS}/portcullis-web-field-error.png`, fullPage: true });

    // A malformed source address: beside the address field.
    await page.fill('#reason', 'T-100 patch');
    await page.check('input[name=source][value=other]');
    await page.fill('#sourceIp', 'not-an-address');
    await page.click('#submit');
    await page.waitForSelector('#sourceIp-error:not([hidden])');
    assert.equal(await page.isHidden('#reason-error'), true, 'the earlier error is cleared');
    assert.equal(await page.getAttribute('#sourceIp', 'aria-invalid'), 'true');
    assert.equal((await fw.list()).length, 0, 'no rule after refused requests');

    // The real request, from "this computer"; the reason carries markup that must stay text.
    await page.check('input[name=source][value=here]');
    await page.fill('#reason', 'T-4411 <b>patch</b> KB5031');
    await page.click('#submit');
    const card = page.locator('article.grant.active');
    await card.waitFor();
    const grantId = (await card.getAttribute('data-grant'))!;
    assert.match(await card.locator('.badge[data-state]').textContent() ?? '', /^Active$/);
    assert.equal(await card.locator(`[data-connect="${grantId}"]`).textContent(), 'lab-pc.example.test:3389');
    assert.equal(await card.locator('a[download]').getAttribute('href'), `/ui/grants/${grantId}/connect.rdp`);
    assert.match(await card.textContent() ?? '', /T-4411 <b>patch<\/b> KB5031/);
    assert.equal(await card.locator('b').count(), 0, 'API text is never markup');
    assert.match(await page.textContent('#notice') ?? '', /Access to lab-pc is open until/);
    const first = seconds((await card.locator('.countdown').textContent())!);
    assert.ok(first > 50 && first <= 60, `countdown starts near 1:00 (${first})`);
    await page.waitForTimeout(2100);
    const later = seconds((await card.locator('.countdown').textContent())!);
    assert.ok(later < first && later >= first - 4, `countdown runs (${first} → ${later})`);

    // The firewall holds exactly one rule: this computer (loopback) only, on the RDP port.
    const rules = await fw.list();
    assert.equal(rules.length, 1);
    assert.equal(rules[0]!.source, '127.0.0.1/32');
    assert.equal(rules[0]!.port, 3389);
    assert.deepEqual(rules[0]!.grantIds, [grantId]);

    // The .rdp download carries the address and nothing else.
    const rdp = await page.evaluate(async (href) => (await fetch(href)).text(), `/ui/grants/${grantId}/connect.rdp`);
    assert.match(rdp, /^full address:s:lab-pc\.example\.test:3389\r\n/);
    await page.screenshot({ path: `${SHOTS}/portcullis-web-active.png`, fullPage: true });

    // Close now: the card leaves, the grant shows closed (revoked) and the rule is gone.
    await card.locator(`button[data-close="${grantId}"]`).click();
    await page.waitForSelector(`#history tr[data-grant="${grantId}"] .badge[data-state=closed]`);
    assert.match(await page.textContent(`#history tr[data-grant="${grantId}"]`) ?? '', /Closed \(revoked\)/);
    assert.equal(await page.locator('article.grant').count(), 0);
    assert.match(await page.textContent('#notice') ?? '', /Closed: the port of lab-pc is shut again/);
    assert.equal((await fw.list()).length, 0);
    assert.equal((await broker.app.store.getGrant(grantId as GrantId))?.state, 'closed');
    await page.screenshot({ path: `${SHOTS}/portcullis-web-closed.png`, fullPage: true });

    // Production waits for an approver.
    await page.selectOption('#target', 'prod-db');
    await page.selectOption('#duration', '1h');
    await page.fill('#reason', 'CHG-77 index rebuild');
    await page.click('#submit');
    const pending = page.locator('article.grant.pending');
    await pending.waitFor();
    assert.match(await pending.textContent() ?? '', /Waiting for approval/);
    assert.equal((await broker.app.firewalls.get('prod-db')!.list()).length, 0);
    await page.screenshot({ path: `${SHOTS}/portcullis-web-pending.png`, fullPage: true });

    assert.deepEqual(scriptErrors, []);
    assert.deepEqual(browser!.blocked, [], 'no request left loopback');
    await page.close();
  });

  test('sign out posts the CSRF token and ends the session', async (t) => {
    const page = await open(t);
    if (!page) return;
    // The session from the previous test lives in this browser profile.
    await page.goto(`${broker.url}/`);
    await ready(page);
    await page.click('#sign-out button');
    // The development IdP asks whether to end its session too.
    await page.waitForURL(/\/idp\//);
    await page.click('button[name=logout]');
    await page.waitForURL(`${broker.url}/auth/signed-out`);
    const res = await page.goto(`${broker.url}/`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.isVisible('#sign-in'), true, 'back to the landing page');
    const session = await page.evaluate(async () => (await fetch('/auth/session')).status);
    assert.equal(session, 401);
    await page.close();
  });
});

describe('web UI: step-up when the MFA sign-in is too old', () => {
  let browser: Browser | undefined;
  let broker: RunningBroker;
  let cleanup: () => void;

  before(async () => {
    const t = tempDir('portcullis-web-stepup-');
    cleanup = t.cleanup;
    broker = await startBroker(testConfig(t.dir, { dev: { embeddedIdp: true }, oidc: { mfa: { maxAge: '6s' } }, targets: TARGETS.slice(0, 1) }));
  });
  after(async () => {
    await browser?.close();
    await broker?.stop();
    cleanup?.();
  });

  test('a stale sign-in is led through a fresh one and the request form comes back as it was', async (t) => {
    browser = await launchChromium(t);
    if (!browser) return;
    const page = await browser.context.newPage();
    await page.goto(`${broker.url}/auth/login?returnTo=%2F`);
    await passIdp(page, totpCode());
    await page.waitForURL(`${broker.url}/`);
    await ready(page);
    const signedInAt = Date.now();

    await page.selectOption('#duration', '5m');
    await page.fill('#reason', 'T-9 after lunch');
    await page.waitForTimeout(Math.max(0, signedInAt + 7000 - Date.now()));
    await page.click('#submit');
    await page.waitForSelector('#step-up');
    assert.match(await page.textContent('#form-error') ?? '', /Your multi-factor sign-in is older than 6s/);
    assert.equal((await broker.app.firewalls.get('lab-pc')!.list()).length, 0);
    await page.screenshot({ path: `${SHOTS}/portcullis-web-step-up.png`, fullPage: true });

    await page.click('#step-up');
    // max_age=0 makes the IdP ask again; the code of the next time step, as this one is used.
    await passIdp(page, totpCode(1));
    await page.waitForURL(`${broker.url}/`);
    await ready(page);
    assert.equal(await page.inputValue('#reason'), 'T-9 after lunch');
    assert.equal(await page.inputValue('#duration'), '5m');
    assert.match(await page.textContent('#notice') ?? '', /You signed in again/);
    await page.click('#submit');
    await page.locator('article.grant.active').waitFor();
    const rules = await waitFor('one rule', async () => {
      const r = await broker.app.firewalls.get('lab-pc')!.list();
      return r.length === 1 && r;
    });
    assert.equal(rules[0]!.source, '127.0.0.1/32');
    await page.close();
  });
});
