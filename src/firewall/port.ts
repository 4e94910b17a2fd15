// The firewall port: the only thing the core knows about a backend. Adapters translate it.
import type { GrantId } from '../domain/index.ts';

export type Protocol = 'tcp' | 'udp';

/** One rule to admit `source` to `port` until `expiresAt`, on behalf of one grant. */
export interface RuleSpec {
  grantId: GrantId;
  targetId: string;
  /** CIDR, already checked by the core to be no wider than policy allows. */
  source: string;
  port: number;
  /**
   * The broker's request names one protocol; adapters admit the source on every protocol the
   * target declares (`protocols`, e.g. RDP's TCP and UDP 3389), since a grant is for the service.
   */
  protocol: Protocol;
  /** Epoch milliseconds; adapters write it into the backend (description, tag, kernel timeout). */
  expiresAt: number;
  /**
   * Set when the grant already holds its rule and only the expiry moves (extend): the adapter
   * updates the backend's expiry (kernel timeout, tag) and returns the (possibly new) ref.
   */
  extend?: boolean;
}

/** A rule as the backend holds it, found by `list()`; `ref` is what `close()` takes. */
export interface ManagedRule {
  ref: string;
  /** Grant ids the backend says this rule serves (tag, comment). Empty when it cannot tell. */
  grantIds: string[];
  source: string;
  port: number;
  expiresAt: number | null;
}

export interface FirewallHealth {
  ok: boolean;
  detail: string;
}

export interface FirewallAdapter {
  /** `aws-security-group`, `nftables`, `simulated`, `memory`. */
  readonly kind: string;
  /** A label that names the backend instance, e.g. `aws:eu-west-1/sg-0abc`, used to group batches. */
  readonly scope: string;
  /** True when no real packet filter is touched; shown in the banner and /readyz. */
  readonly simulated: boolean;
  /**
   * The longest one call (open, close, list) can take, its own retries and timeouts included. The
   * reconciler waits this long (plus a margin) before it settles another replica's intent as stale.
   * Optional: 60 s when absent.
   */
  readonly maxCallSeconds?: number;
  /**
   * Inserts the rule and returns its ref. Idempotent for the same grant id: a retry after a
   * crash returns the existing rule's ref rather than adding a second one.
   */
  open(rule: RuleSpec): Promise<string>;
  /** Removes rules by ref. A rule that is already gone is not an error. */
  close(refs: string[]): Promise<void>;
  /** Every rule this broker manages in the backend, for reconcile. */
  list(): Promise<ManagedRule[]>;
  check(): Promise<FirewallHealth>;
  /**
   * Backends that hold a baseline of their own (a drop rule that closes the ports when no grant
   * admits) verify it against what it must be and restore it at once when anything is missing or
   * altered, putting back the rules of the grants the store says are active. `live` is asked only
   * when a restore is needed, after the backend was read (as reconcile orders it), so an intact gate
   * costs one read of the backend and none of the store. Optional: a security group denies by
   * default and has no baseline to lose.
   */
  ensureGate?(live: () => Promise<RuleSpec[]>): Promise<GateReport>;
  /** Releases connections or timers; optional. */
  shutdown?(): Promise<void>;
}

/** What a gate check found. `missing` names each part that was absent or altered (empty when intact). */
export interface GateReport {
  restored: boolean;
  missing: string[];
  /** Live grants' rules written back by the restore. */
  putBack: number;
}

/** A rule found by an exposure scan that opens a managed port to the world or to an unmanaged source. */
export interface Exposure {
  scope: string;
  /** Backend reference that `fixExposure` takes. */
  ref: string;
  source: string;
  fromPort: number;
  toPort: number;
  protocol: string;
  why: 'world' | 'unmanaged';
  description?: string | undefined;
}

/** Optional capability of adapters that can see rules they do not manage. */
export interface ExposureScanner {
  scanExposure(ports: number[]): Promise<Exposure[]>;
  fixExposure(items: Exposure[]): Promise<void>;
}

// Attempt counters: a backend whose drop path counts blocked packets per source (nftables' attempts sets).
/** Dropped packets of one source to one destination, protocol and port, while its element lives. */
export interface AttemptCount {
  /** The target whose destination and port the packets were for (undefined: none this table guards now). */
  targetId: string | undefined;
  source: string;
  destination: string;
  protocol: string;
  port: number;
  /** The kernel's counter: it only grows while the element lives, and starts again once it timed out. */
  packets: number;
  /** Seconds until the element is forgotten (the set's timeout after its last packet). */
  expiresIn: number | undefined;
}

export interface AttemptReading {
  scope: string;
  counts: AttemptCount[];
  /** Packets dropped while both sets were full (their sources are not in `counts`); grows until the table is rebuilt. */
  overflow: number;
  /** The bound of each set. */
  size: number;
}

/** A backend whose drop path counts attempts per source. */
export interface AttemptCounter {
  readonly scope: string;
  readAttempts(): Promise<AttemptReading>;
}

export function hasAttemptCounter(x: unknown): x is AttemptCounter {
  return typeof (x as { readAttempts?: unknown } | null)?.readAttempts === 'function';
}
