// Slack's v0 request signature: the documented example, and the broker refusing everything that is not Slack's.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { checkSlackSignature, slackSignature } from '../../src/slack/signature.ts';
import { slackWorld, TEAM, type SlackWorld } from './helpers.ts';

// Slack's documented example ("Verifying requests from Slack"): secret, timestamp, body and the signature Slack shows.
const DOC = {
  secret: '8f742231b10e8888abcd99yyyzzz85a5',
  timestamp: '1531420618',
  body: 'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
  signature: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
};

describe('Slack signature check', () => {
  test("Slack's documented example verifies, within 5 minutes of its timestamp only", () => {
    assert.equal(slackSignature(DOC.secret, DOC.timestamp, DOC.body), DOC.signature);
    const at = Number(DOC.timestamp);
    const h = { timestamp: DOC.timestamp, signature: DOC.signature };
    assert.equal(checkSlackSignature(DOC.secret, h, Buffer.from(DOC.body), at + 299), undefined);
    assert.equal(checkSlackSignature(DOC.secret, h, Buffer.from(DOC.body), at + 301), 'stale');
    assert.equal(checkSlackSignature(DOC.secret, h, Buffer.from(`${DOC.body}x`), at), 'mismatch');
    assert.equal(checkSlackSignature('another-secret-0000', h, Buffer.from(DOC.body), at), 'mismatch');
    assert.equal(checkSlackSignature(DOC.secret, { ...h, signature: undefined }, Buffer.from(DOC.body), at), 'missing');
    assert.equal(checkSlackSignature(DOC.secret, { ...h, signature: 'v1=abc' }, Buffer.from(DOC.body), at), 'malformed');
  });
});

describe('Slack endpoints refuse what Slack did not sign', () => {
  let w: SlackWorld;
  before(async () => {
    w = await slackWorld();
  });
  after(async () => w?.stop());

  const form = (text: string, team = TEAM) => ({ team_id: team, user_id: 'UALICE', user_name: 'alice', command: '/rdp', text, response_url: `${w.standinUrl}/hooks/x`, trigger_id: `t-${Math.random()}` });

  test('a correctly signed command is answered 200', async () => {
    const r = await w.ws.send('/slack/commands', form('help'));
    assert.equal(r.status, 200);
    assert.equal(r.body.response_type, 'ephemeral');
    assert.match(r.body.text, /\/rdp open <target>/);
  });

  test('a bad signature, a stale timestamp, a missing header: 401 and nothing recorded', async () => {
    const before = (await w.broker.app.store.auditEvents({ limit: 10_000 })).length;
    const bad = await w.ws.send('/slack/commands', form('link'), { signature: `v0=${'0'.repeat(64)}` });
    assert.equal(bad.status, 401);
    assert.match(bad.body.error.message, /mismatch/);
    const stale = await w.ws.send('/slack/commands', form('link'), { timestamp: Math.floor(Date.now() / 1000) - 301 });
    assert.equal(stale.status, 401);
    assert.match(stale.body.error.message, /stale/);
    const future = await w.ws.send('/slack/commands', form('link'), { timestamp: Math.floor(Date.now() / 1000) + 301 });
    assert.equal(future.status, 401);
    const missing = await fetch(`${w.broker.url}/slack/commands`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'team_id=T&user_id=U&text=link' });
    assert.equal(missing.status, 401);
    assert.equal((await w.broker.app.store.auditEvents({ limit: 10_000 })).length, before);
    assert.equal(w.ws.calls.length, 0, 'no Slack call was made for a refused request');
  });

  test('a captured body replayed under a new timestamp does not verify', async () => {
    const raw = new URLSearchParams(form('link')).toString();
    const oldTs = String(Math.floor(Date.now() / 1000) - 60);
    const sig = slackSignature('test-signing-secret-0123456789abcdef', oldTs, raw);
    const replay = await fetch(`${w.broker.url}/slack/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000)), 'x-slack-signature': sig },
      body: raw,
    });
    assert.equal(replay.status, 401);
    // The original, as captured, still verifies (it is within 5 minutes): the timestamp is what the signature binds.
    const original = await fetch(`${w.broker.url}/slack/commands`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': oldTs, 'x-slack-signature': sig }, body: raw });
    assert.equal(original.status, 200);
  });

  test('a signed request from another workspace gets an ephemeral refusal and changes nothing', async () => {
    const before = (await w.broker.app.store.auditEvents({ limit: 10_000 })).length;
    const r = await w.ws.send('/slack/commands', form('open lab-pc 1h T-1', 'TOTHERTEAM'));
    assert.equal(r.status, 200);
    assert.equal(r.body.response_type, 'ephemeral');
    assert.match(r.body.text, /workspace is not connected/);
    const i = await w.ws.send('/slack/interactions', { payload: JSON.stringify({ type: 'block_actions', team: { id: 'TOTHERTEAM' }, user: { id: 'UBOB' }, actions: [{ action_id: 'approve', value: 'g_xxxxxxxxxxxxxxxxxxxx' }] }) });
    assert.equal(i.status, 200);
    assert.equal((await w.broker.app.store.auditEvents({ limit: 10_000 })).length, before);
    assert.equal(await w.broker.app.slack!.slack.linkedSub({ teamId: 'TOTHERTEAM', userId: 'UALICE' }), undefined);
  });

  test('the body parser never runs before the check: /slack is mounted ahead of every parser', () => {
    const app = readFileSync(new URL('../../src/http/app.ts', import.meta.url), 'utf8');
    assert.doesNotMatch(app.split('function apiRouter')[0]!, /app\.use\(express\.(json|urlencoded|raw|text)/);
  });
});
