// The layering the README promises, checked on the sources: transports in src/http never import the store,
// and the broker core never imports express, AWS, nft or Slack code.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const SRC = join(import.meta.dirname, '../../src');

function sources(dir: string): string[] {
  return readdirSync(join(SRC, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));
}

function imports(file: string): string[] {
  return [...readFileSync(join(SRC, file), 'utf8').matchAll(/^(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

test('src/http never imports the store: every read goes through the Broker', () => {
  const bad = sources('http').flatMap((f) => imports(f).filter((i) => /(^|\/)store\//.test(i)).map((i) => `${f} → ${i}`));
  assert.deepEqual(bad, []);
});

test('src/broker never imports express, AWS, nft or Slack code', () => {
  const bad = sources('broker').flatMap((f) => imports(f).filter((i) => /^express$|^@aws-sdk\/|^@slack\/|\/firewall\/(aws|nft)|\/slack\//.test(i)).map((i) => `${f} → ${i}`));
  assert.deepEqual(bad, []);
});
