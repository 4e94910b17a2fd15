// The fixture suite of policies/tests/: YAML (or JSON) request examples with the expected
// outcome, run against the real engine with the same semantics the broker uses.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PortcullisError } from '../errors.ts';
import type { Principal, UserId } from '../domain/index.ts';
import { parseAddress, readCidr } from '../net/cidr.ts';
import { localTime, sourceFacts } from './context.ts';
import { decideRequest, type RequestOutcome } from './decision.ts';
import type { PolicyAction, PolicyContext, PolicyEngine, PolicyQuery } from './port.ts';

export const FIXTURE_DIR = 'tests';

const principalSchema = z.strictObject({
  id: z.string().min(1),
  email: z.string().optional(),
  name: z.string().optional(),
  groups: z.array(z.string().min(1)).optional(),
});

const targetSchema = z.strictObject({
  id: z.string().min(1),
  tags: z.record(z.string(), z.string()).optional(),
  ports: z.array(z.number().int().min(1).max(65_535)).min(1).optional(),
});

const contextSchema = z.strictObject({
  mfa: z.boolean().optional(),
  authAgeSeconds: z.number().int().min(0).optional(),
  durationMinutes: z.number().int().min(0).optional(),
  port: z.number().int().min(1).max(65_535).optional(),
  /** An address, or a whole prefix such as 10.213.0.0/24 (then sourcePrefixLength, if given, must agree). */
  sourceIp: z.string().optional(),
  sourcePrefixLength: z.number().int().min(0).max(128).optional(),
  /** The caller's address; omitted = the source address, so a one-host source is the caller's own. */
  callerIp: z.string().optional(),
  channel: z.enum(['web', 'slack', 'cli', 'api']).optional(),
  reason: z.string().optional(),
  hour: z.number().int().min(0).max(23).optional(),
  weekday: z.enum(['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']).optional(),
  requester: z.string().min(1).optional(),
  /** An instant (ISO 8601); sets hour and weekday in the file's timeZone, as the broker would. */
  at: z.iso.datetime({ offset: true }).optional(),
}).refine((c) => c.at === undefined || (c.hour === undefined && c.weekday === undefined), {
  message: 'give either "at" or hour/weekday, not both',
  path: ['at'],
});

const fixtureSchema = z
  .strictObject({
    name: z.string().min(1),
    principal: principalSchema.partial().optional(),
    /** Shorthand for principal.groups. */
    groups: z.array(z.string().min(1)).optional(),
    /** Omitted: the broker's request decision (allow / approval / deny). */
    action: z.enum(['OpenPort', 'RequestPort', 'ApprovePort']).optional(),
    target: targetSchema.partial().optional(),
    context: contextSchema.optional(),
    expect: z.enum(['allow', 'approval', 'deny']),
    /** When given, the deciding policy ids must be exactly these. */
    policies: z.array(z.string()).optional(),
  })
  .refine((f) => f.action === undefined || f.expect !== 'approval', {
    message: '"approval" is the outcome of a request decision; with an explicit action expect allow or deny',
    path: ['expect'],
  });

const fileSchema = z.strictObject({
  timeZone: z.string().default('UTC'),
  defaults: z
    .strictObject({ principal: principalSchema.partial().optional(), target: targetSchema.partial().optional(), context: contextSchema.optional() })
    .optional(),
  fixtures: z.array(fixtureSchema).min(1),
});

/** Context fields a fixture does not mention: a normal, well-formed weekday-morning request. */
export const CONTEXT_DEFAULTS: PolicyContext = {
  mfa: true,
  authAgeSeconds: 300,
  durationMinutes: 60,
  port: 3389,
  sourceIp: '198.51.100.7/32',
  sourcePrefixLength: 32,
  callerIp: '198.51.100.7',
  sourceIsCaller: true,
  channel: 'web',
  reason: 'T-1000 routine maintenance',
  hour: 10,
  weekday: 'Tuesday',
};

export interface Fixture {
  file: string;
  name: string;
  action: PolicyAction | undefined;
  query: Omit<PolicyQuery, 'action'>;
  expect: RequestOutcome;
  policies: string[] | undefined;
}

export interface FixtureResult {
  file: string;
  name: string;
  action: PolicyAction | 'request';
  expected: RequestOutcome;
  actual: RequestOutcome;
  policyIds: string[];
  errors: string[];
  ok: boolean;
  /** Why it failed, when it did. */
  mismatch?: string;
}

/** Reads every *.yaml / *.yml / *.json under `<policyDir>/tests`; a malformed file is an error, never skipped. */
export function loadFixtures(policyDir: string): Fixture[] {
  const dir = join(policyDir, FIXTURE_DIR);
  if (!existsSync(dir)) throw new PortcullisError('POLICY_INVALID', `no fixture directory ${dir}`);
  const files = readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort();
  return files.flatMap((f) => parseFixtureFile(join(dir, f), readFileSync(join(dir, f), 'utf8')));
}

export function parseFixtureFile(file: string, text: string): Fixture[] {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    throw new PortcullisError('POLICY_INVALID', `${file}: not valid YAML: ${(e as Error).message}`, { cause: e });
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${file}: ${i.path.map(String).join('.') || '(top level)'}: ${i.message}`);
    throw new PortcullisError('POLICY_INVALID', `invalid fixture file:\n  ${lines.join('\n  ')}`, { details: { issues: lines } });
  }
  const { timeZone, defaults = {}, fixtures } = parsed.data;
  return fixtures.map((f) => {
    const p = { ...defaults.principal, ...f.principal };
    const t = { ...defaults.target, ...f.target };
    const { at, sourceIp, sourcePrefixLength, callerIp, ...c } = { ...defaults.context, ...f.context };
    if (p.id === undefined || t.id === undefined) {
      throw new PortcullisError('POLICY_INVALID', `${file}: fixture "${f.name}" needs principal.id and target.id (here or in defaults)`);
    }
    const source = readCidr(sourceIp ?? '198.51.100.7');
    const explicitPrefix = sourceIp?.includes('/') ? source?.prefix : undefined;
    if (source === undefined || (callerIp !== undefined && parseAddress(callerIp) === undefined)) {
      throw new PortcullisError('POLICY_INVALID', `${file}: fixture "${f.name}": sourceIp and callerIp must be IP addresses (sourceIp may be a CIDR)`);
    }
    if (explicitPrefix !== undefined && f.context?.sourcePrefixLength !== undefined && f.context.sourcePrefixLength !== explicitPrefix) {
      throw new PortcullisError('POLICY_INVALID', `${file}: fixture "${f.name}": sourcePrefixLength contradicts the prefix of sourceIp`);
    }
    const prefix = explicitPrefix ?? sourcePrefixLength ?? source.prefix;
    // `at` wins over an hour/weekday inherited from defaults: it is the more specific statement.
    const context: PolicyContext = {
      ...CONTEXT_DEFAULTS,
      ...c,
      ...sourceFacts(source.address.text, prefix, callerIp ?? source.address.text),
      ...(at ? localTime(Date.parse(at), timeZone) : {}),
    };
    const principal: Principal = {
      sub: p.id as UserId,
      email: p.email,
      name: p.name,
      groups: f.groups ?? p.groups ?? [],
      mfa: context.mfa,
      amr: [],
    };
    const target = { id: t.id, tags: t.tags ?? {}, ports: t.ports ?? [3389] };
    return { file, name: f.name, action: f.action, query: { principal, target, context }, expect: f.expect, policies: f.policies };
  });
}

export function runFixture(engine: PolicyEngine, f: Fixture): FixtureResult {
  let actual: RequestOutcome;
  let policyIds: string[];
  let errors: string[];
  if (f.action === undefined) {
    ({ outcome: actual, policyIds, errors } = decideRequest(engine, f.query));
  } else {
    const d = engine.decide({ ...f.query, action: f.action });
    ({ policyIds, errors } = d);
    actual = d.allowed ? 'allow' : 'deny';
  }
  let mismatch: string | undefined;
  if (actual !== f.expect) mismatch = `expected ${f.expect}, got ${actual}`;
  else if (f.policies && !sameSet(f.policies, policyIds)) {
    mismatch = `expected policies [${[...f.policies].sort().join(', ')}], got [${policyIds.join(', ')}]`;
  } else if (errors.length > 0) mismatch = `evaluation errors: ${errors.join('; ')}`;
  return {
    file: f.file,
    name: f.name,
    action: f.action ?? 'request',
    expected: f.expect,
    actual,
    policyIds,
    errors,
    ok: mismatch === undefined,
    ...(mismatch === undefined ? {} : { mismatch }),
  };
}

export function runFixtures(engine: PolicyEngine, fixtures: Fixture[]): FixtureResult[] {
  return fixtures.map((f) => runFixture(engine, f));
}

function sameSet(a: string[], b: string[]): boolean {
  const x = [...new Set(a)].sort();
  const y = [...new Set(b)].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
