// infra/docker: the Dockerfile linted (dockerfile-utils) and read as an AST (dockerfile-ast): multi-stage, production
// dependencies only, non-root, the compiled CLI; compose.yaml: the broker and PostgreSQL, secrets only from the environment.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { ROOT } from '../helpers/broker.ts';
import { INFRA, read } from './helpers.ts';

const DOCKERFILE = join(INFRA, 'docker/Dockerfile');

describe('infra/docker', () => {
  const text = read(DOCKERFILE);
  const df = DockerfileParser.parse(text);
  const stages = df.getFROMs();
  // Flags (--from, --chown) are not part of the arguments in the AST; keep both, as written.
  const lines = df.getInstructions().map((i) => {
    const flags = 'getFlags' in i ? (i as unknown as { getFlags(): { toString(): string }[] }).getFlags().map(String) : [];
    return { kw: i.getKeyword(), args: [...flags, i.getArgumentsContent() ?? ''].join(' '), line: i.getRange().start.line };
  });
  const finalStart = stages.at(-1)!.getRange().start.line;
  const final = lines.filter((l) => l.line >= finalStart);

  it('lints clean: no error or warning from dockerfile-utils', () => {
    const problems = validate(text);
    assert.deepEqual(problems.map((p) => `${p.range.start.line + 1}: ${p.message}`), []);
    // The linter is live: a known mistake is reported.
    assert.ok(validate('FROM node:20\nFOO bar\n').length > 0);
  });

  it('multi-stage: build with dev dependencies, npm ci --omit=dev for the runtime, the final stage copies only dist/ and production modules', () => {
    assert.ok(stages.length >= 3, 'build, deps and runtime stages');
    assert.ok(lines.some((l) => l.kw === 'RUN' && /node scripts\/build\.mjs/.test(l.args)), 'dist/ is built by scripts/build.mjs');
    const deps = stages.find((s) => s.getBuildStage() === 'deps')!;
    const depsLines = lines.filter((l) => l.line > deps.getRange().start.line && l.line < finalStart);
    assert.ok(depsLines.some((l) => l.kw === 'RUN' && /npm ci --omit=dev/.test(l.args)));
    assert.ok(final.some((l) => l.kw === 'COPY' && /--from=deps .*\/app\/node_modules/.test(l.args)));
    assert.ok(final.some((l) => l.kw === 'COPY' && /--from=build .*\/app\/dist/.test(l.args)));
    assert.ok(!final.some((l) => l.kw === 'RUN' && /npm (ci|install)/.test(l.args)), 'no install in the runtime stage');
    assert.ok(!final.some((l) => l.kw === 'COPY' && /\bsrc\b/.test(l.args)), 'no TypeScript sources in the runtime image');
  });

  it('runs as a numeric non-root user, the compiled CLI with the flags of npm start, and says how to check health', () => {
    const users = final.filter((l) => l.kw === 'USER');
    assert.equal(users.length, 1);
    assert.match(users[0]!.args, /^[1-9]\d*:[1-9]\d*$/, 'numeric uid:gid, so runAsNonRoot can verify it');
    assert.ok(final.findIndex((l) => l.kw === 'USER') > final.findIndex((l) => l.kw === 'RUN'), 'USER after the last RUN');
    const entry = final.find((l) => l.kw === 'ENTRYPOINT')!;
    const start = JSON.parse(read(join(ROOT, 'package.json'))).scripts.start as string;
    assert.deepEqual(JSON.parse(entry.args), ['node', ...start.replace(/^node /, '').replace(/ serve$/, '').split(' ')]);
    assert.ok(final.some((l) => l.kw === 'HEALTHCHECK' && /\/healthz/.test(l.args)));
  });

  it('copies only files that exist and that the .dockerignore lets through', () => {
    const allowed = read(join(INFRA, 'docker/Dockerfile.dockerignore')).split('\n').filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/\*\*$/, ''));
    for (const l of lines.filter((x) => x.kw === 'COPY' && !x.args.includes('--from='))) {
      const srcs = l.args.replace(/--\S+/g, '').trim().split(/\s+/).slice(0, -1);
      for (const s of srcs) {
        assert.ok(existsSync(join(ROOT, s)), `COPY ${s}: no such file`);
        assert.ok(allowed.includes(s.replace(/\/$/, '')), `COPY ${s} is excluded by the .dockerignore`);
      }
    }
  });

  it('compose.yaml: the broker and PostgreSQL; migrate first; read-only, no new privileges; secrets only from the environment', () => {
    const compose = parseYaml(read(join(INFRA, 'docker/compose.yaml')));
    assert.deepEqual(Object.keys(compose.services).sort(), ['migrate', 'portcullis', 'postgres']);
    const broker = compose.services.portcullis;
    assert.equal(broker.read_only, true);
    assert.deepEqual(broker.cap_drop, ['ALL']);
    assert.ok(broker.security_opt.includes('no-new-privileges:true'));
    assert.equal(broker.depends_on.migrate.condition, 'service_completed_successfully');
    assert.deepEqual(compose.services.migrate.command, ['migrate']);
    assert.match(broker.ports[0], /^127\.0\.0\.1:/, 'published on loopback only: TLS comes from a proxy in front');
    for (const svc of Object.values<any>(compose.services)) {
      for (const [k, v] of Object.entries<string>(svc.environment ?? {})) {
        if (/SECRET|PASSWORD|TOKEN/.test(k)) assert.match(v, /^\$\{[A-Z_]+(:\?[^}]*)?\}$/, `${k} comes from the environment`);
      }
    }
    const cfg = read(join(INFRA, 'docker/portcullis.yaml')).replace(/\$\{([A-Z_]+)\}/g, (_, n: string) => (n === 'PORTCULLIS_PUBLIC_URL' ? 'https://portcullis.example.com' : n === 'OIDC_ISSUER' ? 'https://login.example.com' : 'x'));
    const config = parseConfig(parseYaml(cfg));
    assert.equal(config.store.url, 'postgres://portcullis@postgres:5432/portcullis');
  });
});
