// The deployment docs stand on their own: the README's deployment section links each walk-through, every relative
// link in the README and docs/ resolves inside the repository, and every command the CLI registers is documented.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/broker.ts';
import { read } from './helpers.ts';

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
const slug = (h: string) => h.trim().toLowerCase().replace(/[`*_]/g, '').replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-');
const anchors = (md: string) => new Set([...md.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));
const links = (md: string) => [...md.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));

describe('docs', () => {
  const readme = read(join(ROOT, 'README.md'));
  const deploy = read(join(ROOT, 'docs/deploy.md'));

  it("the README's deployment section links each of the four walk-throughs, and each ends with a first grant", () => {
    const section = /^## Deployment\n([\s\S]*?)^## /m.exec(readme)?.[1];
    assert.ok(section, 'README has a ## Deployment section');
    const targets = ['1-single-host-systemd-and-nftables', '2-docker-compose', '3-kubernetes', '4-aws-with-terraform'];
    const have = anchors(deploy);
    for (const a of targets) {
      assert.ok(section.includes(`docs/deploy.md#${a}`), `README links ${a}`);
      assert.ok(have.has(a), `docs/deploy.md has the heading for #${a}`);
    }
    const parts = deploy.split(/^## /m).filter((p) => /^\d\. /.test(p));
    assert.equal(parts.length, 4);
    for (const p of parts) assert.match(p, /\*\*[Ff]irst grant\*\*[\s\S]*portcullis open /, `walk-through "${p.split('\n')[0]}" ends with a first grant`);
  });

  it('every relative link in the README and docs/ resolves inside the repository (and its anchor exists)', () => {
    const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    for (const f of files) {
      const md = read(join(ROOT, f));
      assert.doesNotMatch(md, /DESIGN\.md|\.\.\/shared\//, `${f} points outside the repository`);
      for (const l of links(md)) {
        const [path, anchor] = l.split('#') as [string, string | undefined];
        const target = path === '' ? join(ROOT, f) : resolve(dirname(join(ROOT, f)), path);
        assert.ok(target.startsWith(ROOT) && existsSync(target), `${f}: link ${l} does not resolve`);
        if (anchor && target.endsWith('.md')) assert.ok(anchors(read(target)).has(anchor), `${f}: link ${l}: no such heading`);
      }
    }
  });

  it('every command of `portcullis --help` is documented in docs/cli.md or the README', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), '--help'], { cwd: ROOT, encoding: 'utf8' });
    const commands = [...r.stdout.split(/^Commands:$/m)[1]!.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    assert.ok(commands.includes('migrate') && commands.includes('sweep'), commands.join(', '));
    const docs = read(join(ROOT, 'docs/cli.md')) + readme;
    for (const c of commands) assert.ok(docs.includes(`\`${c}`) || docs.includes(` ${c}\``), `${c} is not documented`);
    const tail = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'audit', '--help'], { cwd: ROOT, encoding: 'utf8' });
    assert.match(tail.stdout, /^ {2}tail /m);
    assert.match(read(join(ROOT, 'docs/cli.md')), /### `audit tail`/);
  });
});
