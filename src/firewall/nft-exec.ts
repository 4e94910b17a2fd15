// Runs `nft` (optionally inside a network namespace) with an argument array and stdin; never a shell.
import { spawn } from 'node:child_process';
import { PortcullisError } from '../errors.ts';

export interface NftRunner {
  /**
   * Runs nft with `args`, feeding `stdin`; resolves with stdout or throws a PortcullisError.
   * `stdin` may be a function, called once the process has started, so that a timeout computed
   * from the clock does not also count the (sometimes long, under load) process start.
   */
  (args: string[], stdin?: string | (() => string)): Promise<string>;
}

export interface NftExecOptions {
  netns?: string | undefined;
  /** Path of the nft binary; `nft` from PATH by default. */
  nftPath?: string;
  /** Path of the ip binary used for `ip netns exec`. */
  ipPath?: string;
  /** A hung nft holds the broker's firewall lock; give up after this many milliseconds. */
  timeoutMs?: number;
}

/** Why nft failed, when stderr says so plainly; adapters branch on it (retry a slot, rebuild the baseline). */
export type NftFailure = 'exists' | 'missing' | 'other';

export function nftFailure(e: unknown): NftFailure | undefined {
  if (!(e instanceof PortcullisError)) return undefined;
  const f = e.details?.nft;
  return f === 'exists' || f === 'missing' || f === 'other' ? f : undefined;
}

export function createNftRunner(opts: NftExecOptions = {}): NftRunner {
  const nft = opts.nftPath ?? 'nft';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return (args, stdin) => {
    const [cmd, argv] =
      opts.netns === undefined ? [nft, args] : [opts.ipPath ?? 'ip', ['netns', 'exec', opts.netns, nft, ...args]];
    return new Promise<string>((resolve, reject) => {
      const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const what = e.code === 'ENOENT' ? `${cmd} is not installed or not on PATH` : `cannot run ${cmd}: ${e.code ?? e.message}`;
        reject(new PortcullisError('FIREWALL_UNAVAILABLE', `nftables: ${what}`, { cause: e }));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const stderr = Buffer.concat(err).toString('utf8');
        if (timedOut) {
          reject(new PortcullisError('FIREWALL_UNAVAILABLE', `nftables: nft did not answer within ${timeoutMs} ms`));
        } else if (code === 0) {
          resolve(Buffer.concat(out).toString('utf8'));
        } else {
          reject(classify(stderr, code));
        }
      });
      // EPIPE when nft exits before reading stdin is reported through 'close' with nft's own stderr.
      child.stdin.on('error', () => {});
      if (typeof stdin === 'function') child.once('spawn', () => child.stdin.end(stdin()));
      else child.stdin.end(stdin ?? '');
    });
  };
}

/** Turns nft's stderr into an error: the first meaningful lines, short, with a machine-readable reason. */
export function classify(stderr: string, code: number | null): PortcullisError {
  const summary = summarise(stderr) || `exit code ${code}`;
  const unavailable =
    /Operation not permitted|Permission denied|Cannot open network namespace|Protocol not supported|netlink/i.test(stderr);
  // A missing namespace also says "No such file or directory"; that is unavailability, not a missing table.
  const nft: NftFailure = unavailable ? 'other' : /File exists/.test(stderr) ? 'exists' : /No such file or directory/.test(stderr) ? 'missing' : 'other';
  return new PortcullisError(unavailable ? 'FIREWALL_UNAVAILABLE' : 'FIREWALL_ERROR', `nftables: ${summary}`, {
    details: { nft, exitCode: code },
  });
}

export function summarise(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    // nft echoes the offending input and a caret line under it; the "Error:" lines carry the meaning.
    .filter((l) => l.length > 0 && !/^\^+$/.test(l.replace(/\s/g, '')));
  const errors = lines.filter((l) => /error/i.test(l));
  const picked = (errors.length > 0 ? errors : lines).slice(0, 3).join(' | ');
  return picked.length > 300 ? `${picked.slice(0, 297)}...` : picked;
}
