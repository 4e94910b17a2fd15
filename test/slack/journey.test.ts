// The whole Slack journey in Chromium on the demo's simulated workspace (npm start's /dev/slack): unlinked → link →
// /rdp open → confirm from this browser with an MFA session → the rule admits this browser's address → the Slack
// message is updated; then a request waiting for two approvers. Screenshots go to PORTCULLIS_SCREENSHOTS (or /tmp).
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { DEMO_USERS, totpFor } from '../../src/dev/idp.ts';
import { startBroker, tempDir, testConfig, waitFor, type RunningBroker } from '../helpers/broker.ts';
import { launchChromium, type Browser } from '../helpers/browser.ts';

// Functions passed to waitForFunction run in the page, where `document` exists.
declare const document: { querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> & Iterable<{ textContent: string | null }> };

const SHOTS = process.env.PORTCULLIS_SCREENSHOTS ?? tmpdir();
const TARGETS = [
  { id: 'demo-pc', description: 'Demo Windows PC', connect: 'demo-pc.example.test:3389', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } },
  { id: 'demo-dc01', description: 'Demo domain controller', connect: 'demo-dc01.example.test:3389', tags: { env: 'prod', customer: 'internal', role: 'domain-controller' }, firewall: { kind: 'memory' } },
];

async function passIdp(page: Page, user: string): Promise<void> {
  const u = DEMO_USERS.find((x) => x.id === user)!;
  await page.waitForSelector('#password');
  await page.fill('#login', user);
  await page.fill('#password', u.password);
  await page.click('button[type=submit]');
  await page.waitForSelector('#otp');
  await page.fill('#otp', totpFor(u).generate());
  await page.click('button[type=submit]');
}

/** Types a command in the simulated Slack page and waits for the bot's answer. */
async function slash(page: Page, text: string): Promise<void> {
  const before = await page.locator('.msg:not(.user)').count();
  await page.fill('#text', text);
  await page.click('#composer button');
  await page.waitForFunction((n) => document.querySelectorAll('.msg:not(.user)').length > n, before);
}

/** Clicks the last link button of the conversation; the link opens in a new tab. */
async function openLink(context: BrowserContext, page: Page, label: RegExp): Promise<Page> {
  const popup = context.waitForEvent('page');
  await page.locator('.actions button', { hasText: label }).last().click();
  const p = await popup;
  await p.waitForLoadState();
  return p;
}

describe('Slack journey in Chromium on the simulated workspace', () => {
  let alice: Browser | undefined;
  let bob: Browser | undefined;
  let broker: RunningBroker;
  let cleanup: () => void;
  let alicePage: Page | undefined;

  before(async () => {
    const t = tempDir('portcullis-slack-journey-');
    cleanup = t.cleanup;
    broker = await startBroker(testConfig(t.dir, { dev: { embeddedIdp: true, simulatedSlack: true }, targets: TARGETS }));
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await broker?.stop();
    cleanup?.();
  });

  test('unlinked → link → /rdp open → confirm in this browser → the rule admits its address → the Slack reply is updated', async (t) => {
    alice = await launchChromium(t);
    if (!alice) return;
    const page = await alice.context.newPage();
    alicePage = page;
    await page.goto(`${broker.url}/dev/slack`);
    await page.waitForSelector('body[data-ready=true]');
    assert.match((await page.textContent('#sim')) ?? '', /SIMULATED SLACK/);

    // Unlinked: the first command answers with a sign-in link.
    await slash(page, '/rdp open demo-pc 30m T-1 printer queue');
    assert.match((await page.locator('.msg').last().textContent()) ?? '', /not linked to a Portcullis identity yet/);
    await page.screenshot({ path: join(SHOTS, 'slack-unlinked.png') });
    const link = await openLink(alice.context, page, /Sign in and link/);
    await passIdp(link, 'alice');
    await link.waitForSelector('#confirm');
    assert.match((await link.textContent('main')) ?? '', /Link Slack user @alice \(UALICE in workspace TDEMO0001\) to alice@example\.test/);
    await link.screenshot({ path: join(SHOTS, 'slack-link.png') });
    await link.click('#confirm');
    await link.waitForSelector('#linked');
    await link.close();
    // The link reply in Slack is replaced by "Linked".
    await page.waitForFunction(() => [...document.querySelectorAll('.msg')].some((m) => /Linked to alice@example\.test/.test(m.textContent ?? '')));

    // Now the request: a confirm link, opened from "the computer that will connect" (this browser).
    await slash(page, '/rdp open demo-pc 30m T-1 printer queue');
    assert.match((await page.locator('.msg').last().textContent()) ?? '', /on the computer that will connect/);
    const fw = broker.app.firewalls.get('demo-pc')!;
    assert.equal((await fw.list()).length, 0, 'nothing opens from Slack alone');
    const confirm = await openLink(alice.context, page, /Confirm access to demo-pc/);
    await confirm.waitForSelector('#confirm');
    assert.equal(await confirm.textContent('[data-fact="target"]'), 'demo-pc');
    assert.equal(await confirm.textContent('[data-fact="duration"]'), '30m');
    assert.equal(await confirm.textContent('[data-fact="reason"]'), 'T-1 printer queue');
    assert.equal(await confirm.textContent('[data-fact="address to admit"]'), '127.0.0.1');
    await confirm.screenshot({ path: join(SHOTS, 'slack-confirm.png') });
    await confirm.click('#confirm');
    await confirm.waitForSelector('#outcome[data-state=active]');
    const rules = await fw.list();
    assert.equal(rules.length, 1);
    assert.equal(rules[0]!.source, '127.0.0.1/32', "the rule admits this browser's address only");
    const grantId = (await confirm.getAttribute('#outcome', 'data-grant'))!;
    const g = await broker.app.store.getGrant(grantId as never);
    assert.equal(g?.channel, 'slack');
    await confirm.close();

    // The Slack reply is updated in place, and a DM says how to connect.
    await page.waitForFunction((id) => [...document.querySelectorAll('.msg.ephemeral')].some((m) => m.textContent!.includes(`Access to demo-pc is open until`) && m.textContent!.includes(id) && m.textContent!.includes('(edited)')), grantId);
    await page.click('nav button[data-channel=DM]');
    await page.waitForFunction(() => [...document.querySelectorAll('.msg')].some((m) => /Connect with Remote Desktop to demo-pc\.example\.test:3389/.test(m.textContent ?? '')));
    await page.screenshot({ path: join(SHOTS, 'slack-active.png') });
    assert.deepEqual(alice.blocked, [], 'no request left loopback');
  });

  test('a domain-controller request waits for two approvers; Bob approves from the channel: "1 of 2"', async (t) => {
    if (!alice || !alicePage) return t.skip('needs the first test');
    const page = alicePage;
    await page.click('nav button[data-channel=DM]');
    await slash(page, '/rdp open demo-dc01 1h CHG-7 patch DC');
    const confirm = await openLink(alice.context, page, /Confirm access to demo-dc01/);
    await confirm.click('#confirm');
    await confirm.waitForSelector('#outcome[data-state=pending]');
    await confirm.close();

    bob = await launchChromium(t);
    if (!bob) return;
    const bp = await bob.context.newPage();
    await bp.goto(`${broker.url}/dev/slack/`);
    await bp.waitForSelector('body[data-ready=true]');
    await bp.selectOption('#user', 'UBOB');
    // Alice's conversation goes away once the page shows Bob's.
    await bp.waitForFunction(() => document.querySelectorAll('.msg').length === 0);
    await slash(bp, '/rdp link');
    const link = await openLink(bob.context, bp, /Sign in and link/);
    await passIdp(link, 'bob');
    await link.click('#confirm');
    await link.waitForSelector('#linked');
    await link.close();

    await bp.click('nav button[data-channel=CAPPROVALS]');
    const card = bp.locator('.msg', { hasText: 'demo-dc01' }).last();
    await card.waitFor();
    assert.match((await card.textContent()) ?? '', /0 of 2 approvals/);
    await card.locator('button[data-action=approve]').click();
    await bp.waitForFunction(() => [...document.querySelectorAll('.msg')].some((m) => /1 of 2 approvals \(@bob at/.test(m.textContent ?? '')));
    await bp.screenshot({ path: join(SHOTS, 'slack-approvals.png') });
    const pending = await waitFor('one approval', async () => {
      const gs = await broker.app.store.listGrants({ states: ['pending'] });
      const a = gs.length ? await broker.app.store.approvals(gs[0]!.id) : [];
      return a.length === 1 && a;
    });
    assert.equal(pending[0]!.approver, 'bob');
    assert.deepEqual(bob.blocked, []);
  });
});
