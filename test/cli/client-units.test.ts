// The CLI's pure parts: profile files and names, the XDG rule, .rdp text, connect addresses, and exit codes for every broker error code.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { endpoint, type GrantView } from '../../src/cli/client/grant-view.ts';
import { rdpFileText } from '../../src/cli/client/rdp.ts';
import { isLoopbackUrl, normaliseBaseUrl } from '../../src/cli/client/urls.ts';
import { EXIT, EXIT_CODE_HELP, exitCodeFor } from '../../src/errors.ts';
import { configDir, profileName, ProfileStore } from '../../src/cli/profiles.ts';
import { httpStatus, type ErrorCode } from '../../src/errors.ts';
import { ROOT, tempDir } from '../helpers/broker.ts';

test('configDir follows XDG: an absolute XDG_CONFIG_HOME, else ~/.config (a relative one is ignored)', () => {
  assert.equal(configDir({ XDG_CONFIG_HOME: '/x/cfg' }), '/x/cfg/portcullis');
  assert.equal(configDir({ XDG_CONFIG_HOME: 'rel/cfg', HOME: '/home/t' }).endsWith('/.config/portcullis'), true);
});

test('profile names are file names: path tricks are refused with exit 2', () => {
  assert.equal(profileName(undefined, {}), 'default');
  assert.equal(profileName(undefined, { PORTCULLIS_PROFILE: 'acme' }), 'acme');
  assert.equal(profileName('acme-eu.2', { PORTCULLIS_PROFILE: 'other' }), 'acme-eu.2');
  for (const bad of ['../x', 'a/b', '.hidden', '', 'x'.repeat(65)]) {
    assert.throws(() => profileName(bad, {}), { code: 'USAGE', exit: 2 }, bad);
  }
});

test('tokens are written 0600 through a temp file in a 0700 directory; a corrupt file reads as signed out', () => {
  const tmp = tempDir();
  try {
    const s = new ProfileStore(join(tmp.dir, 'portcullis'));
    s.writeTokens('p', { idToken: 'a.b.c', refreshToken: 'r', expiresAt: 1 });
    assert.equal(statSync(s.tokenPath('p')).mode & 0o777, 0o600);
    assert.equal(statSync(join(tmp.dir, 'portcullis', 'credentials')).mode & 0o777, 0o700);
    assert.deepEqual(s.readTokens('p'), { idToken: 'a.b.c', refreshToken: 'r', expiresAt: 1 });
    s.writeTokens('p', { idToken: 'd.e.f', expiresAt: 2 });
    assert.deepEqual(s.readTokens('p'), { idToken: 'd.e.f', refreshToken: undefined, expiresAt: 2 });
    writeFileSync(s.tokenPath('p'), '{"idToken": "half');
    assert.equal(s.readTokens('p'), undefined);
    assert.equal(s.deleteTokens('p'), true);
    assert.equal(s.deleteTokens('p'), false);
    s.writeSettings('acme', { server: 'https://b', issuer: 'https://i', clientId: 'c' });
    s.writeSettings('beta', { server: 'https://b2', issuer: 'https://i', clientId: 'c' });
    assert.deepEqual(s.list(), ['acme', 'beta']);
  } finally {
    tmp.cleanup();
  }
});

test('plain http only on loopback; URLs lose their trailing slash', () => {
  assert.equal(normaliseBaseUrl('https://p.example.com/', '--server'), 'https://p.example.com');
  assert.equal(normaliseBaseUrl('http://127.0.0.1:8080/', '--server'), 'http://127.0.0.1:8080');
  assert.equal(normaliseBaseUrl('http://localhost:8080/idp', '--issuer'), 'http://localhost:8080/idp');
  assert.equal(isLoopbackUrl('http://[::1]:8080'), true);
  assert.equal(isLoopbackUrl('http://127.evil.example'), false);
  for (const bad of ['http://p.example.com', 'ftp://p', 'https://u:pw@p.example.com', 'not a url']) {
    assert.throws(() => normaliseBaseUrl(bad, '--server'), { exit: 2 }, bad);
  }
});

test('.rdp text: full address with the grant port, CRLF lines, IPv6 in brackets, no injected settings', () => {
  const t = rdpFileText('dc01.acme.example', 3390);
  assert.ok(t.startsWith('full address:s:dc01.acme.example:3390\r\n'));
  assert.ok(t.endsWith('\r\n'));
  assert.equal(t.replace(/\r\n/g, '').includes('\n'), false);
  assert.match(rdpFileText('2001:db8::7', 3389), /^full address:s:\[2001:db8::7\]:3389\r\n/);
  assert.throws(() => rdpFileText('evil\r\nredirectdrives:i:1', 3389), { exit: 2 });
});

test('connect address: the target host with the grant port', () => {
  const g = (connect: string | null, port = 3389) => ({ connect, port }) as GrantView;
  assert.equal(endpoint(g('dc01.acme.example:3389', 3390))?.address, 'dc01.acme.example:3390');
  assert.equal(endpoint(g('203.0.113.10'))?.address, '203.0.113.10:3389');
  assert.equal(endpoint(g('[2001:db8::1]:3389'))?.address, '[2001:db8::1]:3389');
  assert.equal(endpoint(g('2001:db8::1'))?.host, '2001:db8::1');
  assert.equal(endpoint(g(null)), undefined);
});

test('every broker error code maps to a deliberate exit code: 4xx never to 1, 503 to 8', () => {
  const src = readFileSync(join(ROOT, 'src/errors.ts'), 'utf8');
  const union = src.slice(src.indexOf('export type ErrorCode'), src.indexOf('export class'));
  const codes = [...union.matchAll(/\| '([A-Z_]+)'/g)].map((m) => m[1] as ErrorCode);
  assert.ok(codes.length > 30);
  for (const c of codes) {
    const status = httpStatus(c);
    const exit = exitCodeFor(c);
    if (status >= 400 && status < 500) assert.notEqual(exit, EXIT.ERROR, `${c} (${status})`);
    if (status === 503) assert.equal(exit, EXIT.UNAVAILABLE, c);
    if (status === 401) assert.equal(exit, EXIT.AUTH, c);
  }
  assert.equal(exitCodeFor('MFA_TOO_OLD'), EXIT.AUTH);
  assert.equal(exitCodeFor('SOMETHING_NEW'), EXIT.ERROR);
});

test('docs/cli.md documents exactly the exit codes of src/errors.ts, with the same meaning', () => {
  const doc = readFileSync(join(ROOT, 'docs/cli.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| (\d+) \| (.+) \|$/gm)].map((m) => [Number(m[1]), m[2]!.replace(/`/g, '')] as const);
  assert.deepEqual(rows, EXIT_CODE_HELP.map(([c, text]) => [c, text]));
});
