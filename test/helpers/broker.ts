// Starts a whole broker for a test: in-process (createPortcullis) or as a child process (`portcullis serve`).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { createPortcullis, type Portcullis, type PortcullisOptions } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/log.ts';

export const ROOT = resolve(import.meta.dirname, '../..');

export function tempDir(prefix = 'portcullis-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A config for tests: loopback, a temp SQLite store and JSONL file, short grants allowed. */
export function testConfig(dir: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server: { listen: '127.0.0.1:0' },
    store: { url: `sqlite:${join(dir, 'portcullis.db')}` },
    policy: { dir: join(ROOT, 'policies') },
    grants: { minDuration: '1s', maxDuration: '8h' },
    audit: { jsonl: join(dir, 'audit.jsonl') },
    reaper: { sweep: '*/1 * * * * *' },
    targets: [{ id: 'lab-pc', connect: 'lab-pc.example.test:3389', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } }],
    ...overrides,
  };
}

export interface RunningBroker {
  app: Portcullis;
  url: string;
  stop(): Promise<void>;
}

export async function startBroker(raw: Record<string, unknown>, opts: PortcullisOptions = {}): Promise<RunningBroker> {
  const config = parseConfig(raw);
  const app = await createPortcullis(config, { log: createLogger(process.env.PORTCULLIS_LOG ?? 'silent'), ...opts });
  const { url } = await app.start();
  return { app, url, stop: () => app.stop() };
}

export interface BrokerProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs `portcullis serve --config FILE` in a child process and waits until it listens. */
export async function spawnBroker(raw: Record<string, unknown>, dir: string, env: NodeJS.ProcessEnv = {}, opts: { compiled?: boolean } = {}): Promise<BrokerProcess> {
  const file = join(dir, `config-${Date.now()}.yaml`);
  writeFileSync(file, stringify(raw));
  // `compiled`: the production entry (dist/, built by `npm run build`) with the flags of `npm start`.
  const entry = opts.compiled ? ['--max-semi-space-size=4', join(ROOT, 'dist/cli/main.js')] : ['--import', 'tsx', join(ROOT, 'src/cli/main.ts')];
  const child = spawn(process.execPath, [...entry, 'serve', '--config', file], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_LOG: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start in 30 s:\n${out}`)), 30_000);
    const onData = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code}:\n${out}`));
    });
  });
  return {
    child,
    url,
    output: () => out,
    kill: (signal = 'SIGKILL') =>
      new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        child.once('exit', () => res());
        child.kill(signal);
      }),
  };
}

/** JSON over fetch with an optional bearer token. */
export async function api(url: string, path: string, init: { method?: string; token?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
