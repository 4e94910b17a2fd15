// Every exit code documented in src/errors.ts (and docs/cli.md) is produced here by the spawned CLI against a
// live broker; the last test fails if a documented code was not seen.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EXIT_CODE_HELP } from '../../src/errors.ts';
import { ProfileStore } from '../../src/cli/profiles.ts';
import { assertExit, SCOPE, startWorld, type World } from './helpers/world.ts';

describe('portcullis CLI exit codes', () => {
  let w: World;
  const seen = new Set<number>();
  const store = () => new ProfileStore(join(w.configHome, 'portcullis'));
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) => w.cli.run(args, { PORTCULLIS_PROFILE: 'alice', ...env });

  before(async () => {
    w = await startWorld();
    assertExit(await w.login('alice', 'alice'), 0, seen);
  });
  after(async () => {
    await w?.stop();
  });

  test('0: done', async () => {
    const r = await run(['whoami']);
    assertExit(r, 0, seen);
    assert.match(r.stdout, /alice@example\.test \(alice\)/);
  });

  test('1: the broker failed internally (the firewall backend errored); nothing is left open', async () => {
    w.firewall('lab-pc').inject('open', 'error');
    const r = await run(['open', 'lab-pc', '--for', '10m', '--reason', 'T-1']);
    assertExit(r, 1, seen);
    assert.match(r.stderr, /\[FIREWALL_ERROR\]\n  next: the broker failed; tell its operator/);
    assert.equal((await w.firewall('lab-pc').list()).length, 0);
  });

  test('2: usage mistakes, found by the CLI or by the broker', async () => {
    const bad = await run(['open', 'lab-pc', '--for', 'soon', '--reason', 'T-2']);
    assertExit(bad, 2, seen);
    assert.match(bad.stderr, /--for "soon" is not a duration \[USAGE\]\n  next: write it like 30m/);
    assertExit(await run(['open', 'lab-pc', '--for', '10m']), 2, seen);
    assertExit(await run(['frobnicate']), 2, seen);
    const wide = await run(['open', 'lab-pc', '--for', '10m', '--reason', 'T-2', '--ip', '0.0.0.0/0', '--json']);
    assertExit(wide, 2, seen);
    assert.equal(JSON.parse(wide.stdout).error.code, 'SOURCE_TOO_WIDE');
    assert.equal(JSON.parse(wide.stdout).error.exit, 2);
    const http = await w.cli.run(['login', '--server', 'http://portcullis.example.com', '--profile', 'x']);
    assertExit(http, 2, seen);
    assert.match(http.stderr, /plain http/);
    assertExit(await run(['ls'], { PORTCULLIS_PROFILE: '../etc' }), 2, seen);
  });

  test('3: not signed in, sign-in without MFA, sign-in expired and not renewable', async () => {
    const none = await run(['ls'], { PORTCULLIS_PROFILE: 'nobody' });
    assertExit(none, 3, seen);
    assert.match(none.stderr, /no profile "nobody" yet \(profiles: alice\) \[NOT_SIGNED_IN\]\n  next: sign in first: portcullis login --server/);

    const noMfa = await w.login('nina', 'nina', { mfa: 'none' });
    assertExit(noMfa, 3, seen);
    assert.match(noMfa.stderr, /the broker refuses the sign-in: .*\[MFA_REQUIRED\]\n  next: sign in again and complete the second factor/);
    assert.equal(existsSync(store().tokenPath('nina')), false, 'a token the broker refuses is not kept');

    const s = store();
    s.writeSettings('stale', s.readSettings('alice')!);
    s.writeTokens('stale', { idToken: w.readTokens('alice').idToken, refreshToken: 'not-a-refresh-token-the-provider-issued', expiresAt: Date.now() - 1000 });
    const stale = await run(['ls', '--profile', 'stale']);
    assertExit(stale, 3, seen);
    assert.match(stale.stderr, /your sign-in could not be renewed \[TOKEN_EXPIRED\]\n  next: sign in again: portcullis login --profile stale/);
  });

  test('4: denied by policy, and approving your own request', async () => {
    const long = await run(['open', 'prod-db', '--for', '6h', '--reason', 'T-4']);
    assertExit(long, 4, seen);
    assert.match(long.stderr, /production-max-4h.*\[POLICY_DENIED\]\n  next: ask for less/);

    const pending = await run(['open', 'prod-db', '--for', '1h', '--reason', 'T-4b', '--json']);
    assertExit(pending, 5, seen);
    const id = JSON.parse(pending.stdout).grant.id;
    const self = await run(['approve', id]);
    assertExit(self, 4, seen);
    assert.match(self.stderr, /\[SELF_APPROVAL\]/);
    assertExit(await run(['close', id]), 0, seen);
  });

  test('5: the request waits for an approver (open without --wait)', async () => {
    const r = await run(['open', 'prod-db', '--for', '1h', '--reason', 'T-5']);
    assertExit(r, 5, seen);
    const id = /Request (g_\S+) for prod-db waits for an approver/.exec(r.stdout)![1]!;
    assert.match(r.stdout, new RegExp(`withdraw it: +portcullis close ${id}`));
    const withdrawn = await run(['close', id]);
    assertExit(withdrawn, 0, seen);
    assert.match(withdrawn.stdout, new RegExp(`Withdrew request ${id} for prod-db; it is closed`));
  });

  test('6: --wait gave up at --timeout, and withdrew the request', async () => {
    const r = await run(['open', 'prod-db', '--for', '1h', '--reason', 'T-6', '--wait', '--timeout', '2s', '--poll-interval', '1s', '--json']);
    assertExit(r, 6, seen);
    const err = JSON.parse(r.stdout).error;
    assert.equal(err.code, 'WAIT_TIMEOUT');
    const g = (await w.broker.app.store.getGrant(err.grant))!;
    assert.equal(g.state, 'closed');
    assert.equal(g.closeReason, 'revoked');
  });

  test('7: no such target, no such grant', async () => {
    const t = await run(['open', 'no-such-pc', '--for', '10m', '--reason', 'T-7']);
    assertExit(t, 7, seen);
    assert.match(t.stderr, /unknown target "no-such-pc" \[INVALID_TARGET\]\n  next: 'portcullis targets' lists the targets/);
    assertExit(await run(['close', 'g_AAAAAAAAAAAAAAAAAAAA']), 7, seen);
  });

  test('8: the broker is unreachable, or its firewall backend is unavailable', async () => {
    const s = store();
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    s.writeSettings('gone', { ...s.readSettings('alice')!, server: `http://127.0.0.1:${port}` });
    s.writeTokens('gone', w.readTokens('alice'));
    const r = await run(['ls', '--profile', 'gone']);
    assertExit(r, 8, seen);
    assert.match(r.stderr, new RegExp(`cannot reach the broker at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\) \\[BROKER_UNAVAILABLE\\]`));

    w.firewall('lab-pc').inject('open', 'unavailable');
    const fw = await run(['open', 'lab-pc', '--for', '10m', '--reason', 'T-8']);
    assertExit(fw, 8, seen);
    assert.match(fw.stderr, /\[FIREWALL_UNAVAILABLE\]\n  next: nothing was opened/);
  });

  test('9: not possible in the grant’s state (closing a closed grant)', async () => {
    const o = await run(['open', 'lab-pc', '--for', '10m', '--reason', 'T-9', '--json']);
    assertExit(o, 0, seen);
    const id = JSON.parse(o.stdout).grant.id;
    assertExit(await run(['close', id]), 0, seen);
    const again = await run(['close', id]);
    assertExit(again, 9, seen);
    assert.match(again.stderr, /\[INVALID_STATE\]\n  next: 'portcullis ls --all' shows the grant's state/);
  });

  test('130: Ctrl-C during sign-in cancels it and saves nothing', async () => {
    const p = w.cli.start(['login', '--server', w.broker.url, '--profile', 'quitter', '--scope', SCOPE]);
    await p.waitFor(/code: \S+/);
    p.child.kill('SIGINT');
    const r = await p.done;
    assertExit(r, 130, seen);
    assert.match(r.stderr, /sign-in cancelled; nothing was saved \[CANCELLED\]/);
    assert.equal(existsSync(store().tokenPath('quitter')), false);
  });

  test('every documented exit code was produced above', () => {
    const documented = EXIT_CODE_HELP.map(([c]) => c);
    assert.deepEqual([...seen].sort((a, b) => a - b), [...documented].sort((a, b) => a - b));
  });
});
