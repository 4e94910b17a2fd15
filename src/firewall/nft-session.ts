// One long-lived `nft -i` per adapter, fed over a pipe, so a write costs one kernel transaction and no
// process start. After each command a bare word (`pcs_sentinel_<n>`) follows; nft answers it with a
// syntax error on stderr that echoes the word, so everything on stderr before that answer is the
// command's own outcome, in order. A process that exits or stops answering fails what it was given
// with FIREWALL_UNAVAILABLE and is replaced for the next command.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { statSync } from 'node:fs';
import { PortcullisError } from '../errors.ts';
import { classify, type NftExecOptions } from './nft-exec.ts';

export interface NftSessionOptions extends NftExecOptions {
  /** nft -i keeps every line in its history (~400 B a command): a process is replaced after this many commands. Default 5,000. */
  maxCommands?: number;
}

/**
 * What a failed command's error says about the kernel: `not-run` when nft never received it (nothing
 * changed), `unknown` when nft had it and died or hung before answering (the transaction may have committed).
 */
export type SessionOutcome = 'not-run' | 'unknown';

export function sessionOutcome(e: unknown): SessionOutcome | undefined {
  const o = e instanceof PortcullisError ? e.details?.outcome : undefined;
  return o === 'not-run' || o === 'unknown' ? o : undefined;
}

const SENTINEL = 'pcs_sentinel_';
const CARET = /^\s*\^+\s*$/;

interface Pending {
  n: number;
  resolve: () => void;
  reject: (e: PortcullisError) => void;
  timer: NodeJS.Timeout | undefined;
}

/** One nft process and the commands it was given, answered in order. */
class Proc {
  readonly child: ChildProcessWithoutNullStreams;
  readonly pending: Pending[] = [];
  written = 0;
  dead: PortcullisError | undefined;
  private seq = 0;
  private err = '';
  /** Text of the current command's answer so far (the lines since the last sentinel). */
  private lines: string[] = [];
  private skipCaret = false;

  constructor(cmd: string, argv: string[], private readonly timeoutMs: number, onGone: (p: Proc) => void) {
    // HOME points nowhere: nft -i writes its history to $HOME/.nft.history on exit.
    this.child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/nonexistent' } });
    // Idle, the session keeps no process alive: node exits, nft reads end-of-file and exits too.
    this.child.unref();
    for (const io of [this.child.stdin, this.child.stdout, this.child.stderr]) (io as unknown as { unref?: () => void }).unref?.();
    this.child.stdout.resume(); // writes print nothing; listings go through one-shot `nft -j` runs
    this.child.stderr.on('data', (c: Buffer) => this.read(c.toString('utf8')));
    this.child.stdin.on('error', () => {}); // EPIPE after a crash is reported through 'exit'
    this.child.on('error', (e: NodeJS.ErrnoException) => {
      const what = e.code === 'ENOENT' ? `${cmd} is not installed or not on PATH` : `cannot run ${cmd}: ${e.code ?? e.message}`;
      this.fail(new PortcullisError('FIREWALL_UNAVAILABLE', `nftables: ${what}`, { cause: e }));
      onGone(this);
    });
    // 'close', not 'exit': answers nft wrote before it died are read first, so only the rest are unknown.
    this.child.on('close', (code, signal) => {
      const said = this.lines.join(' | ').slice(0, 200);
      this.fail(new PortcullisError('FIREWALL_UNAVAILABLE', `nftables: the nft session ended (${signal ?? `exit code ${code}`})${said ? `: ${said}` : ''}`));
      onGone(this);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resolves once nft answered a first sentinel: it is running and reading commands. */
  ready(): Promise<void> {
    return this.send(undefined);
  }

  /** Sends one line (one transaction) and resolves when its sentinel is answered; rejects with nft's error. */
  send(line: string | undefined): Promise<void> {
    if (this.dead) return Promise.reject(withOutcome(this.dead, 'not-run'));
    const n = this.seq++;
    return new Promise<void>((resolve, reject) => {
      const p: Pending = { n, resolve, reject, timer: undefined };
      p.timer = setTimeout(() => {
        this.fail(new PortcullisError('FIREWALL_UNAVAILABLE', `nftables: nft did not answer within ${this.timeoutMs} ms`));
        this.child.kill('SIGKILL');
      }, this.timeoutMs);
      this.pending.push(p);
      if (line !== undefined) this.written += 1;
      this.child.stdin.write(`${line === undefined ? '' : `${line}\n`}${SENTINEL}${n}\n`);
    });
  }

  /** No more commands: nft answers what it has and exits. */
  retire(): void {
    this.child.stdin.end();
  }

  private read(chunk: string): void {
    this.err += chunk;
    let nl: number;
    while ((nl = this.err.indexOf('\n')) >= 0) {
      const line = this.err.slice(0, nl);
      this.err = this.err.slice(nl + 1);
      if (this.skipCaret && CARET.test(line)) {
        this.skipCaret = false;
        continue;
      }
      this.skipCaret = false;
      const head = this.pending[0];
      if (head && line.trim() === `${SENTINEL}${head.n}`) {
        // The line before the echo is the sentinel's own "Error: syntax error"; the rest is the command's.
        this.lines.pop();
        const answer = this.lines.join('\n');
        this.lines = [];
        this.skipCaret = true;
        this.pending.shift();
        clearTimeout(head.timer);
        if (answer.trim() === '') head.resolve();
        else head.reject(classify(answer, null));
        continue;
      }
      this.lines.push(line);
    }
  }

  /** Fails every command not answered yet; their outcome is unknown (nft may have committed them). */
  private fail(e: PortcullisError): void {
    if (this.dead) return;
    this.dead = e;
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(withOutcome(e, 'unknown'));
    }
  }
}

function withOutcome(e: PortcullisError, outcome: SessionOutcome): PortcullisError {
  return new PortcullisError('FIREWALL_UNAVAILABLE', e.message, { details: { nft: 'other', outcome } });
}

export class NftSession {
  private proc: Proc | undefined;
  private starting: Promise<Proc> | undefined;
  private readonly timeoutMs: number;
  private readonly maxCommands: number;

  constructor(private readonly opts: NftSessionOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.maxCommands = opts.maxCommands ?? 5_000;
  }

  /** The running nft's pid (tests kill or stop it); undefined before the first command or after a failure. */
  get pid(): number | undefined {
    return this.proc && !this.proc.dead ? this.proc.pid : undefined;
  }

  /**
   * Runs `script` (nft commands, one per line) as one transaction: its lines are joined with `;` into
   * one command. `script` may be a function, called once nft is running and about to receive it, so a
   * timeout computed from the clock does not also count a process start.
   */
  async run(script: string | (() => string)): Promise<void> {
    const proc = await this.current();
    const text = typeof script === 'function' ? script() : script;
    const line = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0).join('; ');
    if (line.length === 0) return;
    await proc.send(line);
  }

  /** Ends the process (nft answers what it was given first). Later commands start a new one. */
  async close(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.dead) return;
    await new Promise<void>((resolve) => {
      p.child.ref(); // keep node up until it has gone
      p.child.once('exit', () => resolve());
      p.retire();
    });
  }

  private async current(): Promise<Proc> {
    const p = this.proc;
    if (p && !p.dead && p.written < this.maxCommands && this.sameNamespace(p)) return p;
    if (p && !p.dead) {
      // Worn out (history) or holding a namespace that was deleted and re-created: answer what it has, then go.
      p.retire();
      if (!this.sameNamespace(p)) p.child.kill('SIGKILL');
    }
    this.proc = undefined;
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(): Promise<Proc> {
    const nft = this.opts.nftPath ?? 'nft';
    if (this.opts.netns !== undefined) this.namespaceId(); // a missing namespace fails here, plainly
    const [cmd, argv] = this.opts.netns === undefined ? [nft, ['-i']] : [this.opts.ipPath ?? 'ip', ['netns', 'exec', this.opts.netns, nft, '-i']];
    const proc = new Proc(cmd, argv, this.timeoutMs, (gone) => {
      if (this.proc === gone) this.proc = undefined;
    });
    try {
      await proc.ready();
    } catch (e) {
      proc.child.kill('SIGKILL');
      throw withOutcome(e as PortcullisError, 'not-run');
    }
    if (!this.sameNamespace(proc)) {
      proc.child.kill('SIGKILL');
      throw new PortcullisError('FIREWALL_UNAVAILABLE', `nftables: namespace ${this.opts.netns} changed while nft started`, { details: { nft: 'other', outcome: 'not-run' } });
    }
    this.proc = proc;
    return proc;
  }

  /** dev:inode of the namespace as named now (/run/netns/NAME). */
  private namespaceId(): string {
    try {
      const s = statSync(`/run/netns/${this.opts.netns}`);
      return `${s.dev}:${s.ino}`;
    } catch (e) {
      throw new PortcullisError('FIREWALL_UNAVAILABLE', `nftables: network namespace ${this.opts.netns} does not exist`, { cause: e, details: { nft: 'other', outcome: 'not-run' } });
    }
  }

  /** Whether the process still lives in the namespace the name refers to now (not one deleted and re-created since). */
  private sameNamespace(p: Proc): boolean {
    if (this.opts.netns === undefined) return true;
    let mine: string;
    try {
      const s = statSync(`/proc/${p.pid}/ns/net`);
      mine = `${s.dev}:${s.ino}`;
    } catch {
      return false;
    }
    try {
      return this.namespaceId() === mine;
    } catch {
      return false;
    }
  }
}
