// Temporary policy directories for tests: a copy of the example policies, or hand-written files.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UserId } from '../../../src/domain/index.ts';
import type { PolicyQuery } from '../../../src/policy/port.ts';

export const EXAMPLE_DIR = join(import.meta.dirname, '..', '..', '..', 'policies');

/** A fresh directory with the example schema (and, unless `only` is given, the example policies). */
export function tempPolicyDir(files: Record<string, string> = {}, options: { examples?: boolean } = {}): {
  dir: string;
  write(name: string, text: string): void;
  cleanup(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-policy-'));
  if (options.examples ?? true) cpSync(EXAMPLE_DIR, dir, { recursive: true });
  else cpSync(join(EXAMPLE_DIR, 'schema.cedarschema'), join(dir, 'schema.cedarschema'));
  const write = (name: string, text: string) => writeFileSync(join(dir, name), text);
  for (const [name, text] of Object.entries(files)) write(name, text);
  return { dir, write, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An engineer asking for demo-pc (env=dev, customer=internal) for an hour, with MFA, on a Tuesday. */
export function engineerQuery(over: Partial<PolicyQuery['context']> = {}, groups = ['engineers']): Omit<PolicyQuery, 'action'> {
  return {
    principal: { sub: 'alice' as UserId, groups, mfa: true, amr: ['mfa'] },
    target: { id: 'demo-pc', tags: { env: 'dev', customer: 'internal' }, ports: [3389] },
    context: {
      mfa: true,
      authAgeSeconds: 120,
      durationMinutes: 60,
      port: 3389,
      sourceIp: '198.51.100.7/32',
      sourcePrefixLength: 32,
      callerIp: '198.51.100.7',
      sourceIsCaller: true,
      channel: 'web',
      reason: 'T-1 test',
      hour: 10,
      weekday: 'Tuesday',
      ...over,
    },
  };
}
