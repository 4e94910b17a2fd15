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

// Config that would weaken security is refused at start, each naming its key.
const ok = (raw: Record<string, unknown>) => assert.doesNotThrow(() => parseConfig(raw));

test('oidc.mfa.amr: a value RFC 8176 does not define as a second factor (pwd) is refused unless dangerouslyAllowNonMfaAmr', () => {
  for (const amr of [['pwd'], ['mfa', 'pwd'], ['pin'], ['kba'], ['wia'], ['ngcmfa']]) {
    assert.match(refusal({ ...base, oidc: { ...base.oidc, mfa: { amr } } }), /oidc\.mfa\.amr: lists (a value|values) that RFC 8176 does not define as a second factor/, amr.join());
  }
  ok({ ...base, oidc: { ...base.oidc, mfa: { amr: ['mfa', 'otp', 'hwk', 'swk', 'sc', 'sms', 'fpt', 'face'] } } });
  ok({ ...base, oidc: { ...base.oidc, mfa: { amr: ['ngcmfa'], dangerouslyAllowNonMfaAmr: true } } });
});

test('server.trustProxy: [0.0.0.0/0] is refused naming the entry (it used to pass and crash the start)', () => {
  assert.match(refusal({ ...base, server: { trustProxy: ['0.0.0.0/0'] } }), /server\.trustProxy\.0: covers public address space wider than \/16/);
  assert.match(refusal({ ...base, server: { trustProxy: ['::/0'] } }), /server\.trustProxy\.0: covers public address space wider than \/32/);
});

test('server.trustProxy: the internet in halves ([0.0.0.0/1, 128.0.0.0/1]) is refused, each half named', () => {
  const msg = refusal({ ...base, server: { trustProxy: ['0.0.0.0/1', '128.0.0.0/1'] } });
  assert.match(msg, /server\.trustProxy\.0: covers public address space/);
  assert.match(msg, /server\.trustProxy\.1: covers public address space/);
});

test('server.trustProxy: many narrow public blocks that add up to a large part of the internet are refused', () => {
  const blocks = Array.from({ length: 32 }, (_, i) => `${i + 20}.0.0.0/16`);
  assert.match(refusal({ ...base, server: { trustProxy: blocks } }), /server\.trustProxy: trusts more public address space in total/);
});

test('server.trustProxy: private, loopback and narrow public proxy ranges pass', () => {
  ok({ ...base, server: { trustProxy: ['127.0.0.1/32', '10.0.0.0/8', '172.16.0.0/12', '192.168.1.0/24', 'fc00::/7', '::1'] } });
  ok({ ...base, server: { trustProxy: ['203.0.113.0/24', '198.51.100.7', '2001:db8::/32'] } });
});

test('server.publicUrl: the development IdP behind a non-loopback publicUrl is refused', () => {
  assert.match(refusal({ dev: { embeddedIdp: true }, server: { publicUrl: 'https://portcullis.example.com' } }), /server\.publicUrl: must be a loopback URL while dev\.embeddedIdp is true/);
  ok({ dev: { embeddedIdp: true }, server: { publicUrl: 'http://127.0.0.1:8080' } });
  ok({ dev: { embeddedIdp: true }, server: { publicUrl: 'http://[::1]:8080' } });
});

test('server.publicUrl: http:// on a non-loopback host is refused; on loopback it is fine', () => {
  assert.match(refusal({ ...base, server: { publicUrl: 'http://portcullis.example.com' } }), /server\.publicUrl: uses http:\/\/ on a non-loopback host/);
  assert.match(refusal({ ...base, server: { publicUrl: 'ftp://portcullis.example.com' } }), /server\.publicUrl: must be an https:\/\/ URL/);
  ok({ ...base, server: { publicUrl: 'https://portcullis.example.com' } });
  ok({ ...base, server: { publicUrl: 'http://localhost:8080' } });
});

test('policy.maxSourcePrefix of 0 is refused, naming the family', () => {
  assert.match(refusal({ ...base, policy: { maxSourcePrefix: { ipv4: 0 } } }), /policy\.maxSourcePrefix\.ipv4: Too small/);
  assert.match(refusal({ ...base, policy: { maxSourcePrefix: { ipv6: 0 } } }), /policy\.maxSourcePrefix\.ipv6: Too small/);
});

test('oidc.clockSkew, oidc.maxTokenLifetime and oidc.maxTokenAge are durations, named when not', () => {
  const c = parseConfig(base);
  assert.equal(c.oidc.clockSkew, '60s');
  assert.equal(c.oidc.maxTokenLifetime, '24h');
  assert.equal(c.oidc.maxTokenAge, undefined);
  for (const key of ['clockSkew', 'maxTokenLifetime', 'maxTokenAge']) {
    assert.match(refusal({ ...base, oidc: { ...base.oidc, [key]: 'soon' } }), new RegExp(`oidc\\.${key} must be a duration`));
  }
});
