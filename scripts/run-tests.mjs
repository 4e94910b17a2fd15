#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner (Node 20 does not expand globs) and
// fails when no test ran: a green run that executed nothing is a lie.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'helpers' || name === 'fixtures') return [];
    if (statSync(p).isDirectory()) return find(p);
    return name.endsWith('.test.ts') ? [p] : [];
  });
}

const filter = process.argv.slice(2);
let files = find('test').sort();
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
console.log(`run-tests: ${files.length} files: ${files.map((f) => relative('test', f)).join(', ')}`);

const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
  { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PORTCULLIS_LOG: process.env.PORTCULLIS_LOG ?? 'silent' } },
);
// The summary is followed by the list of failing tests, which can be long: keep the last summary seen.
let tail = '';
const summary = {};
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString()).slice(-4000);
  for (const label of ['pass', 'fail', 'skipped']) {
    const m = [...tail.matchAll(new RegExp(`ℹ ${label} (\\d+)`, 'g'))].pop();
    if (m) summary[label] = Number(m[1]);
  }
});
child.on('close', (code) => {
  const num = (label) => summary[label] ?? NaN;
  const pass = num('pass');
  const fail = num('fail');
  const skipped = num('skipped');
  if (!Number.isFinite(pass)) {
    console.error('run-tests: could not read the test summary');
    process.exit(code || 1);
  }
  console.log(`\n${pass} passed, ${fail} failed, ${skipped} skipped`);
  if (pass === 0) {
    console.error('run-tests: no test passed; a run that executes no test fails');
    process.exit(1);
  }
  process.exit(code ?? 1);
});
