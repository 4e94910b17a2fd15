// Runs the installed-style `portcullis` binary (bin/portcullis.js) as a child process with its own config home,
// keeping every byte it printed so that tests can search the whole transcript (e.g. for a token).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../../helpers/broker.ts';

export const BIN = join(ROOT, 'bin/portcullis.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `re` in stdout+stderr (as printed so far or later). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  done: Promise<CliResult>;
}

export class CliRunner {
  /** Everything every CLI run of this runner printed, stdout and stderr. */
  transcript = '';

  constructor(
    readonly configHome: string,
    private readonly extraEnv: NodeJS.ProcessEnv = {},
  ) {}

  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: this.configHome, ...this.extraEnv, ...extra };
    // A developer's own profile selection or display must not leak into the test.
    if (!('PORTCULLIS_PROFILE' in extra) && !('PORTCULLIS_PROFILE' in this.extraEnv)) delete env.PORTCULLIS_PROFILE;
    delete env.DISPLAY;
    delete env.WAYLAND_DISPLAY;
    return env;
  }

  /**
   * Runs the CLI on a pseudo-terminal through util-linux `script`, as a person at a terminal would;
   * everything it writes to the terminal arrives on stdout.
   */
  startTty(args: string[], extra: NodeJS.ProcessEnv = {}): RunningCli {
    const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    return this.start(args, { TERM: 'xterm', ...extra }, ['script', ['-qfec', [process.execPath, BIN, ...args].map(quote).join(' '), '/dev/null']]);
  }

  start(args: string[], extra: NodeJS.ProcessEnv = {}, command: [string, string[]] = [process.execPath, [BIN, ...args]]): RunningCli {
    const child = spawn(command[0], command[1], { cwd: ROOT, env: this.env(extra), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
    const check = () => {
      for (const w of [...waiters]) {
        const m = w.re.exec(out + err);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    };
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      this.transcript += d;
      check();
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d;
      this.transcript += d;
      check();
    });
    const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout: out, stderr: err })));
    return {
      child,
      stdout: () => out,
      stderr: () => err,
      done,
      waitFor: (re, timeoutMs = 20_000) =>
        new Promise<RegExpExecArray>((resolve, reject) => {
          const fail = (why: string) => {
            clearTimeout(timer);
            reject(new Error(`CLI ${why} ${re}:\n${out}\n${err}`));
          };
          const timer = setTimeout(() => fail(`did not print in ${timeoutMs} ms`), timeoutMs);
          waiters.push({ re, resolve: (m) => (clearTimeout(timer), resolve(m)) });
          check();
          void done.then(() => setTimeout(() => fail('exited without printing'), 50));
        }),
    };
  }

  /** Runs to completion; asynchronous so that a broker in this process keeps serving meanwhile. */
  run(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return this.start(args, extra).done;
  }
}

/** A readable failure message: the command's own output. */
export function show(r: CliResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}
