// Config: unknown and contradictory keys are refused by name; secrets come from ${ENV} and never show in errors.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatDuration, parseDuration } from '../../src/config/duration.ts';
import { EMBEDDED_DEFAULT, loadConfig, parseConfig } from '../../src/config/load.ts';
import { tempDir } from '../helpers/broker.ts';

const base = { oidc: { issuer: 'https://login.example.test', clients: { web: { id: 'w', secret: 's' } } } };

function refusal(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (e) {
    assert.equal((e as { code: string }).code, 'CONFIG_INVALID');
    return (e as Error).message;
  }
  assert.fail('config was accepted');
}

test('the embedded default is valid: SQLite under ./data, the development IdP, simulated targets', () => {
  const c = loadConfig({});
  assert.equal(c.store.url, 'sqlite:./data/portcullis.db');
  assert.equal(c.server.listen, '127.0.0.1:8080');
  assert.equal(c.dev.embeddedIdp, true);
  assert.ok(c.targets.every((t) => t.firewall.kind === 'simulated'));
  assert.equal(c.targets.length, EMBEDDED_DEFAULT.targets.length);
});

test('defaults are filled in for a minimal config', () => {
  const c = parseConfig(base);
  assert.deepEqual(c.oidc.mfa.amr, ['mfa', 'otp', 'hwk', 'swk', 'sc']);
  assert.equal(c.grants.maxDuration, '8h');
  assert.equal(c.reaper.sweep, '*/15 * * * * *');
  assert.deepEqual(c.policy.maxSourcePrefix, { ipv4: 32, ipv6: 128 });
});

test('unknown keys are refused, naming the key', () => {
  assert.match(refusal({ ...base, sever: {} }), /unknown key "sever"/);
  assert.match(refusal({ ...base, grants: { maxDuraton: '2h' } }), /unknown key "grants.maxDuraton"/);
  assert.match(refusal({ ...base, targets: [{ id: 'a', firewall: { kind: 'simulated', region: 'x' } }] }), /targets\.0\.firewall/);
});

test('contradictory and unsafe settings are refused by name', () => {
  assert.match(refusal({ ...base, grants: { minDuration: '2h', maxDuration: '1h' } }), /grants\.minDuration: must not exceed grants\.maxDuration/);
  assert.match(refusal({ ...base, oidc: { ...base.oidc, issuer: 'http://login.example.test' } }), /oidc\.issuer: uses http/);
  assert.match(refusal({ ...base, oidc: { ...base.oidc, issuer: 'http://login.example.test', dangerouslyAllowHttpIssuer: true } }), /only for a loopback issuer/);
  assert.match(refusal({ ...base, dev: { embeddedIdp: true } }), /contradicts dev\.embeddedIdp/);
  assert.match(refusal({ dev: { embeddedIdp: true }, server: { listen: '0.0.0.0:8080' } }), /dev\.embeddedIdp: is allowed only when server\.listen is a loopback/);
  assert.match(refusal({ ...base, oidc: { ...base.oidc, mfa: { amr: [], acr: [] } } }), /MFA cannot be switched off/);
  assert.match(refusal({ ...base, targets: [{ id: 'a', firewall: { kind: 'simulated' } }, { id: 'a', firewall: { kind: 'simulated' } }] }), /duplicate target id "a"/);
  assert.match(refusal({ ...base, targets: [{ id: 'a', firewall: { kind: 'carrier-pigeon' } }] }), /targets\.0\.firewall\.kind/);
  assert.match(refusal({ ...base, policy: { maxSourcePrefix: { ipv4: 0 } } }), /policy\.maxSourcePrefix\.ipv4/);
  assert.match(refusal({ ...base, policy: { timeZone: 'Mars/Olympus' } }), /unknown time zone/);
  assert.match(refusal({ ...base, grants: { maxDuration: 'forever' } }), /grants\.maxDuration must be a duration/);
  assert.match(refusal({ ...base, store: { url: 'mysql://x' } }), /store\.url/);
});

test('${ENV} interpolation fills secrets; a missing variable is named, a value never is', () => {
  const tmp = tempDir();
  try {
    const file = join(tmp.dir, 'c.yaml');
    writeFileSync(file, 'oidc:\n  issuer: https://login.example.test\n  clients:\n    web: { id: w, secret: "${WEB_SECRET}" }\n');
    const c = loadConfig({ path: file, env: { WEB_SECRET: 'hunter2-very-secret' } });
    assert.equal(c.oidc.clients.web!.secret, 'hunter2-very-secret');
    assert.throws(() => loadConfig({ path: file, env: {} }), /oidc\.clients\.web\.secret: environment variable WEB_SECRET is not set/);

    writeFileSync(file, 'oidc:\n  issuer: "${ISSUER}"\n  clients:\n    web: { id: w }\n');
    assert.throws(
      () => loadConfig({ path: file, env: { ISSUER: 'not a url but a secret-looking-value' } }),
      (e: Error) => /oidc\.issuer/.test(e.message) && !e.message.includes('secret-looking-value'),
    );
    writeFileSync(file, 'oidc: [unclosed');
    assert.throws(() => loadConfig({ path: file }), /not valid YAML/);
    assert.throws(() => loadConfig({ path: join(tmp.dir, 'missing.yaml') }), /cannot read config file/);
  } finally {
    tmp.cleanup();
  }
});

test('durations: 90s, 15m, 2h, 1h30m, 1d, ISO 8601; nonsense and zero refused', () => {
  assert.equal(parseDuration('90s'), 90);
  assert.equal(parseDuration('15m'), 900);
  assert.equal(parseDuration('2h'), 7200);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('1d'), 86400);
  assert.equal(parseDuration('PT2H'), 7200);
  assert.equal(parseDuration('PT1H30M'), 5400);
  assert.equal(parseDuration('P1D'), 86400);
  for (const bad of ['', '0s', 'PT0S', '2', 'h', '-5m', '1.5h', '2 h', 'PT', 'P', '2H', '99999999999999999999h']) {
    assert.equal(parseDuration(bad), undefined, bad);
  }
  for (const s of [1, 59, 60, 3599, 3600, 5400, 86400, 90061]) assert.equal(parseDuration(formatDuration(s)), s);
});
