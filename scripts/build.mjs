#!/usr/bin/env node
// Compiles src/ to dist/ (plain JavaScript, no TypeScript loader at run time: ~35 MB less
// resident memory and a faster start) and copies the web UI's static files beside it.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
} catch {
  console.error('build: type errors; not starting from a stale dist/');
  process.exit(1);
}
rmSync('dist/http/web/static', { recursive: true, force: true });
cpSync('src/http/web/static', 'dist/http/web/static', { recursive: true });
rmSync('dist/http/web/views', { recursive: true, force: true });
cpSync('src/http/web/views', 'dist/http/web/views', { recursive: true });
cpSync('src/dev/slack/page.eta', 'dist/dev/slack/page.eta');
// tsc is incremental and leaves unchanged outputs as they were: this stamp says when dist/ was last built.
writeFileSync('dist/.built', `${new Date().toISOString()}\n`);
