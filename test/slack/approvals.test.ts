// Approving from Slack keeps MFA: a real oidc-provider, the Slack stand-in, buttons clicked as Slack sends them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { GrantId } from '../../src/domain/index.ts';
import { waitFor } from '../helpers/broker.ts';
import { CookieJar, startTestIdp, type LoginChoice, type TestIdp } from '../helpers/idp.ts';
import { APPROVALS, browse, freePort, linkOf, slackWorld, submitConfirm, textOf, type SlackWorld } from './helpers.ts';

describe('approvals by button', () => {
  let idp: TestIdp;
  let w: SlackWorld;
  const jars = new Map<string, CookieJar>();

  before(async () => {
    const port = await freePort();
    idp = await startTestIdp({
      webRedirectUris: [`http://127.0.0.1:${port}/auth/callback`],
      users: {
        alice: { email: 'alice@example.test', name: 'Alice', groups: ['engineers'] },
        bob: { email: 'bob@example.test', name: 'Bob', groups: ['approvers'] },
        carol: { email: 'carol@example.test', name: 'Carol', groups: ['approvers'] },
        mallory: { email: 'mallory@example.test', name: 'Mallory', groups: [] },
      },
    });
    w = await slackWorld({
      server: { listen: `127.0.0.1:${port}` },
      dev: {},
      oidc: { issuer: idp.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret } }, scopes: ['openid', 'email', 'profile', 'groups'] },
    });
  });
  after(async () => {
    await w?.stop();
    await idp?.close();
  });

  /** `/rdp link` in Slack, then the link opened and confirmed in a browser signed in as `choice.user`. */
  async function link(slackUser: string, choice: LoginChoice): Promise<CookieJar> {
    const jar = new CookieJar();
    const r = await w.ws.command(slackUser, 'link');
    const url = linkOf(r.body)!;
    assert.match(url, /\/slack\/link\//);
    const page = await browse(jar, idp, url, choice);
    assert.equal(page.status, 200, page.html);
    assert.match(page.html, new RegExp(`Link Slack user @${choice.user}`));
    const done = await submitConfirm(jar, idp, page, choice);
    assert.match(done.html, /id="linked"/, done.html);
    jars.set(choice.user, jar);
    return jar;
  }

  /** Alice asks through Slack and confirms in her browser; returns the pending grant id. */
  async function request(target: string, reason: string): Promise<GrantId> {
    const r = await w.ws.command('UALICE', `open ${target} 1h ${reason}`);
    const page = await browse(jars.get('alice')!, idp, linkOf(r.body)!, { user: 'alice' });
    assert.match(page.html, /Confirm access/);
    const done = await submitConfirm(jars.get('alice')!, idp, page, { user: 'alice' });
    const id = /data-grant="([^"]+)"/.exec(done.html)?.[1];
    assert.ok(id, done.html);
    assert.match(done.html, /data-state="pending"/);
    return id as GrantId;
  }

  const channelMsg = (id: string) => w.ws.messages.find((m) => m.channel === APPROVALS && m.text.includes(id));
  const lastReplyTo = (user: string, since: number) => w.ws.messages.filter((m) => m.ephemeralTo === user).slice(since).at(-1);

  test('links are audited; a linked requester gets a pending request posted to the approvals channel with buttons', async () => {
    await link('UALICE', { user: 'alice' });
    await link('UBOB', { user: 'bob' });
    const linked = (await w.broker.app.store.auditEvents({ limit: 1000 })).filter((e) => e.type === 'slack.linked');
    assert.deepEqual(linked.map((e) => [e.actor, e.detail?.user]), [['alice', 'UALICE'], ['bob', 'UBOB']]);
    const id = await request('prod-app', 'CHG-100 deploy');
    const msg = await waitFor('channel message', async () => channelMsg(id));
    const text = textOf(msg);
    assert.match(text, /<@UALICE>/);
    assert.match(text, /prod-app/);
    assert.match(text, /CHG-100 deploy/);
    assert.match(text, /127\.0\.0\.1\/32/);
    assert.match(text, /engineers-request-internal/);
    assert.match(text, /0 of 1 approvals/);
    assert.ok(text.includes('Approve') && text.includes('Deny'));
  });

  test('a confirm link refuses a POST without the session CSRF token and another identity; it stays usable', async () => {
    const r = await w.ws.command('UALICE', 'open lab-pc 30m T-200 csrf');
    const url = linkOf(r.body)!;
    const page = await browse(jars.get('alice')!, idp, url, { user: 'alice' });
    assert.match(page.html, /Address to admit/);
    // The web's Eta shell under the one helmet CSP: no inline style or script on a Slack page.
    assert.doesNotMatch(page.html, /<style|style=|<script>/);
    const head = await jars.get('alice')!.fetch(url, {});
    const csp = head.headers.get('content-security-policy') ?? '';
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(head.headers.get('content-security-policy')?.split('default-src').length, 2, 'one CSP header, not two');
    const forged = await jars.get('alice')!.fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: 'forged' }) });
    assert.equal(forged.status, 403);
    assert.match(await forged.text(), /CSRF_FAILED/);
    // Bob, signed in in his own browser, cannot use Alice's link.
    const other = await browse(jars.get('bob')!, idp, url, { user: 'bob' });
    assert.equal(other.status, 403);
    assert.match(other.html, /data-code="WRONG_IDENTITY"/);
    assert.equal((await w.broker.app.store.listGrants({ requester: 'alice' as never })).length, 1, 'nothing was requested');
    const done = await submitConfirm(jars.get('alice')!, idp, page, { user: 'alice' });
    assert.match(done.html, /data-state="active"/);
    const again = await submitConfirm(jars.get('alice')!, idp, page, { user: 'alice' });
    assert.equal(again.status, 404, 'single use');
    const oversized = await fetch(`${w.broker.url}/slack/commands`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x'.repeat(70_000) });
    assert.equal(oversized.status, 413);
  });

  test('self-approval is refused; an unlinked approver is sent to link; nothing changes', async () => {
    const id = (await w.broker.app.store.listGrants({ states: ['pending'] }))[0]!.id;
    const msg = channelMsg(id)!;
    const n = w.ws.messages.filter((m) => m.ephemeralTo === 'UALICE').length;
    await w.ws.click('UALICE', msg.ts, 'approve');
    const self = await waitFor('self-approval reply', async () => lastReplyTo('UALICE', n));
    assert.match(textOf(self), /SELF_APPROVAL/);
    const m0 = w.ws.messages.filter((m) => m.ephemeralTo === 'UMALLORY').length;
    await w.ws.click('UMALLORY', msg.ts, 'approve');
    const unlinked = await waitFor('link reply', async () => lastReplyTo('UMALLORY', m0));
    assert.match(textOf(unlinked), /needs a linked Slack user/);
    assert.match(linkOf(unlinked)!, /\/slack\/link\//);
    assert.equal((await w.broker.app.store.getGrant(id))!.state, 'pending');
    assert.deepEqual(await w.broker.app.store.approvals(id), []);
  });

  test('a fresh approver approves by button: it opens, and the channel message says who and that it is active', async () => {
    const id = (await w.broker.app.store.listGrants({ states: ['pending'] }))[0]!.id;
    const msg = channelMsg(id)!;
    const n = w.ws.messages.filter((m) => m.ephemeralTo === 'UBOB').length;
    const r = await w.ws.click('UBOB', msg.ts, 'approve');
    assert.equal(r.status, 200);
    await waitFor('active', async () => (await w.broker.app.store.getGrant(id))!.state === 'active');
    assert.equal((await w.broker.app.firewalls.get('prod-app')!.list()).length, 1);
    const updated = await waitFor('message updated to active', async () => /Active/.test(textOf(channelMsg(id))) && channelMsg(id));
    assert.match(textOf(updated), /approved by <@UBOB> at <!date\^/);
    assert.doesNotMatch(textOf(updated), /Approve\nDeny/);
    assert.match(textOf(await waitFor('bob reply', async () => lastReplyTo('UBOB', n))), /You approved/);
    const approved = (await w.broker.app.store.auditEvents({ grant: id })).find((e) => e.type === 'grant.approval_recorded');
    assert.equal(approved?.actor, 'bob');
    // The requester hears that it is open, and how to connect.
    await waitFor('alice DM opened', async () => w.ws.messages.some((m) => m.channel === 'DUALICE' && !m.ephemeralTo && /is open/.test(textOf(m)) && textOf(m).includes('prod-app.example.test:3389')));
  });

  test('a stale approver gets a step-up link; after a fresh sign-in the approval is recorded with no second click', async () => {
    // Carol signed in two hours ago: MFA within oidc.mfa.maxAge (12 h), but older than the approval policy's hour.
    await link('UCAROL', { user: 'carol', authTime: Math.floor(Date.now() / 1000) - 7200 });
    const id = await request('prod-app', 'CHG-101 hotfix');
    const msg = await waitFor('channel message', async () => channelMsg(id));
    const n = w.ws.messages.filter((m) => m.ephemeralTo === 'UCAROL').length;
    await w.ws.click('UCAROL', msg.ts, 'approve');
    const reply = await waitFor('step-up reply', async () => lastReplyTo('UCAROL', n));
    assert.match(textOf(reply), /too old/);
    const stepUp = linkOf(reply)!;
    assert.match(stepUp, /\/slack\/act\//);
    assert.equal((await w.broker.app.store.getGrant(id))!.state, 'pending', 'the stale click counted for nothing');
    assert.deepEqual(await w.broker.app.store.approvals(id), []);

    // She opens it in her browser: the broker sends her to sign in afresh (max_age=0) and then records the approval.
    const page = await browse(jars.get('carol')!, idp, stepUp, { user: 'carol' });
    assert.equal(page.status, 200, page.html);
    assert.match(page.html, /id="outcome" data-state="active"/);
    const approvals = await w.broker.app.store.approvals(id);
    assert.deepEqual(approvals.map((a) => a.approver), ['carol']);
    const logins = (await w.broker.app.store.auditEvents({ limit: 10_000 })).filter((e) => e.type === 'auth.login' && e.actor === 'carol');
    assert.equal(logins.at(-1)?.detail?.stepUp, true);
    // The link was single-use.
    assert.equal((await browse(jars.get('carol')!, idp, stepUp, { user: 'carol' })).status, 404);
  });

  test('N = 2: the message shows "1 of 2" after the first approval, then active naming both approvers', async () => {
    const id = await request('prod-dc', 'CHG-102 patch DC');
    assert.equal((await w.broker.app.store.getGrant(id))!.requiredApprovals, 2);
    const msg = await waitFor('channel message', async () => channelMsg(id));
    assert.match(textOf(msg), /0 of 2 approvals/);
    await w.ws.click('UBOB', msg.ts, 'approve');
    const one = await waitFor('1 of 2', async () => /1 of 2 approvals/.test(textOf(channelMsg(id))) && channelMsg(id));
    assert.match(textOf(one), /<@UBOB> at/);
    assert.equal((await w.broker.app.store.getGrant(id))!.state, 'pending');
    // The same approver twice does not count twice.
    const n = w.ws.messages.filter((m) => m.ephemeralTo === 'UBOB').length;
    await w.ws.click('UBOB', msg.ts, 'approve');
    assert.match(textOf(await waitFor('conflict reply', async () => lastReplyTo('UBOB', n))), /CONFLICT/);
    await w.ws.click('UCAROL', msg.ts, 'approve');
    const active = await waitFor('active naming both', async () => /Active/.test(textOf(channelMsg(id))) && channelMsg(id));
    assert.match(textOf(active), /approved by <@UBOB> at .*, <@UCAROL> at /);
    assert.equal((await w.broker.app.store.getGrant(id))!.state, 'active');
  });

  test('deny by button opens a modal; its comment reaches the channel message and the requester', async () => {
    const id = await request('prod-app', 'CHG-103 maybe');
    const msg = await waitFor('channel message', async () => channelMsg(id));
    await w.ws.click('UBOB', msg.ts, 'deny');
    const [viewId, view] = await waitFor('modal', async () => [...w.ws.views].find(([, v]) => v.user === 'UBOB' && v.view.callback_id === 'deny'));
    assert.match(JSON.stringify(view.view), new RegExp(id));
    const r = await w.ws.submitView('UBOB', viewId, { comment: 'not during the freeze' });
    assert.equal(r.status, 200);
    assert.equal(r.body.response_action, 'clear');
    assert.equal((await w.broker.app.store.getGrant(id))!.state, 'denied');
    await waitFor('denied in channel', async () => /Denied\* by <@UBOB> at .*not during the freeze/.test(textOf(channelMsg(id))));
    await waitFor('alice told', async () => w.ws.messages.some((m) => m.channel === 'DUALICE' && /was denied: “not during the freeze”/.test(textOf(m))));
  });
});
