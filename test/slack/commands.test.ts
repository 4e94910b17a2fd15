// Every /rdp command and every mistake: the ephemeral answer, Slack's 3-second deadline with a slow backend, retries.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Principal, UserId } from '../../src/domain/index.ts';
import { createMemoryAdapter } from '../../src/firewall/memory.ts';
import { waitFor } from '../helpers/broker.ts';
import { linkOf, slackWorld, TEAM, textOf, type SlackWorld } from './helpers.ts';

const alice: Principal = { sub: 'alice' as UserId, email: 'alice@example.test', name: 'Alice', groups: ['engineers'], mfa: true, amr: ['pwd', 'mfa'], authTime: Math.floor(Date.now() / 1000) };

describe('/rdp commands', () => {
  let w: SlackWorld;
  // A gate that holds the firewall's close until the test opens it: a backend slower than Slack's deadline.
  let gate: Promise<void> | undefined;
  let release: () => void = () => {};

  before(async () => {
    w = await slackWorld({}, {
      firewallFactories: {
        memory: (_cfg, target) => {
          const fw = createMemoryAdapter(`memory:${target.id}`);
          const close = fw.close.bind(fw);
          fw.close = async (refs) => {
            await gate;
            return close(refs);
          };
          return fw;
        },
      },
    });
    // Alice is linked and known to the broker from a recent MFA sign-in (the link journey is tested elsewhere).
    await w.broker.app.slack!.slack.link({ teamId: TEAM, userId: 'UALICE' }, 'alice');
    await w.broker.app.broker.noteSignIn(alice);
  });
  after(async () => {
    release();
    await w?.stop();
  });

  const state = async () => ({
    audit: (await w.broker.app.store.auditEvents({ limit: 100_000 })).length,
    grants: (await w.broker.app.store.listGrants({})).length,
    rules: (await w.broker.app.firewalls.get('lab-pc')!.list()).length,
  });

  const mistakes: [string, string, RegExp][] = [
    ['unknown subcommand', 'opne lab-pc 1h T-1', /`\/rdp opne` is not a command\. Type `\/rdp help`/],
    ['unknown target', 'open nosuch-pc 1h T-1 fix', /unknown target "nosuch-pc".*Type `\/rdp targets` for the list/],
    ['bad duration', 'open lab-pc 2q T-1 fix', /`2q` is not a duration: write it like 30m/],
    ['duration beyond the limit', 'open lab-pc 9h T-1 fix', /duration must be at most 480 minutes/],
    ['missing reason', 'open lab-pc 1h', /Say why: type `\/rdp open lab-pc 1h <reason>`/],
    ['missing target', 'open', /Which machine\?/],
    ['extend without a duration', 'extend g_abcdefghijklmnop', /How much longer\? Type `\/rdp extend g_abcdefghijklmnop 30m`/],
  ];
  for (const [what, text, expected] of mistakes) {
    test(`a mistake (${what}) gets an ephemeral reply naming what to type, within 3 s, and changes nothing`, async () => {
      const before = await state();
      const r = await w.ws.command('UALICE', text);
      assert.equal(r.status, 200);
      assert.ok(r.ms < 3000, `answered in ${r.ms} ms`);
      assert.equal(r.body.response_type, 'ephemeral');
      assert.match(r.body.text, expected);
      assert.deepEqual(await state(), before);
    });
  }

  test('an unlinked user gets a sign-in link instead, within 3 s, and no grant is made', async () => {
    const before = await state();
    const r = await w.ws.command('UBOB', 'open lab-pc 1h T-5 fix');
    assert.ok(r.ms < 3000);
    assert.equal(r.body.response_type, 'ephemeral');
    assert.match(textOf(r.body), /not linked to a Portcullis identity yet/);
    assert.match(linkOf(r.body)!, /^http:\/\/127\.0\.0\.1:\d+\/slack\/link\/[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(await state(), before);
  });

  test('another workspace: refused within 3 s, nothing changed', async () => {
    const before = await state();
    const r = await w.ws.command('UALICE', 'ls', { teamId: 'TSOMEONEELSE' });
    assert.ok(r.ms < 3000);
    assert.match(r.body.text, /not connected to Portcullis/);
    assert.deepEqual(await state(), before);
  });

  test('help, targets and ls answer at once', async () => {
    assert.match((await w.ws.command('UALICE', 'help')).body.text, /\/rdp extend <id> <duration>/);
    const targets = (await w.ws.command('UALICE', 'targets')).body.text as string;
    assert.match(targets, /`lab-pc` Lab PC — up to 8h \(approval beyond 2h\)/);
    assert.match(targets, /`prod-app` .* — up to 4h with approval/);
    assert.match((await w.ws.command('UALICE', 'ls')).body.text, /You have no grants/);
  });

  test('open answers with a single-use confirm link and opens nothing by itself', async () => {
    const before = await state();
    const r = await w.ws.command('UALICE', 'open lab-pc 30m T-7 printer');
    assert.match(textOf(r.body), /on the computer that will connect/);
    assert.match(linkOf(r.body)!, /\/slack\/confirm\//);
    assert.deepEqual(await state(), before);
  });

  test('a Slack retry of the same command (X-Slack-Retry-Num) is acknowledged and not run again', async () => {
    const { grant } = await w.broker.app.broker.requestAccess(alice, { target: 'lab-pc', duration: '10m', reason: 'T-8 retry' }, { channel: 'slack', callerIp: '198.51.100.7' });
    const first = await w.ws.command('UALICE', `extend ${grant.id} 5m`, { triggerId: 'trigger-retry-1' });
    assert.match(first.body.text, /extended/);
    const retry = await w.ws.command('UALICE', `extend ${grant.id} 5m`, { triggerId: 'trigger-retry-1', headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' } });
    assert.equal(retry.status, 200);
    assert.equal(retry.body, undefined, 'an empty 200: Slack shows nothing twice');
    const g = await w.broker.app.store.getGrant(grant.id);
    assert.equal(g!.durationSeconds, 15 * 60, 'extended once, not twice');
    assert.equal((await w.broker.app.store.auditEvents({ grant: grant.id })).filter((e) => e.type === 'grant.extended').length, 1);
  });

  test('a backend slower than 3 s: "working on it" within 3 s, the result through response_url later', async () => {
    const { grant } = await w.broker.app.broker.requestAccess(alice, { target: 'lab-pc', duration: '10m', reason: 'T-9 slow' }, { channel: 'slack', callerIp: '198.51.100.8' });
    gate = new Promise<void>((r) => (release = r));
    const r = await w.ws.command('UALICE', `close ${grant.id}`);
    assert.ok(r.ms < 3000, `acknowledged in ${r.ms} ms`);
    assert.match(r.body.text, /Working on it/);
    assert.equal((await w.broker.app.store.getGrant(grant.id))!.state, 'closing', 'the close is under way, held by the backend');
    release();
    gate = undefined;
    // The reply replaces the "working" message through the command's response_url.
    const reply = await waitFor('late reply', async () => w.ws.messages.find((m) => m.ephemeralTo === 'UALICE' && m.edits > 0 && m.text.includes(grant.id)));
    assert.match(reply.text, /is closed/);
    assert.ok(w.ws.calls.some((c) => c.method === 'response_url' && c.body.replace_original === true));
  });

  test('unlink removes the link and is audited; the next command asks to link', async () => {
    await w.broker.app.slack!.slack.link({ teamId: TEAM, userId: 'UCAROL' }, 'carol');
    const r = await w.ws.command('UCAROL', 'unlink');
    assert.match(r.body.text, /Unlinked/);
    const ev = (await w.broker.app.store.auditEvents({ limit: 100_000 })).filter((e) => e.type === 'slack.unlinked').at(-1);
    assert.equal(ev?.actor, 'carol');
    assert.deepEqual(ev?.detail, { team: TEAM, user: 'UCAROL' });
    assert.match(textOf((await w.ws.command('UCAROL', 'ls')).body), /not linked/);
  });
});
