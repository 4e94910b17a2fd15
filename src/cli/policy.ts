// `portcullis policy validate|test`: check the Cedar policies against the schema and run the
// fixtures of policies/tests/, for people and for CI.
import type { Command } from 'commander';
import { relative } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { isPortcullisError } from '../errors.ts';
import { loadPolicyEngine } from '../policy/cedar.ts';
import { loadFixtures, runFixtures, type FixtureResult } from '../policy/fixtures.ts';
import { formatProblem, readPolicyDir, type PolicyProblem } from '../policy/source.ts';

/** Exit codes: 0 fine, 1 a fixture failed, 78 (EX_CONFIG, as `serve`) policies or fixtures invalid. */
export const EXIT_FIXTURE_FAILED = 1;
export const EXIT_INVALID = 78;

interface DirOptions {
  dir?: string;
  config?: string;
  json?: boolean;
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('check and test the Cedar policies');

  withDirOptions(policy.command('validate'))
    .description('validate the policies against the schema; problems print as file:line:column (exit 78)')
    .action((opts: DirOptions) => {
      process.exitCode = validateCommand(opts, process.stdout, process.stderr);
    });

  withDirOptions(policy.command('test'))
    .description('run every fixture in <dir>/tests; exit 1 on any mismatch, 78 on invalid policies or fixtures')
    .action((opts: DirOptions) => {
      process.exitCode = testCommand(opts, process.stdout, process.stderr);
    });
}

function withDirOptions(c: Command): Command {
  return c
    .option('-d, --dir <dir>', 'policy directory (default: policy.dir of the config, else ./policies)')
    .option('-c, --config <path>', 'YAML config file to take policy.dir and policy.timeZone from (default: $PORTCULLIS_CONFIG)')
    .option('--json', 'machine-readable output');
}

interface Out {
  write(s: string): unknown;
}

/** policy.dir / policy.timeZone: from --dir, else a config file if one is named, else defaults. */
function resolve(opts: DirOptions): { dir: string; timeZone: string } {
  // An explicit --dir needs no config (fixtures carry their own time zone), so a broken or
  // absent $PORTCULLIS_CONFIG does not stop a policy author; an explicit --config is still read.
  const path = opts.config ?? (opts.dir === undefined ? process.env.PORTCULLIS_CONFIG || undefined : undefined);
  const config = path === undefined ? undefined : loadConfig({ path });
  return { dir: opts.dir ?? config?.policy.dir ?? './policies', timeZone: config?.policy.timeZone ?? 'UTC' };
}

export function validateCommand(opts: DirOptions, out: Out, err: Out): number {
  const { dir } = resolve(opts);
  const got = readPolicyDir(dir);
  if (!got.ok) {
    if (opts.json) out.write(`${JSON.stringify({ ok: false, dir, problems: got.problems })}\n`);
    else printProblems(err, dir, got.problems);
    return EXIT_INVALID;
  }
  const policies = got.set.policies.map((p) => ({ id: p.id, effect: p.effect, at: `${p.file}:${p.line}:${p.column}`, comment: p.comment }));
  if (opts.json) {
    out.write(`${JSON.stringify({ ok: true, dir, policies })}\n`);
  } else {
    out.write(`${dir}: ${policies.length} policies valid against ${dir}/schema.cedarschema\n`);
    const w = Math.max(...policies.map((p) => p.id.length));
    for (const p of policies) out.write(`  ${p.effect.padEnd(6)} ${p.id.padEnd(w)}  ${p.comment}\n`);
  }
  return 0;
}

export function testCommand(opts: DirOptions, out: Out, err: Out): number {
  const { dir, timeZone } = resolve(opts);
  let results: FixtureResult[];
  try {
    const engine = loadPolicyEngine({ dir, timeZone });
    results = runFixtures(engine, loadFixtures(dir));
  } catch (e) {
    if (!isPortcullisError(e, 'POLICY_INVALID')) throw e;
    if (opts.json) out.write(`${JSON.stringify({ ok: false, dir, error: e.message })}\n`);
    else err.write(`${e.message}\n`);
    return EXIT_INVALID;
  }
  const failed = results.filter((r) => !r.ok);
  if (opts.json) {
    out.write(`${JSON.stringify({ ok: failed.length === 0, dir, total: results.length, passed: results.length - failed.length, failed: failed.length, results })}\n`);
  } else {
    for (const r of results) {
      const ids = r.policyIds.length ? r.policyIds.join(', ') : '(no policy matched)';
      const where = relative(dir, r.file);
      out.write(`${r.ok ? 'ok  ' : 'FAIL'}  ${where}  ${r.name}\n      ${r.action} -> ${r.actual}  by ${ids}\n`);
      if (!r.ok) out.write(`      ${r.mismatch}\n`);
    }
    out.write(`\n${results.length} fixtures: ${results.length - failed.length} passed, ${failed.length} failed\n`);
  }
  return failed.length === 0 ? 0 : EXIT_FIXTURE_FAILED;
}

function printProblems(err: Out, dir: string, problems: PolicyProblem[]): void {
  err.write(`${dir}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
  for (const p of problems) err.write(`${formatProblem(p)}\n`);
}
