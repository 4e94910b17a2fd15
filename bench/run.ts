// `npm run bench`: runs every bench/*.bench.ts, prints one table, writes bench/results.json.
import { readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchRow } from './stats.ts';


const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

const rows: BenchRow[] = [];
for (const f of files) {
  const mod = (await import(join(here, f))) as { run: () => Promise<BenchRow[]> };
  const started = Date.now();
  process.stderr.write(`bench: ${f} …\n`);
  const got = await mod.run();
  rows.push(...got);
  process.stderr.write(`bench: ${f} done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

const w = (k: keyof BenchRow) => Math.max(k.length, ...rows.map((r) => String(r[k] ?? '').length));
const cols: (keyof BenchRow)[] = ['bench', 'metric', 'value', 'unit', 'note'];
const line = (r: Record<string, unknown>) => cols.map((c) => String(r[c] ?? '').padEnd(w(c))).join('  ');
console.log(line({ bench: 'bench', metric: 'metric', value: 'value', unit: 'unit', note: 'note' }));
console.log(cols.map((c) => '-'.repeat(w(c))).join('  '));
for (const r of rows) console.log(line(r as unknown as Record<string, unknown>));
writeFileSync(join(here, 'results.json'), JSON.stringify({ node: process.version, time: new Date().toISOString(), rows }, null, 2) + '\n');

