// The Slack state and the outbox on PostgreSQL: links, single-use links, seen commands, delivery once.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Principal, UserId } from '../../src/domain/index.ts';
import { requireOrSkip } from '../helpers/env.ts';
import { waitFor } from '../helpers/broker.ts';
import { postgresUnavailable, startPostgres, type Postgres } from '../helpers/postgres.ts';
import { slackWorld, TEAM, textOf, type SlackWorld } from './helpers.ts';

const alice: Principal = { sub: 'alice' as UserId, email: 'alice@example.test', groups: ['engineers'], mfa: true, amr: ['mfa'], authTime: Math.floor(Date.now() / 1000) };

describe('Slack on PostgreSQL', () => {
  let pg: Postgres | undefined;
  let w: SlackWorld | undefined;
  const skipped = postgresUnavailable();
  before(async () => {
    if (skipped) return;
    pg = await startPostgres();
    w = await slackWorld({ store: { url: pg.url } });
  });
  after(async () => {
    await w?.stop();
    await pg?.stop();
  });
  const ready = (t: TestContext) => requireOrSkip(t, !skipped, skipped ?? '');

  test('link, a single-use token taken once of two concurrent uses, a command seen once', async (t) => {
    if (!ready(t)) return;
    const s = w!.broker.app.slack!.slack;
    await s.link({ teamId: TEAM, userId: 'UALICE' }, 'alice');
    await s.link({ teamId: TEAM, userId: 'UALICE' }, 'alice');
    assert.equal(await s.linkedSub({ teamId: TEAM, userId: 'UALICE' }), 'alice');
    const tok = await s.createToken({ teamId: TEAM, userId: 'UALICE' }, { kind: 'link', userName: 'alice', responseUrl: null });
    const takes = await Promise.all([s.takeToken(tok), s.takeToken(tok), s.takeToken(tok)]);
    assert.equal(takes.filter(Boolean).length, 1);
    assert.equal(await s.firstSight('k1', 60_000), true);
    assert.equal(await s.firstSight('k1', 60_000), false);
  });

  test('a grant notifies the linked requester exactly once', async (t) => {
    if (!ready(t)) return;
    await w!.broker.app.broker.noteSignIn(alice);
    const { grant } = await w!.broker.app.broker.requestAccess(alice, { target: 'lab-pc', duration: '10m', reason: 'T-70 pg' }, { channel: 'api', callerIp: '198.51.100.70' });
    await waitFor('open DM', async () => w!.ws.messages.some((m) => m.channel === 'DUALICE' && textOf(m).includes(grant.id)));
    await w!.broker.app.slack!.outbox.idle();
    assert.equal(w!.ws.messages.filter((m) => m.channel === 'DUALICE' && /is open/.test(textOf(m))).length, 1);
    assert.ok((await w!.broker.app.slack!.outbox.rows()).every((r) => r.state === 'done'));
  });
});
