// Reads a policy directory (schema.cedarschema + *.cedar), checks it with Cedar and maps every
// problem to file:line:column; the loaded set carries stable, file-qualified policy ids.
import {
  checkParsePolicySet,
  checkParseSchema,
  policySetTextToParts,
  policyToJson,
  validate,
  type DetailedError,
} from '@cedar-policy/cedar-wasm/nodejs';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { byteOffsetOf, positionAt } from './location.ts';

export const SCHEMA_FILE = 'schema.cedarschema';

export interface PolicyProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

export interface LoadedPolicy {
  /** File-qualified id, e.g. `it-team/engineers-self-serve`: what decisions and the audit report. */
  id: string;
  /** The policy's own `@id("…")`. */
  localId: string;
  file: string;
  line: number;
  column: number;
  effect: 'permit' | 'forbid';
  /** The plain-English comment written directly above the policy. */
  comment: string;
  /** Cedar source of this one policy, annotations included. */
  text: string;
  /** Every annotation but @id, e.g. `approvals: "2"` (how many approvers a RequestPort permit asks for). */
  annotations: Record<string, string>;
}

export interface LoadedPolicySet {
  dir: string;
  schemaText: string;
  policies: LoadedPolicy[];
}

export type ReadResult = { ok: true; set: LoadedPolicySet } | { ok: false; problems: PolicyProblem[] };

// Ids end up in audit events and dashboards, so keep them to characters nobody has to escape.
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function formatProblem(p: PolicyProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message}`;
}

/** Reads and checks everything; never throws for content problems, only returns them. */
export function readPolicyDir(dir: string): ReadResult {
  const problems: PolicyProblem[] = [];
  if (!existsSync(dir)) {
    return { ok: false, problems: [{ file: dir, line: 1, column: 1, message: 'policy directory does not exist' }] };
  }

  const schemaPath = join(dir, SCHEMA_FILE);
  let schemaText: string | undefined;
  if (!existsSync(schemaPath)) {
    problems.push({ file: schemaPath, line: 1, column: 1, message: `missing ${SCHEMA_FILE}` });
  } else {
    schemaText = readFileSync(schemaPath, 'utf8');
    const parsed = checkParseSchema(schemaText);
    if (parsed.type === 'failure') {
      problems.push(...parsed.errors.map((e) => problemFrom(schemaPath, schemaText!, e)));
      schemaText = undefined;
    }
  }

  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cedar'))
    .sort();
  if (files.length === 0) {
    // An empty set denies everything: fail-closed, but nearly always a wrong `policy.dir`.
    problems.push({ file: dir, line: 1, column: 1, message: 'no *.cedar policy files' });
  }

  const policies: LoadedPolicy[] = [];
  for (const name of files) {
    const path = join(dir, name);
    const text = readFileSync(path, 'utf8');
    const got = readPolicyFile(path, text, schemaText);
    problems.push(...got.problems);
    policies.push(...got.policies);
  }

  if (problems.length > 0 || schemaText === undefined) return { ok: false, problems };
  return { ok: true, set: { dir, schemaText, policies } };
}

/** Syntax, schema validation and id checks of one file; offsets stay relative to the file. */
export function readPolicyFile(
  path: string,
  text: string,
  schemaText: string | undefined,
): { policies: LoadedPolicy[]; problems: PolicyProblem[] } {
  const parsed = checkParsePolicySet({ staticPolicies: text });
  if (parsed.type === 'failure') {
    return { policies: [], problems: parsed.errors.map((e) => problemFrom(path, text, e)) };
  }
  const split = policySetTextToParts(text);
  if (split.type === 'failure') {
    return { policies: [], problems: split.errors.map((e) => problemFrom(path, text, e)) };
  }
  const problems: PolicyProblem[] = [];
  if (split.policy_templates.length > 0) {
    const at = positionAt(text, byteOffsetOf(text, text.indexOf(split.policy_templates[0]!)));
    problems.push({ file: path, ...at, message: 'policy templates are not supported; write static policies' });
  }

  const stem = basename(path, '.cedar');
  const located = locate(text, split.policies);
  const seen = new Map<string, LoadedPolicy>();
  const policies: LoadedPolicy[] = [];
  for (const { part, index, previousEnd } of located) {
    const at = positionAt(text, byteOffsetOf(text, index));
    const json = policyToJson(part);
    if (json.type === 'failure') {
      problems.push(...json.errors.map((e) => problemFrom(path, text, e)));
      continue;
    }
    const localId = json.json.annotations?.['id'];
    if (localId === undefined) {
      problems.push({
        file: path,
        ...at,
        message: 'policy has no @id("…") annotation; ids go into the audit trail and must be stable',
      });
      continue;
    }
    if (!ID_PATTERN.test(localId)) {
      problems.push({ file: path, ...at, message: `@id("${localId}") must be letters, digits, ".", "_" or "-"` });
      continue;
    }
    const dup = seen.get(localId);
    if (dup) {
      problems.push({ file: path, ...at, message: `duplicate @id("${localId}"), first used at line ${dup.line}` });
      continue;
    }
    const policy: LoadedPolicy = {
      id: `${stem}/${localId}`,
      localId,
      file: path,
      ...at,
      effect: json.json.effect,
      comment: commentAbove(text.slice(previousEnd, index)),
      text: part,
      annotations: Object.fromEntries(Object.entries(json.json.annotations ?? {}).filter(([k]) => k !== 'id').map(([k, v]) => [k, String(v ?? '')])),
    };
    seen.set(localId, policy);
    policies.push(policy);
  }

  if (schemaText !== undefined) {
    // Validated file by file so Cedar's offsets stay relative to this file's text.
    const v = validate({ schema: schemaText, policies: { staticPolicies: text }, validationSettings: { mode: 'strict' } });
    // Cedar names policies policy0, policy1 … in source order; show the author's @id instead.
    const rename = (m: string) =>
      m.replace(/`policy(\d+)`/g, (all, n: string) => {
        const p = located[Number(n)];
        const id = p ? (policies.find((q) => q.text === p.part)?.localId ?? all) : all;
        return `\`${id}\``;
      });
    if (v.type === 'failure') {
      problems.push(...v.errors.map((e) => problemFrom(path, text, e, rename)));
    } else {
      for (const ve of v.validationErrors) {
        const fallback = /^policy(\d+)$/.exec(ve.policyId);
        const p = fallback ? located[Number(fallback[1])] : undefined;
        problems.push(problemFrom(path, text, ve.error, rename, p ? byteOffsetOf(text, p.index) : 0));
      }
    }
  }
  return { policies: problems.length > 0 ? [] : policies, problems };
}

/** Where each policy Cedar split off starts in the file, in source order. */
function locate(text: string, parts: string[]): { part: string; index: number; previousEnd: number }[] {
  const used = new Set<number>();
  const found = parts.map((part) => {
    // Identical policies are legal; take the first occurrence not claimed yet.
    let index = text.indexOf(part);
    while (index !== -1 && used.has(index)) index = text.indexOf(part, index + 1);
    if (index === -1) throw new Error(`cedar split a policy that is not verbatim in the file: ${part.slice(0, 40)}`);
    used.add(index);
    return { part, index };
  });
  found.sort((a, b) => a.index - b.index);
  return found.map((f, i) => ({ ...f, previousEnd: i === 0 ? 0 : found[i - 1]!.index + found[i - 1]!.part.length }));
}

/** The last block of `//` lines right above a policy (a blank line ends a block). */
function commentAbove(gap: string): string {
  const lines = gap.split('\n').map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const block: string[] = [];
  for (let i = lines.length - 1; i >= 0 && lines[i]!.startsWith('//'); i--) {
    block.unshift(lines[i]!.replace(/^\/\/\s?/, ''));
  }
  return block.join(' ').trim();
}

function problemFrom(
  file: string,
  text: string,
  e: DetailedError,
  rename: (m: string) => string = (m) => m,
  fallbackOffset = 0,
): PolicyProblem {
  const loc = e.sourceLocations?.[0];
  const at = positionAt(text, loc ? loc.start : fallbackOffset);
  let message = rename(e.message);
  if (loc?.label) message += ` (${loc.label})`;
  if (e.help) message += `; ${rename(e.help)}`;
  return { file, ...at, message };
}
