// In-memory twin of a firewall backend for unit tests and benchmarks: same contract, no packets.
import type { FirewallAdapter, FirewallHealth, ManagedRule, RuleSpec } from './port.ts';
import { PortcullisError } from '../errors.ts';

export interface RuleRecord {
  ref: string;
  grantId: string;
  source: string;
  port: number;
  expiresAt: number;
}

/** Where a table-like backend keeps its rules; the memory twin keeps them in a Map. */
export interface RuleTable {
  byGrant(grantId: string): RuleRecord | undefined;
  insert(rule: RuleRecord): void;
  remove(refs: string[]): void;
  all(): RuleRecord[];
  /** How many rules the table holds (health), without reading them. */
  count(): number;
}

export class MapRuleTable implements RuleTable {
  private readonly rules = new Map<string, RuleRecord>();
  private readonly grants = new Map<string, string>();
  byGrant(grantId: string) {
    const ref = this.grants.get(grantId);
    return ref === undefined ? undefined : this.rules.get(ref);
  }
  insert(rule: RuleRecord) {
    this.rules.set(rule.ref, rule);
    this.grants.set(rule.grantId, rule.ref);
  }
  remove(refs: string[]) {
    for (const ref of refs) {
      const r = this.rules.get(ref);
      if (r) this.grants.delete(r.grantId);
      this.rules.delete(ref);
    }
  }
  all() {
    return [...this.rules.values()];
  }
  count() {
    return this.rules.size;
  }
}

/**
 * Fault injection for tests: the next calls of an operation fail (or hang) as a backend would.
 * `throttled`: refused before acting (EC2's RequestLimitExceeded). `timeout`: the change is made,
 * then the call fails anyway (a lost answer: the caller cannot tell it from a failure).
 */
export type Fault = 'unavailable' | 'error' | 'throttled' | 'timeout';
/** Milliseconds a call takes before its effect lands, as a remote backend would (a number, or drawn per call). */
export type Latency = number | (() => number);
type Op = 'open' | 'close' | 'list';
/** Rule refs are unique across every table of the process (a batch may span many backends). */
let refSeq = 0;

export class TableFirewall implements FirewallAdapter {
  readonly calls = { open: 0, close: 0, list: 0, closedRefs: 0 };
  /** A local table (or SQLite file) answers at once; injected latency in tests stays well under this. */
  readonly maxCallSeconds = 5;
  shutdown?: () => Promise<void>;
  private faults: Partial<Record<Op, Fault[]>> = {};
  private latency: Partial<Record<Op, Latency>> = {};
  private held: Partial<Record<Op, Promise<void>>> = {};
  /** Runs at the start of each call, before any fault: lets a test fail something else mid-operation. */
  onCall?: (op: Op) => void | Promise<void>;

  constructor(
    readonly kind: string,
    readonly scope: string,
    protected readonly table: RuleTable = new MapRuleTable(),
  ) {}

  get simulated(): boolean {
    return true;
  }

  /** Makes the next `count` calls of `op` fail. */
  inject(op: Op, fault: Fault, count = 1): void {
    this.faults[op] = [...(this.faults[op] ?? []), ...Array<Fault>(count).fill(fault)];
  }

  /** Makes calls of `op` hang (before their effect lands) until the returned function is called. */
  hold(op: Op): () => void {
    let release!: () => void;
    this.held[op] = new Promise<void>((r) => (release = r));
    return () => {
      delete this.held[op];
      release();
    };
  }

  /** Makes every later call of each op take that long before its effect lands (0 or undefined: at once). */
  slow(latency: Partial<Record<Op, Latency>>): void {
    this.latency = { ...this.latency, ...latency };
  }

  async open(rule: RuleSpec): Promise<string> {
    this.calls.open += 1;
    await this.onCall?.('open');
    await this.delay('open');
    const late = this.fault('open');
    const existing = this.table.byGrant(rule.grantId);
    if (existing && rule.extend) this.table.insert({ ...existing, expiresAt: rule.expiresAt });
    if (existing) return this.answer(late, existing.ref);
    const ref = `${this.kind}-${Date.now().toString(36)}-${(refSeq++).toString(36)}`;
    this.table.insert({ ref, grantId: rule.grantId, source: rule.source, port: rule.port, expiresAt: rule.expiresAt });
    return this.answer(late, ref);
  }

  async close(refs: string[]): Promise<void> {
    this.calls.close += 1;
    await this.onCall?.('close');
    await this.delay('close');
    const late = this.fault('close');
    this.calls.closedRefs += refs.length;
    this.table.remove(refs);
    this.answer(late, undefined);
  }

  async list(): Promise<ManagedRule[]> {
    this.calls.list += 1;
    await this.onCall?.('list');
    await this.delay('list');
    this.answer(this.fault('list'), undefined);
    return this.table.all().map((r) => ({ ref: r.ref, grantIds: [r.grantId], source: r.source, port: r.port, expiresAt: r.expiresAt }));
  }

  async check(): Promise<FirewallHealth> {
    return { ok: true, detail: `${this.kind}: SIMULATED, no real firewall is changed (${this.table.count()} rules held)` };
  }

  private async delay(op: Op): Promise<void> {
    const l = this.latency[op];
    const ms = typeof l === 'function' ? l() : l;
    if (ms) await new Promise((r) => setTimeout(r, ms));
    await this.held[op];
  }

  /** Throws the faults that refuse before acting; returns a `timeout` to throw after acting. */
  private fault(op: Op): Fault | undefined {
    const f = this.faults[op]?.shift();
    // The messages quote the backend the way real adapters do (nft's stderr, EC2's text): they
    // must reach the log only, never a client.
    if (f === 'unavailable') throw new PortcullisError('FIREWALL_UNAVAILABLE', `${this.kind} backend unavailable (injected; backend said: Error: Could not process rule: /etc/portcullis/secret.nft)`);
    if (f === 'error') throw new PortcullisError('FIREWALL_ERROR', `${this.kind} backend error (injected; backend said: syntax error, unexpected junk)`);
    if (f === 'throttled') throw new PortcullisError('FIREWALL_UNAVAILABLE', `${this.kind} kept throttling (injected; backend said: RequestLimitExceeded)`);
    return f;
  }

  private answer<T>(late: Fault | undefined, value: T): T {
    if (late === 'timeout') throw new PortcullisError('FIREWALL_UNAVAILABLE', `${this.kind} did not answer in time (injected; backend said: ETIMEDOUT after the change)`);
    return value;
  }
}

export function createMemoryAdapter(scope = 'memory'): TableFirewall {
  return new TableFirewall('memory', scope);
}
