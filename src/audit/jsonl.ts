// The JSONL audit sink (one event per line, for a SIEM) and the verifier of such a file.
import { appendFileSync, createReadStream, existsSync, mkdirSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { ChainVerifier, type AuditEvent, type VerifyResult } from './chain.ts';
import type { Store } from '../store/store.ts';

export class JsonlSink {
  constructor(private readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }

  write(events: AuditEvent[]): void {
    appendFileSync(this.path, events.map((e) => `${JSON.stringify(e)}\n`).join(''), { mode: 0o640 });
  }

  /** Appends what the store has and the file lacks (a crash can fall between commit and write). */
  async catchUp(store: Store): Promise<number> {
    let after = lastSeq(this.path);
    let written = 0;
    for (;;) {
      const events = await store.auditEvents({ afterSeq: after, limit: 2000 });
      if (events.length === 0) return written;
      this.write(events);
      written += events.length;
      after = events[events.length - 1]!.seq;
    }
  }
}

/** The seq of the file's last complete line, 0 for a missing or empty file. */
function lastSeq(path: string): number {
  if (!existsSync(path)) return 0;
  const size = statSync(path).size;
  if (size === 0) return 0;
  const fd = openSync(path, 'r');
  try {
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n').filter((l) => l.trim().length > 0);
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        return Number((JSON.parse(lines[i]!) as AuditEvent).seq) || 0;
      } catch {
        // a torn last line: look at the one before
      }
    }
    return 0;
  } finally {
    closeSync(fd);
  }
}

/** Verifies a JSONL audit file line by line; names the first broken link. */
export async function verifyJsonl(path: string): Promise<VerifyResult & { line?: number }> {
  const verifier = new ChainVerifier();
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n += 1;
    if (line.trim() === '') continue;
    let event: AuditEvent;
    try {
      event = JSON.parse(line) as AuditEvent;
    } catch {
      verifier.broken ??= { seq: verifier.result().lastSeq + 1, problem: `line ${n} is not JSON` };
      rl.close();
      return { ...verifier.result(), line: n };
    }
    if (!verifier.push(event)) {
      rl.close();
      return { ...verifier.result(), line: n };
    }
  }
  return verifier.result();
}
