// Builds the validated Config from a YAML file (or the embedded default) and the environment.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { PortcullisError } from '../errors.ts';
import { configSchema, type Config } from './schema.ts';

/** What `npm start` runs with no config: SQLite under ./data, the development IdP, simulated firewalls. */
export const EMBEDDED_DEFAULT = {
  dev: { embeddedIdp: true, simulatedSlack: true },
  // The example policies shipped with the package, wherever the broker is started from.
  policy: { dir: fileURLToPath(new URL('../../policies', import.meta.url)) },
  oidc: { clients: { web: { id: 'portcullis-web' }, cli: { id: 'portcullis-cli' } } },
  store: { url: 'sqlite:./data/portcullis.db' },
  audit: { jsonl: './data/audit.jsonl', readerGroups: ['approvers', 'auditors'] },
  grants: { adminGroups: ['portcullis-admins'] },
  targets: [
    { id: 'demo-pc', description: 'Demo Windows PC', connect: 'demo-pc.example.invalid:3389', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'simulated' } },
    { id: 'demo-dc01', description: 'Demo domain controller', connect: 'demo-dc01.example.invalid:3389', tags: { env: 'prod', customer: 'internal', role: 'domain-controller' }, firewall: { kind: 'simulated' } },
    // The MSP technician's customer machine. `demo_source: loopback` lets policies/msp.cedar accept this
    // computer as the source in the demo, where the MSP VPN cannot exist; no real target carries the tag.
    { id: 'acme-pc01', description: 'ACME office PC', connect: 'acme-pc01.example.invalid:3389', tags: { env: 'prod', customer: 'acme', demo_source: 'loopback' }, firewall: { kind: 'simulated' } },
  ],
} as const;

export interface LoadOptions {
  /** Path of the YAML file; undefined = the embedded default. */
  path?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  let raw: unknown;
  if (options.path === undefined) {
    raw = structuredClone(EMBEDDED_DEFAULT);
  } else {
    let text: string;
    try {
      text = readFileSync(options.path, 'utf8');
    } catch (e) {
      throw new PortcullisError('CONFIG_INVALID', `cannot read config file ${options.path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e });
    }
    try {
      raw = parseYaml(text, { prettyErrors: true }) ?? {};
    } catch (e) {
      throw new PortcullisError('CONFIG_INVALID', `config file ${options.path} is not valid YAML: ${(e as Error).message}`, { cause: e });
    }
  }
  return parseConfig(interpolate(raw, env, []));
}

/** Validates an already-parsed object; messages name the key, never a value (values may be secrets). */
export function parseConfig(raw: unknown): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.map(String).join('.') || '(top level)';
      if (issue.code === 'unrecognized_keys') {
        const where = issue.path.length ? `${key}.` : '';
        return `unknown key ${issue.keys.map((k) => `"${where}${k}"`).join(', ')}`;
      }
      return `${key}: ${issue.message}`;
    });
    throw new PortcullisError('CONFIG_INVALID', `invalid configuration:\n  ${lines.join('\n  ')}`, {
      details: { issues: lines },
    });
  }
  return result.data;
}

function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) {
        throw new PortcullisError('CONFIG_INVALID', `invalid configuration:\n  ${path.join('.')}: environment variable ${name} is not set`, { field: path.join('.') });
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, String(i)]));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, [...path, k])]));
  }
  return value;
}
