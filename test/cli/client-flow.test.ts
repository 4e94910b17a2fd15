// The technician's journey through the spawned CLI: device-flow login at a real provider, targets, open (at once and
// through another user's approval), ls --json, close, extend, deny, Ctrl-C, audit export; tokens 0600 and never printed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { api } from '../helpers/broker.ts';
import { show } from './helpers/cli.ts';
import { assertExit, startWorld, type World } from './helpers/world.ts';

function hasScript(): boolean {
  return spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
}

/** Skips on a laptop without util-linux `script`; fails in CI, where every test must run. */
function needScript(): string {
  if (process.env.CI) throw new Error('util-linux `script` is required in CI for the terminal test');
  return 'util-linux `script` (a pseudo-terminal) is not installed';
}

describe('portcullis CLI: login, open --wait through approval, ls, close', () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  after(async () => {
    await w?.stop();
  });

  const mode = (p: string) => statSync(p).mode & 0o777;

  test('login: the person approves the device code at the provider; tokens land in a 0600 file in a 0700 directory', async () => {
    const r = await w.login('alice', 'alice');
    assertExit(r, 0);
    assert.match(r.stdout, /open: http:\/\/127\.0\.0\.1:\d+\/device/);
    assert.match(r.stdout, /Signed in as alice@example\.test \(alice\); groups: engineers; MFA: yes/);
    const base = join(w.configHome, 'portcullis');
    assert.equal(mode(join(base, 'credentials', 'alice.json')), 0o600);
    assert.equal(mode(join(base, 'profiles', 'alice.json')), 0o600);
    assert.equal(mode(base), 0o700);
    assert.equal(mode(join(base, 'credentials')), 0o700);
    const settings = JSON.parse(readFileSync(join(base, 'profiles', 'alice.json'), 'utf8'));
    // Found through the broker's GET /auth/cli-config, not passed on the command line.
    assert.equal(settings.issuer, w.idp.issuer);
    assert.equal(settings.clientId, w.idp.clients.cli.id);
    assert.equal(settings.server, w.broker.url);
    const t = w.readTokens('alice');
    assert.equal((await api(w.broker.url, '/api/v1/me', { token: t.idToken })).body.sub, 'alice', 'the stored ID token is the one the broker accepts');

    // A second broker identity in the same config home, with the provider named explicitly.
    assertExit(await w.login('bob', 'bob', { args: ['--issuer', w.idp.issuer, '--client-id', w.idp.clients.cli.id] }), 0);
  });

  test('whoami and targets (--json and table): who you are, the longest duration and whether approval is needed', async () => {
    const me = await w.cli.run(['whoami', '--profile', 'alice', '--json']);
    assertExit(me, 0);
    const j = JSON.parse(me.stdout);
    assert.equal(j.user.sub, 'alice');
    assert.equal(j.profile, 'alice');
    assert.deepEqual(Object.keys(j).sort(), ['issuer', 'profile', 'server', 'tokenExpiresAt', 'user']);

    const t = await w.cli.run(['targets', '--json'], { PORTCULLIS_PROFILE: 'alice' });
    assertExit(t, 0);
    const byId = Object.fromEntries(JSON.parse(t.stdout).targets.map((x: { id: string }) => [x.id, x]));
    assert.equal(byId['prod-db'].maxDuration, '4h', 'production-max-4h');
    assert.equal(byId['prod-db'].needsApproval, true);
    assert.equal(byId['lab-pc'].maxImmediateDuration, '2h');

    const table = await w.cli.run(['targets', '--profile', 'alice']);
    assertExit(table, 0);
    assert.match(table.stdout, /^TARGET\s+PORTS\s+LONGEST\s+APPROVAL/m);
    assert.match(table.stdout, /^prod-db\s+3389,3390\s+4h\s+needed\s/m);
    assert.match(table.stdout, /^lab-pc\s+3389\s+8h\s+over 2h\s/m);
  });

  test('open on a self-serve target is active at once; --rdp-file writes a connection file; close removes the rule', async () => {
    const rdp = join(w.dir, 'lab.rdp');
    const r = await w.cli.run(['open', 'lab-pc', '--for', '30m', '--reason', 'T-100 lab', '--rdp-file', rdp, '--profile', 'alice']);
    assertExit(r, 0);
    assert.match(r.stdout, /Access to lab-pc is open for 127\.0\.0\.1\/32 on port 3389/);
    assert.match(r.stdout, /connect: +lab-pc\.example\.test:3389/);
    assert.match(r.stdout, /time left: +(29m|30m)/);
    const id = /grant: +(g_\S+)/.exec(r.stdout)![1]!;
    const text = readFileSync(rdp, 'utf8');
    assert.ok(text.startsWith('full address:s:lab-pc.example.test:3389\r\n'), text);
    assert.match(text, /\r\nprompt for credentials:i:1\r\n/);
    assert.ok(text.split('\r\n').slice(0, -1).every((l) => /^[a-z :]+:[sib]:/.test(l)), 'every line is name:type:value');
    assert.equal((await w.firewall('lab-pc').list()).length, 1);

    const c = await w.cli.run(['close', id, '--profile', 'alice']);
    assertExit(c, 0);
    assert.match(c.stdout, new RegExp(`Closed ${id}: lab-pc port 3389 no longer admits 127\\.0\\.0\\.1/32`));
    assert.equal((await w.firewall('lab-pc').list()).length, 0);
  });

  test('open --wait waits through an approval given by another user (via the CLI), then ls --json and close', async () => {
    const rdp = join(w.dir, 'prod.rdp');
    const waiting = w.cli.start(['open', 'prod-db', '--for', '1h', '--reason', 'T-4411 patch', '--port', '3390', '--wait', '--poll-interval', '1s', '--rdp-file', rdp, '--profile', 'alice']);
    const id = (await waiting.waitFor(/waiting for an approver \(request (g_[A-Za-z0-9_-]+)/))[1]!;
    assert.equal(waiting.child.exitCode, null, 'still waiting');

    const list = await w.cli.run(['ls', '--approvable', '--json', '--profile', 'bob']);
    assertExit(list, 0);
    const pending = JSON.parse(list.stdout).grants;
    assert.deepEqual(pending.map((g: { id: string }) => g.id), [id]);
    assert.equal(pending[0].requester, 'alice');

    const ok = await w.cli.run(['approve', id, '--comment', 'go ahead', '--profile', 'bob']);
    assertExit(ok, 0);
    assert.match(ok.stdout, new RegExp(`Approved ${id}: .*alice.* → prod-db port 3390 for 1h 0m \\("T-4411 patch"\\); it is now active`));

    const r = await waiting.done;
    assertExit(r, 0);
    // Off a TTY the wait prints plain lines, no spinner control codes.
    assert.doesNotMatch(r.stderr, /\r|\x1b\[/);
    assert.match(r.stdout, /Access to prod-db is open for 127\.0\.0\.1\/32 on port 3390/);
    assert.match(r.stdout, /connect: +prod-db\.example\.test:3390/);
    assert.match(r.stdout, /time left: +(59m|1h 0m)/);
    assert.ok(readFileSync(rdp, 'utf8').startsWith('full address:s:prod-db.example.test:3390\r\n'));

    const ls = await w.cli.run(['ls', '--json', '--profile', 'alice']);
    assertExit(ls, 0);
    const grants = JSON.parse(ls.stdout).grants;
    assert.equal(grants.length, 1, 'only live grants without --all');
    assert.equal(grants[0].id, id);
    assert.equal(grants[0].state, 'active');
    assert.equal(grants[0].port, 3390);
    assert.ok(grants[0].secondsLeft > 3500);

    assertExit(await w.cli.run(['close', id, '--profile', 'alice']), 0);
    const after = JSON.parse((await w.cli.run(['ls', '--all', '--json', '--profile', 'alice'])).stdout).grants;
    const closed = after.find((g: { id: string }) => g.id === id);
    assert.equal(closed.state, 'closed');
    assert.equal(closed.closeReason, 'revoked');
    assert.equal((await w.firewall('prod-db').list()).length, 0);
    const types = (await w.broker.app.store.auditEvents({ grant: id })).map((e) => e.type);
    assert.ok(types.includes('grant.approved') && types.includes('rule.opened') && types.includes('rule.closed'), types.join(','));
  });

  test('on a terminal, --wait shows a spinner while it waits and clears it before printing the result', { skip: hasScript() ? false : needScript() }, async () => {
    const waiting = w.cli.startTty(['open', 'prod-db', '--for', '30m', '--reason', 'T-tty', '--wait', '--poll-interval', '1s', '--profile', 'alice']);
    const id = (await waiting.waitFor(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] waiting for an approver \(request (g_[A-Za-z0-9_-]+)/))[1]!;
    // The elapsed time ticks on the same line.
    await waiting.waitFor(/\r\x1b\[2K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] waiting for an approver \(request g_[^)]+\) [1-9]s/);
    assertExit(await w.cli.run(['approve', id, '--profile', 'bob']), 0);
    const r = await waiting.done;
    assertExit(r, 0);
    assert.match(r.stdout, /\r\x1b\[2KAccess to prod-db is open/);
    assertExit(await w.cli.run(['close', id, '--profile', 'alice']), 0);
  });

  test('a request denied by an approver ends the wait with exit 4 and says so', async () => {
    const waiting = w.cli.start(['open', 'prod-db', '--for', '1h', '--reason', 'T-5 maybe', '--wait', '--poll-interval', '1s', '--profile', 'alice']);
    const id = (await waiting.waitFor(/request (g_[A-Za-z0-9_-]+)/))[1]!;
    assertExit(await w.cli.run(['deny', id, '--comment', 'not tonight', '--profile', 'bob']), 0);
    const r = await waiting.done;
    assertExit(r, 4);
    assert.match(r.stderr, new RegExp(`request ${id} for prod-db was denied \\[GRANT_DENIED\\]`));
    assert.match(r.stderr, /next: /);
  });

  test('Ctrl-C while waiting for approval withdraws the request and exits 130', async () => {
    const waiting = w.cli.start(['open', 'prod-db', '--for', '1h', '--reason', 'T-6', '--wait', '--poll-interval', '1s', '--profile', 'alice']);
    const id = (await waiting.waitFor(/request (g_[A-Za-z0-9_-]+)/))[1]!;
    waiting.child.kill('SIGINT');
    const r = await waiting.done;
    assertExit(r, 130);
    assert.match(r.stderr, new RegExp(`interrupted; request ${id} for prod-db was withdrawn \\[CANCELLED\\]`));
    const g = (await w.broker.app.store.getGrant(id as never))!;
    assert.equal(g.state, 'closed');
    assert.equal(g.closeReason, 'revoked');
    const approvable = JSON.parse((await w.cli.run(['ls', '--approvable', '--json', '--profile', 'bob'])).stdout).grants;
    assert.deepEqual(approvable, [], 'nothing is left for an approver to open by mistake');
  });

  test('extend adds time to an open grant', async () => {
    const r = await w.cli.run(['open', 'lab-pc', '--for', '10m', '--reason', 'T-7', '--json', '--profile', 'alice']);
    assertExit(r, 0);
    const g = JSON.parse(r.stdout).grant;
    const e = await w.cli.run(['extend', g.id, '--for', '20m', '--json', '--profile', 'alice']);
    assertExit(e, 0);
    const g2 = JSON.parse(e.stdout).grant;
    assert.equal(Date.parse(g2.expiresAt) - Date.parse(g.expiresAt), 20 * 60_000);
    assert.ok(g2.secondsLeft > 29 * 60);
    assertExit(await w.cli.run(['close', g.id, '--profile', 'alice']), 0);
  });

  test('audit export writes JSONL that `portcullis audit verify` accepts; non-readers are refused', async () => {
    const file = join(w.dir, 'export.jsonl');
    const r = await w.cli.run(['audit', 'export', '--output', file, '--profile', 'bob']);
    assertExit(r, 0);
    assert.equal(mode(file), 0o600);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.ok(lines.length > 10);
    assert.match(r.stderr, new RegExp(`exported ${lines.length} events, through seq ${JSON.parse(lines.at(-1)!).seq}`));
    const v = await w.cli.run(['audit', 'verify', '--file', file]);
    assert.equal(v.code, 0, show(v));

    // Paging: a small --limit stops early, --after continues.
    const first = await w.cli.run(['audit', 'export', '--limit', '3', '--profile', 'bob']);
    const firstSeqs = first.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).seq);
    assert.deepEqual(firstSeqs, [1, 2, 3]);
    const next = await w.cli.run(['audit', 'export', '--after', '3', '--limit', '2', '--profile', 'bob']);
    assert.deepEqual(next.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).seq), [4, 5]);

    const denied = await w.cli.run(['audit', 'export', '--profile', 'alice']);
    assertExit(denied, 4);
    assert.match(denied.stderr, /\[FORBIDDEN\]/);
  });

  test('no token ever appears in anything the CLI printed, --json included', async () => {
    // Read the current files once more: tokens may have been refreshed since login.
    w.readTokens('alice');
    w.readTokens('bob');
    assert.ok(w.tokensSeen.size >= 4);
    assert.ok(w.cli.transcript.length > 2000, 'the transcript holds the whole session');
    for (const t of w.tokensSeen) {
      assert.equal(w.cli.transcript.includes(t), false, 'a token was printed');
      // Not even the signature part of a JWT alone.
      const sig = t.split('.').at(-1)!;
      if (sig.length > 20) assert.equal(w.cli.transcript.includes(sig), false, 'a token signature was printed');
    }
  });
});
