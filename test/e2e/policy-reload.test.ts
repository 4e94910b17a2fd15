// A running broker reloads its policies on SIGHUP: a set that fails validation is refused and the
// old one keeps deciding; a valid one takes effect.
import assert from 'node:assert/strict';
import { appendFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { api, ROOT, spawnBroker, tempDir, testConfig, waitFor, type BrokerProcess } from '../helpers/broker.ts';
import { startTestIdp, type TestIdp } from '../helpers/idp.ts';

let idp: TestIdp;
let broker: BrokerProcess;
const tmp = tempDir();
const policies = join(tmp.dir, 'policies');

before(async () => {
  cpSync(join(ROOT, 'policies'), policies, { recursive: true });
  idp = await startTestIdp({ mfa: 'amr-otp', users: { alice: { email: 'alice@example.test', groups: ['engineers'] } } });
  broker = await spawnBroker(
    testConfig(tmp.dir, {
      policy: { dir: policies },
      oidc: { issuer: idp.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } } },
    }),
    tmp.dir,
  );
});
after(async () => {
  await broker?.kill('SIGTERM');
  await idp?.close();
  tmp.cleanup();
});

test('SIGHUP with a broken policy keeps the old set (and says so); a valid change then takes effect', async () => {
  const token = await idp.getIdToken('alice');
  const ask = () => api(broker.url, '/api/v1/grants', { token, body: { target: 'lab-pc', duration: '10m', reason: 'T-1' } });
  assert.equal((await ask()).status, 201);

  // A lockdown policy and a syntax error in the same change: the whole change is refused.
  const lockdown = '\n// Lockdown.\n@id("lockdown")\nforbid (principal, action, resource);\n';
  appendFileSync(join(policies, 'global.cedar'), `${lockdown}\n@id("broken")\npermit (principal, action, resource) when { context.mfa == };\n`);
  broker.child.kill('SIGHUP');
  await waitFor('reload refusal in the log', async () => /policy reload failed; the previous set stays in force/.test(broker.output()));
  assert.match(broker.output(), /global\.cedar:\d+:\d+/, 'the refusal names file:line:column');
  assert.equal((await ask()).status, 201, 'the old set still decides');

  // Fix the syntax error, keep the lockdown: now it takes effect.
  cpSync(join(ROOT, 'policies', 'global.cedar'), join(policies, 'global.cedar'));
  appendFileSync(join(policies, 'global.cedar'), lockdown);
  broker.child.kill('SIGHUP');
  await waitFor('reload in the log', async () => /policies reloaded/.test(broker.output()));
  const refused = await ask();
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.code, 'POLICY_DENIED');
  assert.match(refused.body.error.message, /global\/lockdown/);
});
