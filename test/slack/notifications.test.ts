// Notifications through the durable outbox: requester DMs (open, 5 minutes left with Extend, closed), a Slack
// outage that delays no grant and loses or repeats no message, 429 + Retry-After, and the signed webhook.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Principal, UserId } from '../../src/domain/index.ts';
import { webhookSignature } from '../../src/notify/webhook.ts';
import { waitFor } from '../helpers/broker.ts';
import { createLogger } from '../../src/log.ts';
import { IdleWatcher } from '../../src/broker/idle.ts';
import { ALERTS, APPROVALS, BOT_TOKEN, SIGNING_SECRET, slackWorld, TEAM, textOf, type SlackWorld } from './helpers.ts';

const principal = (sub: string, groups = ['engineers']): Principal => ({ sub: sub as UserId, email: `${sub}@example.test`, name: sub, groups, mfa: true, amr: ['pwd', 'mfa'], authTime: Math.floor(Date.now() / 1000) });
const alice = principal('alice');

describe('requester notifications with a controlled clock', () => {
  let w: SlackWorld;
  let offset = 0;
  before(async () => {
    w = await slackWorld({}, { clock: () => Date.now() + offset });
    w.ws.o.clock = () => Date.now() + offset;
    await w.broker.app.slack!.slack.link({ teamId: TEAM, userId: 'UALICE' }, 'alice');
    await w.broker.app.broker.noteSignIn(alice);
  });
  after(async () => w?.stop());

  const dms = () => w.ws.messages.filter((m) => m.channel === 'DUALICE' && !m.ephemeralTo);

  test('open (how to connect), 5 minutes before expiry (Extend goes through policy), and closed', async () => {
    const { grant } = await w.broker.app.broker.requestAccess(alice, { target: 'lab-pc', duration: '1h', reason: 'T-20 patch' }, { channel: 'web', callerIp: '198.51.100.20' });
    assert.equal(grant.state, 'active');
    const opened = await waitFor('open DM', async () => dms().find((m) => /is open/.test(textOf(m))));
    assert.match(textOf(opened), /Connect with Remote Desktop to `lab-pc\.example\.test:3389`/);
    assert.match(textOf(opened), /198\.51\.100\.20\/32/);
    assert.equal(dms().filter((m) => /closes at/.test(textOf(m))).length, 0, 'no warning an hour early');

    // 56 minutes later: the warning, once, with Extend buttons.
    offset = 56 * 60_000;
    w.broker.app.slack!.outbox.kick();
    const warning = await waitFor('5-minute warning', async () => dms().find((m) => /closes at/.test(textOf(m))));
    assert.match(textOf(warning), /Extend 30 min/);
    w.broker.app.slack!.outbox.kick();
    await w.broker.app.slack!.outbox.idle();
    assert.equal(dms().filter((m) => /closes at/.test(textOf(m))).length, 1, 'warned once');

    // Extend by button: policy permits 1h30m in all (engineers self-serve up to 2h).
    await w.ws.click('UALICE', warning.ts, 'extend');
    await waitFor('extended', async () => (await w.broker.app.store.getGrant(grant.id))!.durationSeconds === 90 * 60).catch((e) => {
      console.log(JSON.stringify(w.ws.messages.filter((m) => m.ephemeralTo === 'UALICE').map(textOf)), JSON.stringify(w.ws.calls.slice(-5)));
      throw e;
    });
    const ext = (await w.broker.app.store.auditEvents({ grant: grant.id })).find((e) => e.type === 'grant.extended');
    assert.equal(ext?.actor, 'alice');
    // A second extension of 1 h would make 2h30m: refused by policy, told to her, nothing changed.
    await waitFor('extended reply', async () => w.ws.messages.some((m) => m.ephemeralTo === 'UALICE' && /extended; it now closes/.test(m.text)));
    const n = w.ws.messages.filter((m) => m.ephemeralTo === 'UALICE').length;
    await w.ws.click('UALICE', warning.ts, 'extend_1h');
    const refused = await waitFor('refusal', async () => w.ws.messages.filter((m) => m.ephemeralTo === 'UALICE').slice(n).at(-1));
    assert.match(textOf(refused), /POLICY_DENIED/);
    assert.equal((await w.broker.app.store.getGrant(grant.id))!.durationSeconds, 90 * 60);

    // Past the new expiry: the reaper closes it and she is told.
    offset = 91 * 60_000;
    await waitFor('closed', async () => (await w.broker.app.store.getGrant(grant.id))!.state === 'closed', 15_000);
    const closed = await waitFor('closed DM', async () => dms().find((m) => /is closed \(expired\)/.test(textOf(m))));
    assert.ok(closed);
    assert.equal(dms().filter((m) => /is open/.test(textOf(m))).length, 1, 'the open message was sent once');
  });
});

describe('a Slack outage', () => {
  let w: SlackWorld;
  const logs: string[] = [];
  before(async () => {
    w = await slackWorld({}, { log: createLogger('debug', (l) => void logs.push(l)) });
    await w.broker.app.slack!.slack.link({ teamId: TEAM, userId: 'UALICE' }, 'alice');
    await w.broker.app.broker.noteSignIn(alice);
  });
  after(async () => w?.stop());

  test('delays no grant; once Slack is back every notification arrives exactly once, 429 answered after Retry-After', async () => {
    w.ws.mode = 'unreachable';
    const granted: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { grant, outcome } = await w.broker.app.broker.requestAccess(alice, { target: 'lab-pc', duration: '10m', reason: `T-3${i} outage` }, { channel: 'api', callerIp: `198.51.100.${30 + i}` });
      assert.equal(outcome, 'active', 'the grant opened while Slack was unreachable');
      granted.push(grant.id);
    }
    const pending = await w.broker.app.broker.requestAccess(alice, { target: 'prod-app', duration: '1h', reason: 'CHG-40 outage' }, { channel: 'api', callerIp: '198.51.100.40' });
    assert.equal(pending.outcome, 'pending');
    await w.broker.app.broker.revoke(alice, granted[0] as never);
    // Retries happen (with backoff) while it is down.
    await waitFor('retries', async () => (await w.broker.app.slack!.outbox.rows()).some((r) => r.attempts >= 2));
    w.ws.mode = 'error';
    await waitFor('retries against 503', async () => (await w.broker.app.slack!.outbox.rows()).some((r) => r.attempts >= 4));
    assert.equal(w.ws.messages.filter((m) => !m.ephemeralTo).length, 0);
    // Back, but rate limiting the first two calls.
    w.ws.throttle = { next: 2, retryAfter: 1 };
    w.ws.mode = 'up';
    await waitFor('all delivered', async () => (await w.broker.app.slack!.outbox.rows()).every((r) => r.state === 'done'), 20_000);

    const dm = w.ws.messages.filter((m) => m.channel === 'DUALICE' && !m.ephemeralTo).map(textOf);
    const opened = dm.filter((t) => /is open/.test(t));
    assert.equal(opened.length, 3, 'one open message per grant');
    for (let i = 0; i < 3; i++) assert.equal(opened.filter((t) => t.includes(`198.51.100.${30 + i}/32`)).length, 1);
    assert.equal(dm.filter((t) => /is closed \(closed early\)/.test(t)).length, 1);
    assert.equal(dm.filter((t) => /waits for an approver/.test(t)).length, 1);
    const channel = w.ws.messages.filter((m) => m.channel === APPROVALS);
    assert.equal(channel.length, 1, 'one approvals message for the pending request');
    assert.match(textOf(channel[0]), new RegExp(pending.grant.id));

    // The calls answered 429 were tried again only after Retry-After (1 s).
    const limited = w.ws.calls.filter((c) => c.status === 429);
    assert.equal(limited.length, 2);
    const same = (c: { body: unknown }) => JSON.stringify(c.body) === JSON.stringify(limited[0]!.body);
    const firstOk = w.ws.calls.find((c) => c.status === 200 && c.at >= limited[0]!.at && same(c))!;
    assert.ok(firstOk.at - limited[0]!.at >= 950, `waited ${firstOk.at - limited[0]!.at} ms after a 429 with Retry-After: 1`);
  });

  test('a message Slack refuses for good (unknown channel) is given up, and does not hold back the others', async () => {
    await w.broker.app.slack!.slack.link({ teamId: TEAM, userId: 'UGHOST' }, 'ghost');
    const ghost = principal('ghost');
    await w.broker.app.broker.noteSignIn(ghost);
    const a = await w.broker.app.broker.requestAccess(ghost, { target: 'lab-pc', duration: '10m', reason: 'T-50' }, { channel: 'api', callerIp: '198.51.100.50' });
    const b = await w.broker.app.broker.requestAccess(alice, { target: 'lab-pc', duration: '10m', reason: 'T-51' }, { channel: 'api', callerIp: '198.51.100.51' });
    await waitFor('alice told', async () => w.ws.messages.some((m) => m.channel === 'DUALICE' && textOf(m).includes('198.51.100.51/32')));
    const rows = await w.broker.app.slack!.outbox.rows({ grantId: a.grant.id });
    await waitFor('ghost given up', async () => (await w.broker.app.slack!.outbox.rows({ grantId: a.grant.id })).some((r) => r.state === 'dead'));
    assert.ok(rows.length >= 1);
    assert.match((await w.broker.app.slack!.outbox.rows({ grantId: a.grant.id })).find((r) => r.state === 'dead')!.lastError!, /channel_not_found/);
    assert.ok(b.grant.id);
  });

  test('neither the bot token nor the signing secret reached the log or the audit trail', async () => {
    assert.ok(logs.some((l) => /notifications: gave up on one/.test(l)), 'the log did record the failures');
    const audit = JSON.stringify(await w.broker.app.store.auditEvents({ limit: 100_000 }));
    for (const secret of [BOT_TOKEN, SIGNING_SECRET]) {
      assert.ok(!logs.join('\n').includes(secret));
      assert.ok(!audit.includes(secret));
    }
  });
});

describe('the generic webhook notifier', () => {
  let w: SlackWorld;
  let receiver: Server;
  const got: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  let failFirst = 1;
  const secret = 'webhook-secret-0123456789';
  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (failFirst-- > 0) return void res.writeHead(500).end();
        got.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    w = await slackWorld({ slack: { webhooks: [{ url, secret }] } });
  });
  after(async () => {
    await w?.stop();
    receiver.closeAllConnections();
    await new Promise<void>((r) => receiver.close(() => r()));
  });

  test('every grant event is posted once, in order, as JSON with an HMAC-SHA256 signature; a 500 is retried', async () => {
    const { grant } = await w.broker.app.broker.requestAccess(alice, { target: 'lab-pc', duration: '10m', reason: 'T-60 hook' }, { channel: 'api', callerIp: '198.51.100.60' });
    await w.broker.app.broker.revoke(alice, grant.id);
    const types = ['grant.requested', 'grant.approved', 'rule.opening', 'rule.opened', 'grant.revoked', 'rule.closed', 'grant.closed'];
    await waitFor('all events', async () => got.length >= types.length);
    await w.broker.app.slack!.outbox.idle();
    const events = got.map((g) => JSON.parse(g.body));
    assert.deepEqual(events.map((e) => e.type), types);
    assert.ok(events.every((e) => e.grant === grant.id));
    for (const g of got) {
      const ts = String(g.headers['x-portcullis-timestamp']);
      assert.equal(g.headers['x-portcullis-signature'], webhookSignature(secret, ts, g.body));
      assert.equal(g.headers['content-type'], 'application/json');
    }
    assert.equal(new Set(got.map((g) => g.headers['x-portcullis-delivery'])).size, got.length, 'no event twice');
    assert.ok(!got.some((g) => g.body.includes(secret)));
  });
});

describe('watch alerts to slack.alertChannel, and the idle close told to the requester', () => {
  let w: SlackWorld;
  let offset = 0;
  before(async () => {
    w = await slackWorld({ slack: { alertChannel: ALERTS } }, { clock: () => Date.now() + offset });
    await w.broker.app.slack!.slack.link({ teamId: TEAM, userId: 'UALICE' }, 'alice');
    await w.broker.app.broker.noteSignIn(alice);
  });
  after(async () => w?.stop());
  const inChannel = () => w.ws.messages.filter((m) => m.channel === ALERTS);
  const settled = async () => {
    w.broker.app.slack!.outbox.kick();
    await w.broker.app.slack!.outbox.idle();
  };

  test('gate.alert (rate and open window) and exposure.detected are posted once each to the alert channel, naming target, source, port and counts', async () => {
    // As the attempt watcher and the exposure schedule audit them (their own tests drive them from nft and EC2).
    const store = w.broker.app.store;
    await store.audit({ type: 'gate.alert', actor: 'system:gate', target: 'prod-dc', sourceIp: '203.0.113.7', port: 3389, detail: { kind: 'rate', source: '203.0.113.7', target: 'prod-dc', port: 3389, protocol: 'tcp', count: 180, perMinute: 360, limit: 60 } });
    await store.audit({ type: 'gate.alert', actor: 'system:gate', target: 'lab-pc', sourceIp: '198.51.100.9', port: 3389, detail: { kind: 'open-window', source: '198.51.100.9', target: 'lab-pc', port: 3389, protocol: 'tcp', count: 12, openFor: [{ grant: 'g_0123456789abcdef', source: '192.0.2.10/32' }] } });
    await store.audit({ type: 'exposure.detected', actor: 'system:exposure', ruleRef: 'eu-west-1/sg-0abc/sgr-0def', port: 3389, detail: { region: 'eu-west-1', groupId: 'sg-0abc', ruleId: 'sgr-0def', source: '0.0.0.0/0', protocol: 'tcp', fromPort: 3389, toPort: 3389, why: 'world', attachments: [{ networkInterfaceId: 'eni-01', instanceId: 'i-0123' }] } });
    await waitFor('three alerts', async () => inChannel().length >= 3);
    await settled();
    const texts = inChannel().map(textOf);
    assert.equal(texts.length, 3, 'each alert once');
    assert.match(texts[0]!, /Brute force on the gate:\* `203\.0\.113\.7` made 180 blocked attempt\(s\) on `prod-dc` port tcp\/3389: 360 per minute, above the limit of 60/);
    assert.match(texts[1]!, /Knocks on an open window:\* `198\.51\.100\.9` made 12 blocked attempt\(s\) on `lab-pc` port tcp\/3389 while it is open for `192\.0\.2\.10\/32`/);
    assert.match(texts[2]!, /Exposure found:\* security group `sg-0abc` \(eu-west-1\) admits `tcp\/3389` from `0\.0\.0\.0\/0` \(the whole internet\)/);
    assert.match(texts[2]!, /attached to i-0123/);
    assert.ok(inChannel().every((m) => Array.isArray(m.blocks) && m.blocks.length > 0), 'Block Kit, with text as the fallback');
    assert.equal(w.ws.messages.filter((m) => m.channel === APPROVALS).length, 0, 'alerts do not go to the approvals channel');
  });

  test('an idle grant is closed as idle and its requester gets one DM saying so (not a second "closed")', async () => {
    const { grant } = await w.broker.app.broker.requestAccess(alice, { target: 'lab-pc', duration: '1h', reason: 'T-21 patch' }, { channel: 'web', callerIp: '198.51.100.21' });
    assert.equal(grant.state, 'active');
    // The real idle watcher over a counter that never moves (the kernel's counter is test/firewall/nft-idle.test.ts's).
    const fw = w.broker.app.firewalls.get('lab-pc')!;
    const counting = Object.assign(Object.create(fw) as object, { readGrantActivity: async () => new Map([[grant.id as string, 42]]) });
    const idle = new IdleWatcher({ store: w.broker.app.store, firewalls: new Map([['lab-pc', counting as unknown as typeof fw]]), timeouts: new Map([['lab-pc', 5_000]]), close: (g, r, a) => w.broker.app.broker.close(g, r, a), log: createLogger('error'), now: () => Date.now() + offset });
    await idle.sweep();
    offset += 6_000;
    await idle.sweep();
    const g = (await w.broker.app.store.getGrant(grant.id))!;
    assert.deepEqual([g.state, g.closeReason], ['closed', 'idle']);
    const dm = await waitFor('idle DM', async () => w.ws.messages.find((m) => m.channel === 'DUALICE' && /closed because it was idle/.test(textOf(m))));
    assert.match(textOf(dm), /Access to `lab-pc` was closed because it was idle for 6s/);
    await settled();
    const about = w.ws.messages.filter((m) => m.channel === 'DUALICE' && /lab-pc/.test(textOf(m)) && /closed/.test(textOf(m)));
    assert.equal(about.length, 1, 'one DM about the close');
  });
});
