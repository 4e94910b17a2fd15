// The parent's side of bench/testbed/prober.mjs: starts it inside a namespace and turns its lines into promises.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

/** CLOCK_MONOTONIC in ms, the clock the prober reports in (the same for every process on the machine). */
export const mono = () => Number(process.hrtime.bigint()) / 1e6;

export interface Measurement {
  /** The port was seen closed (a streak of failed connects); the request or knock may start. */
  armed: Promise<void>;
  /** When the prober sent the knock (knock measurements only). */
  sent: Promise<number>;
  /** The first successful connect. */
  open: Promise<number>;
  /** The start of the first connect of the closing streak. */
  close: Promise<number>;
}

export interface Prober {
  /** Starts one measurement; with `knock`, the prober sends it as one UDP datagram the moment it is armed. */
  arm(knock?: { payload: string; port: number }): Measurement;
  stop(): Promise<void>;
}

const PROBER = join(import.meta.dirname, 'prober.mjs');

export async function startProber(netns: string, host: string, port: number): Promise<Prober> {
  const child: ChildProcessWithoutNullStreams = spawn('ip', ['netns', 'exec', netns, process.execPath, PROBER, host, String(port)]);
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const waiting = new Map<number, Record<string, (v: number) => void>>();
  let failed: Error | undefined;
  const rejects = new Set<(e: Error) => void>();
  child.once('exit', (code) => {
    failed = new Error(`prober in ${netns} exited (${code}): ${err.trim()}`);
    for (const r of rejects) r(failed);
  });
  await new Promise<void>((resolve, reject) => {
    rejects.add(reject);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = JSON.parse(line) as { ready?: boolean; id?: number; armed?: boolean; sent?: number; open?: number; close?: number };
      if (m.ready) return resolve();
      const w = m.id === undefined ? undefined : waiting.get(m.id);
      if (!w) return;
      for (const k of ['armed', 'sent', 'open', 'close'] as const) if (m[k] !== undefined) w[k]?.(Number(m[k]));
      if (m.close !== undefined) waiting.delete(m.id!);
    });
  });
  let seq = 0;
  return {
    arm(knock) {
      const id = seq++;
      const w: Record<string, (v: number) => void> = {};
      const promise = <T>(k: string, conv: (v: number) => T) =>
        new Promise<T>((resolve, reject) => {
          if (failed) return reject(failed);
          rejects.add(reject);
          w[k] = (v) => {
            rejects.delete(reject);
            resolve(conv(v));
          };
        });
      const m: Measurement = {
        armed: promise('armed', () => undefined),
        sent: knock ? promise('sent', (v) => v) : Promise.resolve(NaN),
        open: promise('open', (v) => v),
        close: promise('close', (v) => v),
      };
      // A measurement whose parts are not all awaited (an error cut it short) rejects quietly when the prober stops.
      for (const p of Object.values(m)) (p as Promise<unknown>).catch(() => {});
      waiting.set(id, w);
      child.stdin.write(JSON.stringify({ cmd: 'arm', id, knock }) + '\n');
      return m;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** `p`, or an error naming `what` after `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]).finally(() => clearTimeout(t));
}
