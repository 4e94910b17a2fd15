// Shared by the infra checks: the files of infra/, HCL parsed by @cdktf/hcl2json, and which tools this machine has.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { ROOT } from '../helpers/broker.ts';

export const INFRA = join(ROOT, 'infra');
export const TF_DIR = join(INFRA, 'terraform/aws');

export function filesUnder(dir: string, pred: (name: string) => boolean = () => true): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === '.terraform' ? [] : filesUnder(p, pred);
    return pred(name) ? [p] : [];
  });
}

export const rel = (p: string) => relative(ROOT, p);
export const read = (p: string) => readFileSync(p, 'utf8');

/** A command on PATH (absolute path), or undefined. */
export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

type Hcl = Record<string, any>;

/** Every .tf file of the AWS module, parsed and merged per block type (resource, data, variable, output, locals). */
export async function terraformModule(): Promise<{ files: Record<string, Hcl>; resource: Hcl; data: Hcl; variable: Hcl; output: Hcl }> {
  const files: Record<string, Hcl> = {};
  const merged: Record<string, Hcl> = { resource: {}, data: {}, variable: {}, output: {} };
  for (const f of filesUnder(TF_DIR, (n) => n.endsWith('.tf'))) {
    const json = (await parse(f, read(f))) as Hcl;
    files[rel(f)] = json;
    for (const kind of ['resource', 'data'] as const) {
      for (const [type, byName] of Object.entries(json[kind] ?? {})) {
        merged[kind]![type] = { ...(merged[kind]![type] ?? {}), ...(byName as Hcl) };
      }
    }
    for (const kind of ['variable', 'output'] as const) Object.assign(merged[kind]!, json[kind] ?? {});
  }
  return { files, resource: merged.resource!, data: merged.data!, variable: merged.variable!, output: merged.output! };
}
