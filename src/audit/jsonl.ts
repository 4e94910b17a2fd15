// The JSONL audit sink (one event per line, for a SIEM) and the verifier of such a file.
import { appendFileSync, createReadStream, existsSync, mkdirSync, openSync, readSync, closeSync, statSync, truncateSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { ChainVerifier, type AuditEvent, type VerifyResult } from './chain.ts';
import type { Store } from '../store/store.ts';

/** How soon a sink that failed (full disk, unmounted volume) tries again when no new event arrives. */
const RETRY_MS = 1000;

/**
 * The JSONL file is a copy for SIEMs; the store is the source of truth. A write that fails leaves
 * the sink behind: it stops appending, and catches up from the store (from the file's own last
 * line) at the next event or retry, so the file never gets a gap, a duplicate or a torn line.
 */
export class JsonlSink {
  private last: number | undefined;
  private behind = false;
  private again = false;
  private catching: Promise<number> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private source: Store | undefined;
  private onError: ((e: unknown) => void) | undefined;

  constructor(private readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }

  /**
   * Appends each committed batch from now on. A failure is thrown to the store (which logs and
   * counts it) after the sink has scheduled its catch-up; it never reaches the writer.
   */
  follow(store: Store, onCatchUpError?: (e: unknown) => void): void {
    this.source = store;
    this.onError = onCatchUpError;
    store.onAudit((events) => this.write(events));
  }

  /** True while the file lacks events the store has. */
  get lagging(): boolean {
    return this.behind;
  }

  write(events: AuditEvent[]): void {
    if (events.length === 0) return;
    if (this.catching) {
      // The catch-up reads the store until it is empty, these events included.
      this.again = true;
      return;
    }
    if (this.behind) {
      this.again = true;
      this.scheduleCatchUp(0);
      return;
    }
    this.last ??= lastSeq(this.path);
    const fresh = events.filter((e) => e.seq > this.last!);
    if (fresh.length === 0) return;
    if (fresh[0]!.seq !== this.last + 1) {
      // A gap (events committed while this sink was not listening): fill it from the store.
      this.behind = true;
      this.scheduleCatchUp(0);
      return;
    }
    try {
      this.append(fresh);
    } catch (e) {
      this.behind = true;
      this.scheduleCatchUp(RETRY_MS);
      throw e;
    }
  }

  /** Appends what the store has and the file lacks (a crash can fall between commit and write). */
  catchUp(store: Store): Promise<number> {
    if (this.catching) {
      this.again = true;
      return this.catching;
    }
    this.catching = (async () => {
      let written = 0;
      try {
        do {
          this.again = false;
          // From the file's own last line: it may have been restored, rotated or torn meanwhile.
          this.last = lastSeq(this.path);
          for (;;) {
            const events = (await store.auditEvents({ afterSeq: this.last, limit: 2000 })).filter((e) => e.seq > this.last!);
            if (events.length === 0) break;
            this.append(events);
            written += events.length;
          }
        } while (this.again);
        this.behind = false;
        return written;
      } catch (e) {
        this.behind = true;
        this.scheduleCatchUp(RETRY_MS);
        throw e;
      } finally {
        this.catching = undefined;
      }
    })();
    return this.catching;
  }

  /** Stops retrying (shutdown). */
  close(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    this.source = undefined;
  }

  private scheduleCatchUp(ms: number): void {
    const store = this.source;
    if (!store || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      // A failure here has rescheduled itself; it is reported, not thrown.
      this.catchUp(store).catch((e) => this.onError?.(e));
    }, ms);
    this.retry.unref();
  }

  /** One append; a failed one is cut back to where it started, so no torn line stays behind. */
  private append(events: AuditEvent[]): void {
    let size: number | undefined;
    try {
      size = statSync(this.path).size;
    } catch {
      size = undefined;
    }
    try {
      appendFileSync(this.path, events.map((e) => `${JSON.stringify(e)}\n`).join(''), { mode: 0o640 });
    } catch (e) {
      if (size !== undefined) {
        try {
          truncateSync(this.path, size);
        } catch {
          // the next catch-up reads the last complete line and skips a torn one
        }
      }
      throw e;
    }
    this.last = events[events.length - 1]!.seq;
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
