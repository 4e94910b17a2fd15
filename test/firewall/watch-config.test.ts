// The watch keys are checked at start, each refusal naming its key: onExpiry, idleTimeout (nftables
// only: elsewhere nothing counts packets, so the setting would silently never close anything) and watch.attempts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.ts';

const BASE = { dev: { embeddedIdp: true } };
const target = (over: Record<string, unknown>) => ({ id: 'lab-gw', connect: 'lab-gw.example.test:3389', firewall: { kind: 'nftables', netns: 'lab' }, ...over });
const refusal = (raw: unknown): string => {
  try {
    parseConfig(raw);
  } catch (e) {
    return (e as Error).message;
  }
  return '';
};

test('defaults: onExpiry unset (cut), idleTimeout off, attempts bounded', () => {
  const c = parseConfig({ ...BASE, targets: [target({})] });
  assert.equal(c.targets[0]!.onExpiry, undefined);
  assert.equal(c.targets[0]!.idleTimeout, undefined);
  assert.deepEqual(c.watch.attempts, { setSize: 4096, timeout: '1h', window: '5m', top: 20, alertPerMinute: 60, alertOpenWindow: true });
});

test('refusals name the key', () => {
  assert.match(refusal({ ...BASE, targets: [target({ onExpiry: 'linger' })] }), /targets\.0\.onExpiry/);
  assert.match(refusal({ ...BASE, targets: [target({ idleTimeout: 'soon' })] }), /targets\.0\.idleTimeout/);
  assert.match(refusal({ ...BASE, targets: [target({ idleTimeout: '0s' })] }), /targets\.0\.idleTimeout: idleTimeout must be at least 1s/);
  assert.match(refusal({ ...BASE, targets: [target({ idleTimeout: '5m', firewall: { kind: 'aws-security-group', region: 'eu-west-1', securityGroupId: 'sg-0abc1234' } })] }), /targets\.0\.idleTimeout: idleTimeout needs an nftables firewall/);
  assert.match(refusal({ ...BASE, watch: { attempts: { setSize: 2 } } }), /watch\.attempts\.setSize/);
  assert.match(refusal({ ...BASE, watch: { attempts: { window: 'often' } } }), /watch\.attempts\.window/);
  assert.match(refusal({ ...BASE, watch: { attempts: { alertPerMinute: -1 } } }), /watch\.attempts\.alertPerMinute/);
  assert.match(refusal({ ...BASE, watch: { attemps: {} } }), /unknown key "watch\.attemps"/);
});
