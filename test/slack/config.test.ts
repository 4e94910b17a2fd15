// The slack section: refused at start when a typo could weaken it, naming the key and never the secret.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig, parseConfig } from '../../src/config/load.ts';
import { isPortcullisError } from '../../src/errors.ts';

const base = { oidc: { issuer: 'https://login.example.com', clients: { web: { id: 'w', secret: 's' } } } };
const slack = { signingSecret: 'a-very-secret-signing-value', botToken: 'xoxb-secret-token', teamIds: ['T0123456'] };

function refusal(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (e) {
    assert.ok(isPortcullisError(e, 'CONFIG_INVALID'));
    return e.message;
  }
  throw new Error('accepted');
}

test('defaults: command /rdp, Slack’s Web API, no webhooks', () => {
  const c = parseConfig({ ...base, slack });
  assert.equal(c.slack!.command, '/rdp');
  assert.equal(c.slack!.apiUrl, 'https://slack.com/api/');
  assert.deepEqual(c.slack!.webhooks, []);
});

test('refused by name: no teamIds, a bad channel id, an http API off loopback, a short secret, an unknown key', () => {
  assert.match(refusal({ ...base, slack: { ...slack, teamIds: undefined } }), /slack\.teamIds/);
  assert.match(refusal({ ...base, slack: { ...slack, teamIds: [] } }), /slack\.teamIds: needs at least one workspace/);
  assert.match(refusal({ ...base, slack: { ...slack, approvalsChannel: '#approvals' } }), /slack\.approvalsChannel: must be a Slack channel id/);
  assert.match(refusal({ ...base, slack: { ...slack, apiUrl: 'http://slack.example.com/api/' } }), /slack\.apiUrl: uses http:\/\//);
  assert.match(refusal({ ...base, slack: { ...slack, signingSecret: 'short' } }), /slack\.signingSecret/);
  assert.match(refusal({ ...base, slack: { ...slack, webhooks: [{ url: 'http://hooks.example.com/x', secret: '0123456789abcdef' }] } }), /slack\.webhooks\.0\.url/);
  assert.match(refusal({ ...base, slack: { ...slack, sigingSecret: 'x' } }), /unknown key "slack\.sigingSecret"/);
  parseConfig({ ...base, slack: { ...slack, apiUrl: 'http://127.0.0.1:9999/api/' } });
});

test('slack.alertChannel: a channel id (C… or G…); a name or a DM id is refused at start naming the key', () => {
  assert.equal(parseConfig({ ...base, slack: { ...slack, alertChannel: 'C0ALERTS1' } }).slack!.alertChannel, 'C0ALERTS1');
  assert.equal(parseConfig({ ...base, slack: { ...slack, alertChannel: 'G0PRIVATE' } }).slack!.alertChannel, 'G0PRIVATE');
  assert.equal(parseConfig({ ...base, slack }).slack!.alertChannel, undefined, 'off unless set');
  for (const bad of ['#security-alerts', 'D0ALERTS1', 'c0alerts1', '']) {
    assert.match(refusal({ ...base, slack: { ...slack, alertChannel: bad } }), /slack\.alertChannel: must be a Slack channel id such as C0123456/, bad);
  }
  assert.match(refusal({ ...base, slack: { ...slack, alertsChannel: 'C0ALERTS1' } }), /unknown key "slack\.alertsChannel"/);
});

test('a refusal never carries the secret values', () => {
  const m = refusal({ ...base, slack: { ...slack, teamIds: ['not a team'] } });
  assert.doesNotMatch(m, /a-very-secret-signing-value|xoxb-secret-token/);
});

test('dev.simulatedSlack only in the demo, never beside a real slack section; the embedded default has it', () => {
  assert.match(refusal({ ...base, dev: { simulatedSlack: true } }), /dev\.simulatedSlack: is allowed only with dev\.embeddedIdp/);
  assert.match(refusal({ dev: { embeddedIdp: true, simulatedSlack: true }, slack }), /dev\.simulatedSlack: contradicts the slack section/);
  assert.equal(loadConfig().dev.simulatedSlack, true);
});
