/// <reference lib="dom" />
// Every demo persona's journey in one headless Chromium, a context each: requester, two approvers (N=2), a deny
// with a comment, extend and the expiry notice, the technician, nina's enrolment, the auditor and the admin.
// axe (WCAG 2.1 AA) on every page and state at desktop size and 390×844; screenshots into docs/screenshots/.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { TOTP, Secret } from 'otpauth';
import { EMBEDDED_DEFAULT } from '../../src/config/load.ts';
import { DEMO_USERS } from '../../src/dev/idp.ts';
import { startBroker, tempDir, testConfig, type RunningBroker } from '../helpers/broker.ts';
import { assertNoSidewaysScroll, checkPage, launch, type AxeCount, type Chromium } from './chromium.ts';
import { freshCode } from './signin.ts';

async function ready(page: Page): Promise<void> {
  await page.waitForSelector('body[data-ready=true]');
}

/** Password and TOTP at the development IdP, ending back on the broker's page. */
async function signIn(page: Page, base: string, user: string): Promise<void> {
  const u = DEMO_USERS.find((x) => x.id === user)!;
  await page.goto(`${base}/auth/login?returnTo=%2F`);
  await page.waitForSelector('#password');
  await page.fill('#login', u.id);
  await page.fill('#password', u.password);
  await page.click('button[type=submit]');
  await page.waitForSelector('#otp');
  await page.fill('#otp', await freshCode(user));
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/`);
  await ready(page);
}

describe('web UI: every demo persona in Chromium', () => {
  let broker: RunningBroker;
  let cleanup: () => void;
  let chromium: Chromium | undefined;
  const counts: AxeCount[] = [];
  const contexts: BrowserContext[] = [];
  const pages: Record<string, Page> = {};
  const scriptErrors: string[] = [];

  before(async () => {
    const t = tempDir('portcullis-personas-');
    cleanup = t.cleanup;
    broker = await startBroker(
      testConfig(t.dir, {
        dev: { embeddedIdp: true },
        targets: EMBEDDED_DEFAULT.targets,
        grants: { minDuration: '10s', maxDuration: '8h', adminGroups: ['portcullis-admins'] },
        audit: { jsonl: `${t.dir}/audit.jsonl`, readerGroups: ['approvers', 'auditors'] },
      }),
    );
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await chromium?.close();
    await broker?.stop();
    cleanup?.();
    if (counts.length) {
      const serious = counts.reduce((n, c) => n + c.serious, 0);
      const critical = counts.reduce((n, c) => n + c.critical, 0);
      console.log(`axe: ${counts.length} checks (${new Set(counts.map((c) => c.name)).size} pages/states × desktop and 390×844): ${serious} serious, ${critical} critical`);
    }
  });

  /** The persona's page in its own browser context (its own cookies), signed in once. */
  async function as(t: TestContext, user: string): Promise<Page | undefined> {
    if (pages[user]) return pages[user];
    chromium ??= await launch(t);
    if (!chromium) return undefined;
    const context = await chromium.context();
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (e) => scriptErrors.push(`${user}: ${e.message}`));
    if (user !== 'anonymous' && user !== 'nina') await signIn(page, broker.url, user);
    pages[user] = page;
    return page;
  }
  const axeClean = (name: string) => {
    const bad = counts.filter((c) => c.name === name && (c.serious || c.critical));
    assert.deepEqual(bad.map((c) => `${c.size}: ${c.ids.join('; ')}`), [], `axe on ${name}`);
  };

  test('signed out: the landing page and the product 404 page', async (t) => {
    const page = await as(t, 'anonymous');
    if (!page) return;
    await page.goto(`${broker.url}/`);
    await ready(page);
    await checkPage(page, 'landing', counts);
    axeClean('landing');
    const res = await page.goto(`${broker.url}/no-such-page`);
    assert.equal(res?.status(), 404);
    assert.match((await page.textContent('h1')) ?? '', /Page not found/);
    await checkPage(page, 'not-found', counts);
    axeClean('not-found');
  });

  test('requester: opens demo-pc at once, sees how to connect, extends it, and is warned before it closes', async (t) => {
    const page = await as(t, 'alice');
    if (!page) return;
    assert.equal(await page.textContent('.who-name'), 'Alice Requester');
    // One SIMULATED mark, not two.
    assert.doesNotMatch((await page.textContent('#target')) ?? '', /\(simulated firewall\) \(simulated firewall\)/);
    await checkPage(page, 'request-form', counts);
    axeClean('request-form');
    assert.equal(await assertNoSidewaysScroll(page), 0, 'the request page fits a phone');

    await page.selectOption('#target', 'demo-pc');
    await page.selectOption('#duration', '30m');
    await page.fill('#reason', 'T-4411 patch the print server');
    await page.click('#submit');
    const card = page.locator('article.grant.active');
    await card.waitFor();
    // Dates carry a day and a zone.
    assert.match((await page.textContent('#notice')) ?? '', /open until \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} (CET|CEST|GMT\+\d)/);
    await checkPage(page, 'request-active', counts, { phoneShot: true });
    axeClean('request-active');

    const id = (await card.getAttribute('data-grant'))!;
    await card.locator('a', { hasText: 'Details' }).click();
    await page.waitForURL(`${broker.url}/grants/${id}`);
    await ready(page);
    assert.equal(await page.textContent('#grant-state'), 'Active');
    assert.equal(await page.textContent('#connect-address'), 'demo-pc.example.invalid:3389');
    assert.match((await page.textContent('#timeline')) ?? '', /Rule in place until/);
    await checkPage(page, 'grant-active', counts, { phoneShot: true });
    axeClean('grant-active');

    // Extend: re-checked by policy (engineers self-serve up to 2 hours), and the page says the new end.
    const before = await page.getAttribute('#grant', 'data-expires');
    await page.selectOption('#extend-duration', '15m');
    await page.click('#extend-submit');
    await page.waitForFunction((b) => document.querySelector('#grant')?.getAttribute('data-expires') !== b && document.body.dataset.ready === 'true', before);
    assert.match((await page.textContent('#notice')) ?? '', /^Extended: open until /);
    assert.match((await page.textContent('#timeline')) ?? '', /alice extended it by 15 minutes/);
    const after = Date.parse((await page.getAttribute('#grant', 'data-expires'))!);
    assert.equal(after - Date.parse(before!), 15 * 60_000);
    // Beyond what the policy self-serves: refused, and said beside the button.
    await page.selectOption('#extend-duration', '120m');
    await page.click('#extend-submit');
    await page.waitForSelector('#action-error:not([hidden])');
    assert.match((await page.textContent('#action-error')) ?? '', /Cannot extend/);

    // A short grant (40 s, through the API like the CLI would) warns on its page before it closes.
    const short = await page.evaluate(async () => {
      const s = (await (await fetch("/auth/session")).json()) as { csrf: string };
      const r = await fetch('/api/v1/grants', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': s.csrf }, body: JSON.stringify({ target: 'demo-pc', duration: '40s', reason: 'T-1 quick look' }) });
      return (await r.json()).grant.id as string;
    });
    await page.goto(`${broker.url}/grants/${short}`);
    await ready(page);
    await page.waitForSelector('#expiry-notice:not([hidden])', { timeout: 30_000 });
    assert.match((await page.textContent('#expiry-notice')) ?? '', /closes in 1 minute\(s\), at /);
    await checkPage(page, 'grant-expiry-notice', counts);
    axeClean('grant-expiry-notice');
    await page.click('#close-now');
    await page.waitForSelector('#grant-state[data-state=closed]');
    assert.match((await page.textContent('#grant-state')) ?? '', /Closed \(revoked\)/);
  });

  test('N=2: alice asks for demo-dc01; bob then carol approve in their inboxes while her page updates live', async (t) => {
    const alice = await as(t, 'alice');
    if (!alice) return;
    await alice.goto(`${broker.url}/`);
    await ready(alice);
    await alice.selectOption('#target', 'demo-dc01');
    await alice.selectOption('#duration', '1h');
    await alice.fill('#reason', 'CHG-77 domain controller patch');
    await alice.click('#submit');
    const card = alice.locator('article.grant.pending');
    await card.waitFor();
    const id = (await card.getAttribute('data-grant'))!;
    assert.equal(await alice.textContent(`[data-progress="${id}"]`), '0 of 2');
    await checkPage(alice, 'request-pending', counts, { phoneShot: true });
    axeClean('request-pending');

    const bob = (await as(t, 'bob'))!;
    await bob.goto(`${broker.url}/approvals`);
    await ready(bob);
    const req = bob.locator(`#req-${id}`);
    assert.match((await req.textContent()) ?? '', /alice@example\.test asks for demo-dc01/);
    assert.match((await req.textContent()) ?? '', /0 of 2 approvals/);
    assert.match((await req.textContent()) ?? '', /it-team\/domain-controllers-need-two-approvers/);
    assert.match((await req.textContent()) ?? '', /Decide by/);
    await checkPage(bob, 'approvals-inbox', counts, { phoneShot: true });
    axeClean('approvals-inbox');
    await bob.fill(`#comment-${id}`, 'fine by me');
    await bob.click(`[data-approve="${id}"]`);
    await bob.waitForSelector(`#req-${id}`, { state: 'detached' });
    assert.match((await bob.textContent('#notice')) ?? '', /Your approval is recorded/);
    await checkPage(bob, 'approvals-empty', counts);
    axeClean('approvals-empty');

    // The requester's page shows who approved and what they said, without a reload.
    await alice.waitForFunction((g) => document.querySelector(`[data-progress="${g}"]`)?.textContent?.startsWith('1 of 2'), id);
    assert.equal(await alice.textContent(`[data-progress="${id}"]`), '1 of 2 — approved by bob');
    assert.match((await alice.textContent('#notice')) ?? '', /bob approved your request for demo-dc01: “fine by me”\. It needs 1 more approval/);

    const carol = (await as(t, 'carol'))!;
    await carol.goto(`${broker.url}/approvals`);
    await ready(carol);
    assert.match((await carol.textContent(`#req-${id} .approved-by`)) ?? '', /^bob$/);
    await carol.click(`[data-approve="${id}"]`);
    await carol.waitForSelector(`#req-${id}`, { state: 'detached' });
    assert.match((await carol.textContent('#notice')) ?? '', /Approved: alice can connect to demo-dc01 until/);

    await alice.locator(`article.grant.active[data-grant="${id}"]`).waitFor();
    assert.match((await alice.textContent('#notice')) ?? '', /bob and carol approved: access to demo-dc01 is open until/);
    assert.equal((await broker.app.store.getGrant(id as never))?.state, 'active');
  });

  test('deny with a comment: bob refuses, and alice reads who and why on her page and on the grant page', async (t) => {
    const alice = (await as(t, 'alice'))!;
    if (!alice) return;
    await alice.selectOption('#target', 'demo-dc01');
    await alice.selectOption('#duration', '2h');
    await alice.fill('#reason', 'CHG-78 another patch');
    await alice.click('#submit');
    const card = alice.locator('article.grant.pending');
    await card.waitFor();
    const id = (await card.getAttribute('data-grant'))!;
    const bob = (await as(t, 'bob'))!;
    await bob.goto(`${broker.url}/approvals`);
    await ready(bob);
    await bob.fill(`#comment-${id}`, 'not during the change freeze');
    await bob.click(`[data-deny="${id}"]`);
    await bob.waitForSelector(`#req-${id}`, { state: 'detached' });
    await alice.waitForSelector(`#history tr[data-grant="${id}"] .badge[data-state=denied]`);
    assert.equal(await alice.textContent('#notice'), 'bob denied your request for demo-dc01: “not during the change freeze”');
    await checkPage(alice, 'request-denied', counts);
    axeClean('request-denied');
    await alice.goto(`${broker.url}/grants/${id}`);
    await ready(alice);
    assert.match((await alice.textContent('#decisions')) ?? '', /bob denied at .*: “not during the change freeze”/);
    assert.match((await alice.textContent('#decided-by')) ?? '', /denied by bob/);
    await checkPage(alice, 'grant-denied', counts);
    axeClean('grant-denied');
  });

  test('technician: tess is told which policy refused and why; with a ticket her acme request goes to carol and opens', async (t) => {
    const tess = await as(t, 'tess');
    if (!tess) return;
    await tess.selectOption('#target', 'acme-pc01');
    await tess.selectOption('#duration', '4h');
    await tess.fill('#reason', 'printer broken');
    await tess.click('#submit');
    await tess.waitForSelector('#refusal-explain');
    const why = (await tess.textContent('#form-error')) ?? '';
    assert.match(why, /msp\/technicians-cite-ticket/);
    assert.match(why, /the reason must cite one, like "T-4411"/);
    await checkPage(tess, 'request-refused', counts);
    axeClean('request-refused');

    await tess.fill('#reason', 'T-5120 printer broken');
    await tess.click('#submit');
    const card = tess.locator('article.grant.pending');
    await card.waitFor();
    const id = (await card.getAttribute('data-grant'))!;
    const carol = (await as(t, 'carol'))!;
    await carol.goto(`${broker.url}/approvals`);
    await ready(carol);
    assert.match((await carol.textContent(`#req-${id}`)) ?? '', /tess@msp\.example\.test asks for acme-pc01/);
    await carol.fill(`#comment-${id}`, 'go ahead, ticket checked');
    await carol.click(`[data-approve="${id}"]`);
    await tess.locator(`article.grant.active[data-grant="${id}"]`).waitFor();
    assert.match((await tess.textContent('#notice')) ?? '', /carol approved: access to acme-pc01 is open until .*“go ahead, ticket checked”/);
    const rules = await broker.app.firewalls.get('acme-pc01')!.list();
    assert.deepEqual(rules.map((r) => r.source), ['127.0.0.1/32']);
  });

  test("nina: skipping enrolment ends on a page that explains, and signing in again makes her enrol instead of looping", async (t) => {
    const nina = await as(t, 'nina');
    if (!nina) return;
    await nina.goto(`${broker.url}/auth/login?returnTo=%2F`);
    await nina.fill('#login', 'nina');
    await nina.fill('#password', 'nina-demo');
    await nina.click('button[type=submit]');
    await nina.waitForSelector('.qr');
    await nina.click('text=Skip for now');
    await nina.waitForURL(/\/auth\/callback/);
    assert.match((await nina.textContent('main')) ?? '', /needs a second factor/);
    await checkPage(nina, 'sign-in-mfa-required', counts);
    axeClean('sign-in-mfa-required');
    await nina.click('text=Sign in with a second factor');
    await nina.waitForSelector('#password');
    await nina.fill('#login', 'nina');
    await nina.fill('#password', 'nina-demo');
    await nina.click('button[type=submit]');
    await nina.waitForSelector('.qr');
    assert.equal(await nina.locator('text=Skip for now').count(), 0, 'no Skip the second time: that was the loop');
    const secret = ((await nina.textContent('.secret')) ?? '').trim();
    await nina.fill('#otp', new TOTP({ secret: Secret.fromBase32(secret) }).generate());
    await nina.click('button[type=submit]');
    await nina.waitForURL(`${broker.url}/`);
    await ready(nina);
    assert.equal(await nina.textContent('#mfa-status'), 'Verified');
  });

  test('auditor and admin: ada filters the trail by type and user, sees the chain verified, exports; revokes from the admin view', async (t) => {
    const ada = await as(t, 'ada');
    if (!ada) return;
    await ada.goto(`${broker.url}/audit`);
    await ready(ada);
    assert.equal(await ada.getAttribute('#chain', 'data-ok'), 'true');
    await ada.selectOption('#f-type', 'grant.denied');
    await ada.fill('#f-user', 'bob');
    await ada.click('form.filters button[type=submit]');
    await ada.waitForURL(/type=grant\.denied/);
    await ready(ada);
    const rows = await ada.locator('#events tbody tr').evaluateAll((rs) => rs.map((r) => [r.getAttribute('data-type'), r.children[3]?.textContent]));
    assert.ok(rows.length >= 1);
    assert.ok(rows.every(([type, actor]) => type === 'grant.denied' && actor === 'bob'), JSON.stringify(rows));
    assert.match((await ada.getAttribute('#export', 'href')) ?? '', /^\/audit\/export\.jsonl\?.*type=grant\.denied/);
    await checkPage(ada, 'audit-filtered', counts, { phoneShot: true });
    axeClean('audit-filtered');

    // Knocks on the gate, as the watcher audits them: a busy source on the domain controller, one on the PC.
    const at = new Date().toISOString();
    await broker.app.store.audit({ type: 'gate.attempts', actor: 'system:gate', detail: { from: at, to: at, total: 233, sources: 2, overflow: 0, top: [
      { source: '203.0.113.7', target: 'demo-dc01', port: 3389, protocol: 'tcp', count: 212, firstSeen: at, lastSeen: at },
      { source: '198.51.100.23', target: 'demo-pc', port: 3389, protocol: 'tcp', count: 21, firstSeen: at, lastSeen: at },
    ] } });
    await ada.goto(`${broker.url}/admin`);
    await ready(ada);
    assert.match((await ada.textContent('#scan')) ?? '', /No exposure scan is recorded yet/);
    assert.equal(await ada.getAttribute('#attempts-total', 'data-total'), '233');
    assert.equal(await ada.getAttribute('#attempts [aria-current=true]', 'data-since'), '24h');
    assert.equal(await ada.textContent('#attempts-sources tr[data-source="203.0.113.7"] [data-count]'), '212');
    assert.match((await ada.textContent('#gates')) ?? '', /acme-pc01/);
    await checkPage(ada, 'admin', counts, { phoneShot: true });
    axeClean('admin');
    await ada.click('#attempts a[data-since="7d"]');
    await ada.waitForURL(/since=7d/);
    await ready(ada);
    assert.equal(await ada.getAttribute('#attempts [aria-current=true]', 'data-since'), '7d');
    assert.match((await ada.textContent('#attempts-targets')) ?? '', /demo-dc01\s*212/);
    await ada.locator('#attempts').scrollIntoViewIfNeeded();
    await checkPage(ada, 'admin-attempts', counts);
    axeClean('admin-attempts');
    await ada.goto(`${broker.url}/admin`);
    await ready(ada);
    const row = ada.locator('#live tbody tr', { hasText: 'acme-pc01' });
    await row.locator('[data-revoke]').click();
    await ada.waitForSelector('#live tbody tr .badge[data-state=closed]');
    assert.match((await ada.textContent('#notice')) ?? '', /Revoked tess's access to acme-pc01/);
    assert.equal((await broker.app.firewalls.get('acme-pc01')!.list()).length, 0);

    assert.deepEqual(scriptErrors, []);
    assert.deepEqual(chromium!.blocked, [], 'no request left loopback');
  });
});
