// The audit event shape and its hash chain: hash = sha256(prevHash ‖ canonical JSON of the event without hash).
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

/** What a use case records; the log adds seq, time and the chain fields. */
export interface AuditInput {
  type: string;
  actor: string | null;
  grant?: string | undefined;
  target?: string | undefined;
  sourceIp?: string | undefined;
  port?: number | undefined;
  reason?: string | undefined;
  policyIds?: string[] | undefined;
  ruleRef?: string | undefined;
  /** Small structured facts (error codes, counts). Never tokens or secrets. */
  detail?: Record<string, unknown> | undefined;
}

export interface AuditEvent extends AuditInput {
  seq: number;
  time: string;
  prevHash: string;
  hash: string;
}

/** JSON with object keys sorted at every depth and undefined members dropped. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

export function chainHash(prevHash: string, body: string): string {
  return createHash('sha256').update(prevHash).update(body).digest('hex');
}

export interface VerifyResult {
  ok: boolean;
  count: number;
  lastSeq: number;
  lastHash: string;
  /** The first broken link, when not ok. */
  broken?: { seq: number; problem: string } | undefined;
}

/** Checks a sequence of events (in seq order, starting after `from`) link and hash correctly. */
export class ChainVerifier {
  private expectedSeq: number;
  private prevHash: string;
  private count = 0;
  broken: VerifyResult['broken'];

  constructor(from: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH }) {
    this.expectedSeq = from.seq + 1;
    this.prevHash = from.hash;
  }

  /** Feeds one event; returns false once a break is found (later events are not checked). */
  push(event: AuditEvent): boolean {
    if (this.broken) return false;
    const { hash, ...rest } = event;
    const fail = (problem: string) => {
      this.broken = { seq: event.seq ?? this.expectedSeq, problem };
      return false;
    };
    if (event.seq !== this.expectedSeq) return fail(`expected seq ${this.expectedSeq}, found ${event.seq}`);
    if (event.prevHash !== this.prevHash) return fail('prevHash does not match the previous event\'s hash');
    if (chainHash(this.prevHash, canonicalJson(rest)) !== hash) return fail('hash does not match the event\'s content');
    this.prevHash = hash;
    this.expectedSeq += 1;
    this.count += 1;
    return true;
  }

  result(): VerifyResult {
    return { ok: !this.broken, count: this.count, lastSeq: this.expectedSeq - 1, lastHash: this.prevHash, broken: this.broken };
  }
}
