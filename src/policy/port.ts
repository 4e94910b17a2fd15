// What the core asks the policy engine; the Cedar adapter (cedar.ts) answers.
import type { Channel, Principal } from '../domain/index.ts';

export type PolicyAction = 'OpenPort' | 'RequestPort' | 'ApprovePort';

export interface PolicyTarget {
  id: string;
  tags: Record<string, string>;
  ports: number[];
}

/** The Cedar `context` of DESIGN.md's policy model. */
export interface PolicyContext {
  mfa: boolean;
  authAgeSeconds: number;
  durationMinutes: number;
  port: number;
  /** The whole source prefix, e.g. 198.51.100.7/32 or 10.213.0.0/24 (a Cedar ipaddr: `isInRange` compares ranges). */
  sourceIp: string;
  sourcePrefixLength: number;
  /** The address the request came from as the broker saw it (after trustProxy); unspecified (0.0.0.0 / ::) when unknown. */
  callerIp: string;
  /** The source is exactly the caller's own address (one host). */
  sourceIsCaller: boolean;
  channel: Channel;
  reason: string;
  /** 0-23 and `Monday`…`Sunday`, in policy.timeZone. */
  hour: number;
  weekday: string;
  /** For ApprovePort: the requester's user id. */
  requester?: string | undefined;
}

export interface PolicyQuery {
  action: PolicyAction;
  principal: Principal;
  target: PolicyTarget;
  context: PolicyContext;
}

export interface PolicyDecision {
  allowed: boolean;
  /** Ids of the policies that decided (permits when allowed, forbids when a forbid matched). */
  policyIds: string[];
  /** Evaluation errors Cedar reported (a failing policy is skipped, never silently allowed). */
  errors: string[];
}

export interface DecideOptions {
  /**
   * A preview before anyone typed a reason: forbids whose condition reads `context.reason` are left out,
   * so the answer is what a reason those policies accept would get (permits still see the empty reason).
   */
  reasonUnknown?: boolean;
}

export interface PolicyEngine {
  decide(query: PolicyQuery, opts?: DecideOptions): PolicyDecision;
  /** Ids of the loaded policies with their human comment, for `policy test` and the UI. */
  describe(): { id: string; file: string; comment: string; annotations?: Record<string, string> }[];
  /**
   * `compute()`, remembered for the loaded set under `label` and everything of `query` the policies
   * can tell apart (not its action and duration, which `compute` is expected to vary itself).
   * Forgotten on reload. An engine without it recomputes every time.
   */
  remember?<T>(label: string, query: Omit<PolicyQuery, 'action'>, compute: () => T): T;
}
