// Sessions of the spawned CLI: short-lived ID tokens renewed with the refresh token (never printed), a token file
// loosened by accident is tightened again, and logout revokes the refresh token at the provider.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, statSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { refreshDeviceLogin } from '../../src/identity/device.ts';
import { api } from '../helpers/broker.ts';
import { assertExit, startWorld, type World } from './helpers/world.ts';

describe('portcullis CLI sessions', () => {
  let w: World;
  before(async () => {
    // ID tokens live 20 s, less than the CLI's 30 s renewal margin: every command must renew.
    w = await startWorld({ idTokenTtlSeconds: 20 });
  });
  after(async () => {
    await w?.stop();
  });

  test('an expiring ID token is renewed with the refresh token and saved; the broker accepts the new one', async () => {
    assertExit(await w.login('alice', 'alice'), 0);
    const before = w.readTokens('alice');
    assert.ok(before.refreshToken, 'offline_access gave a refresh token');
    const refreshes: string[] = [];
    const onGrant = (ctx: { oidc: { params?: { grant_type?: unknown } } }) => {
      if (ctx.oidc.params?.grant_type === 'refresh_token') refreshes.push('refresh');
    };
    w.idp.provider.on('grant.success', onGrant);
    try {
      const r = await w.cli.run(['whoami', '--profile', 'alice']);
      assertExit(r, 0);
    } finally {
      w.idp.provider.off('grant.success', onGrant);
    }
    const now = w.readTokens('alice');
    // The renewal is seen at the provider and in the rotated refresh token. The ID token itself may be byte-identical
    // to the old one: its iat/exp are whole seconds, RS256 is deterministic and it has no jti, so a renewal within
    // the same second as the sign-in yields the same token; comparing it would test the wall clock, not the CLI.
    assert.deepEqual(refreshes, ['refresh'], 'the CLI used its refresh token once');
    assert.notEqual(now.refreshToken, before.refreshToken, 'the provider rotated the refresh token and the CLI saved the new one');
    assert.ok(now.expiresAt >= before.expiresAt);
    assert.equal((await api(w.broker.url, '/api/v1/me', { token: now.idToken })).status, 200);
  });

  test('a token file readable by others is tightened back to 0600 when next read', async () => {
    const path = `${w.configHome}/portcullis/credentials/alice.json`;
    chmodSync(path, 0o644);
    assertExit(await w.cli.run(['ls', '--profile', 'alice']), 0);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  test('logout revokes the refresh token at the provider and deletes the token file; --forget drops the profile', async () => {
    const { refreshToken } = w.readTokens('alice');
    const r = await w.cli.run(['logout', '--profile', 'alice']);
    assertExit(r, 0);
    assert.match(r.stdout, /Signed out of profile alice \(http:\/\/127\.0\.0\.1:\d+\)\. The refresh token was revoked at the identity provider\./);
    assert.equal(existsSync(`${w.configHome}/portcullis/credentials/alice.json`), false);
    await assert.rejects(refreshDeviceLogin({ issuer: w.idp.issuer, clientId: w.idp.clients.cli.id, dangerouslyAllowHttp: true }, refreshToken!), { code: 'TOKEN_EXPIRED' });

    const who = await w.cli.run(['whoami', '--profile', 'alice']);
    assertExit(who, 3);
    assert.match(who.stderr, /not signed in to http:\/\/127\.0\.0\.1:\d+ \(profile alice\) \[NOT_SIGNED_IN\]\n  next: sign in again: portcullis login --profile alice/);

    assertExit(await w.cli.run(['logout', '--profile', 'alice', '--forget']), 0);
    assert.equal(existsSync(`${w.configHome}/portcullis/profiles/alice.json`), false);
  });

  test('no token or refresh token was printed in this session', () => {
    assert.ok(w.tokensSeen.size >= 4);
    for (const t of w.tokensSeen) assert.equal(w.cli.transcript.includes(t), false);
  });
});
