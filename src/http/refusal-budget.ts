// Caps how many anonymous refusals (bad credentials, dead sign-in callbacks) reach the audit trail:
// N per address prefix (/24, /64) and M in all per window. The excess is counted (metrics) and
// summarised in one audit event per window, so a flood cannot grow the trail without bound.
import type { AuditInput } from '../audit/chain.ts';
import { addressPrefix } from './rate-limit.ts';

export interface RefusalBudgetOptions {
  /** Refusals audited per address prefix per window. */
  perPrefix: number;
  /** Refusals audited per window in all, whatever their source. */
  global: number;
  windowMs?: number;
  now?: () => number;
  /** Called for every refusal that is not audited on its own. */
  onSuppressed?: (kind: string) => void;
}

/** What one window left unaudited; written as one `audit.refusals_suppressed` event. */
export interface RefusalSummary {
  from: number;
  to: number;
  suppressed: Record<string, number>;
  /** The prefixes with the most suppressed refusals (at most 5), for the operator's first look. */
  top: { prefix: string; count: number }[];
}

/** Prefixes tracked per window; past the global cap no new one is needed (everything is suppressed). */
export class RefusalBudget {
  private start: number;
  private total = 0;
  private readonly audited = new Map<string, number>();
  private suppressed: Record<string, number> = {};
  private readonly suppressedBy = new Map<string, number>();
  private pending: RefusalSummary | undefined;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: RefusalBudgetOptions) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.now = opts.now ?? Date.now;
    this.start = this.now();
  }

  /** Whether this refusal is audited on its own (otherwise it is counted into the window's summary). */
  take(address: string, kind = 'credential'): boolean {
    this.roll();
    const prefix = addressPrefix(address);
    const used = this.audited.get(prefix) ?? 0;
    if (this.total < this.opts.global && used < this.opts.perPrefix) {
      this.audited.set(prefix, used + 1);
      this.total += 1;
      return true;
    }
    this.suppressed[kind] = (this.suppressed[kind] ?? 0) + 1;
    // Bounded: only prefixes that were audited (≤ global) or already counted get an entry.
    if (this.audited.has(prefix) || this.suppressedBy.has(prefix) || this.suppressedBy.size < this.opts.global) {
      this.suppressedBy.set(prefix, (this.suppressedBy.get(prefix) ?? 0) + 1);
    }
    this.opts.onSuppressed?.(kind);
    return false;
  }

  /** The summary of a finished window with suppressed refusals, once; undefined otherwise. */
  flush(): RefusalSummary | undefined {
    this.roll();
    const s = this.pending;
    this.pending = undefined;
    return s;
  }

  private roll(): void {
    const t = this.now();
    if (t - this.start < this.windowMs) return;
    if (Object.keys(this.suppressed).length > 0) {
      const top = [...this.suppressedBy].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([prefix, count]) => ({ prefix, count }));
      const next = { from: this.start, to: this.start + this.windowMs, suppressed: this.suppressed, top };
      // An unflushed older summary is merged rather than lost.
      this.pending = this.pending ? mergeSummaries(this.pending, next) : next;
    }
    // The next window opens with this refusal, so a burst is never split by a clock tick.
    this.start = t;
    this.total = 0;
    this.audited.clear();
    this.suppressed = {};
    this.suppressedBy.clear();
  }
}

function mergeSummaries(a: RefusalSummary, b: RefusalSummary): RefusalSummary {
  const suppressed = { ...a.suppressed };
  for (const [k, n] of Object.entries(b.suppressed)) suppressed[k] = (suppressed[k] ?? 0) + n;
  return { from: a.from, to: b.to, suppressed, top: [...a.top, ...b.top].sort((x, y) => y.count - x.count).slice(0, 5) };
}

export function summaryEvent(s: RefusalSummary): AuditInput {
  return {
    type: 'audit.refusals_suppressed',
    actor: null,
    detail: { from: new Date(s.from).toISOString(), to: new Date(s.to).toISOString(), suppressed: s.suppressed, top: s.top },
  };
}
