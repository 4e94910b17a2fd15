// What every use case shares: the deps, the checks (MFA, policy, visibility) and the grant listeners.
import type { TargetConfig } from '../config/schema.ts';
import { PortcullisError } from '../errors.ts';
import type { FirewallAdapter } from '../firewall/port.ts';
import type { Logger } from '../log.ts';
import { buildPolicyContext } from '../policy/context.ts';
import { decideRequest, type RequestDecision } from '../policy/decision.ts';
import type { PolicyDecision, PolicyEngine, PolicyQuery } from '../policy/port.ts';
import type { Store } from '../store/store.ts';
import type { Channel, Grant, GrantId, Principal } from '../domain/index.ts';
import { parseSource, type Source, type SourceLimits } from './source.ts';
import type { WindowSummary } from './attempts.ts';

export interface BrokerLimits {
  minDurationSeconds: number;
  maxDurationSeconds: number;
  pendingTimeoutSeconds: number;
  reasonPattern?: RegExp | undefined;
  maxActivePerUser: number;
  maxSource: SourceLimits;
  mfaMaxAgeSeconds: number;
  timeZone: string;
  /** Groups whose members may see and close anyone's grant. */
  adminGroups?: string[];
  /** Groups whose members may read the audit trail (admins may too). */
  auditReaderGroups?: string[];
}

export interface BrokerDeps {
  store: Store;
  /** A getter, so a policy reload swaps the engine without rebuilding the broker. */
  policy: () => PolicyEngine;
  firewalls: ReadonlyMap<string, FirewallAdapter>;
  targets: readonly TargetConfig[];
  limits: BrokerLimits;
  log: Logger;
  clock?: () => number;
  /** The attempts window in progress of this process's watcher (attempts-report.ts). */
  currentAttempts?: () => WindowSummary | undefined;
}

/** `previousExpiresAt`: set when an extend moved the grant's expiry from that one. */
export type GrantListener = (grant: Grant, change?: { previousExpiresAt: number | null }) => void;

const GRANT_ID = /^g_[A-Za-z0-9_-]{10,40}$/;

export class BrokerCore {
  readonly store: Store;
  readonly clock: () => number;
  readonly log: Logger;
  readonly limits: BrokerLimits;
  readonly targets: Map<string, TargetConfig>;
  readonly activeListeners: GrantListener[] = [];
  readonly closedListeners: GrantListener[] = [];
  /**
   * Grants whose adapter call is in flight in this process. The durable state (`opening`,
   * `extending`) is what other processes respect; this only keeps this process's reconciler from
   * settling an intent whose call has not answered yet.
   */
  readonly inFlight = new Map<GrantId, Promise<unknown>>();

  constructor(readonly deps: BrokerDeps) {
    this.store = deps.store;
    this.clock = deps.clock ?? Date.now;
    this.log = deps.log;
    this.limits = deps.limits;
    this.targets = new Map(deps.targets.map((t) => [t.id, t]));
  }

  announceActive(g: Grant, change?: { previousExpiresAt: number | null }): void {
    for (const l of this.activeListeners) l(g, change);
  }

  announceClosed(g: Grant): void {
    for (const l of this.closedListeners) l(g);
  }

  /**
   * Runs one intent on `id` (its durable claim, the adapter call, the record of the outcome),
   * known to this process while it runs: a revoke waits for it, the reconciler leaves it alone.
   */
  async intent<T>(id: GrantId, run: () => Promise<T>): Promise<T> {
    const p = run();
    // A second intent on the same grant loses its compare-and-swap; the first one stays the one to wait for.
    if (!this.inFlight.has(id)) this.inFlight.set(id, p);
    try {
      return await p;
    } finally {
      if (this.inFlight.get(id) === p) this.inFlight.delete(id);
    }
  }

  /** Waits for this process's intent on the grant, if any, whatever its outcome. */
  async settled(id: GrantId): Promise<void> {
    await this.inFlight.get(id)?.catch(() => {});
  }

  firewall(targetId: string): FirewallAdapter {
    const fw = this.deps.firewalls.get(targetId);
    if (!fw) throw new PortcullisError('TARGET_NOT_FOUND', `no firewall is configured for target ${targetId}`);
    return fw;
  }

  async mustGet(id: GrantId): Promise<Grant> {
    const g = await this.store.getGrant(id);
    if (!g) throw new PortcullisError('GRANT_NOT_FOUND', `no grant ${id}`);
    return g;
  }

  isAdmin(principal: Principal): boolean {
    return (this.limits.adminGroups ?? []).some((g) => principal.groups.includes(g));
  }

  /** A grant by an id from a transport; undefined for anything that is not a well-formed grant id. */
  async findGrant(id: unknown): Promise<Grant | undefined> {
    return typeof id === 'string' && GRANT_ID.test(id) ? this.store.getGrant(id as GrantId) : undefined;
  }

  /** A grant the principal may see: their own, or any for an admin. */
  async visibleGrant(principal: Principal, id: GrantId): Promise<Grant> {
    const grant = await this.findGrant(id);
    const visible = grant !== undefined && (grant.requester === principal.sub || this.isAdmin(principal));
    // Someone else's grant answers exactly like a missing one: ids are not an oracle.
    if (!visible) throw new PortcullisError('GRANT_NOT_FOUND', `no grant ${String(id).slice(0, 48)}`);
    return grant;
  }

  assertMfa(principal: Principal): void {
    if (!principal.mfa) throw new PortcullisError('MFA_REQUIRED', 'this sign-in did not use multi-factor authentication; sign in again with MFA');
    const age = principal.authTime === undefined ? Infinity : this.clock() / 1000 - principal.authTime;
    if (age > this.limits.mfaMaxAgeSeconds) {
      throw new PortcullisError('MFA_TOO_OLD', 'your multi-factor sign-in is too old; sign in again');
    }
  }

  /** OpenPort ⇒ allow, else RequestPort ⇒ approval, else deny; an engine failure refuses service, never allows. */
  decideRequest(principal: Principal, grant: Pick<Grant, 'targetId' | 'durationSeconds' | 'port' | 'reason' | 'callerIp'>, source: Pick<Source, 'address' | 'prefixLength'>, channel: Channel, now: number): RequestDecision {
    const target = this.targets.get(grant.targetId);
    if (!target) return { outcome: 'deny', policyIds: [], errors: ['unknown target'] };
    try {
      return decideRequest(this.deps.policy(), {
        principal,
        target: { id: target.id, tags: target.tags, ports: target.ports },
        context: buildPolicyContext({ principal, durationMinutes: grant.durationSeconds / 60, port: grant.port, sourceIp: source.address, sourcePrefixLength: source.prefixLength, callerIp: grant.callerIp, channel, reason: grant.reason, now, timeZone: this.limits.timeZone }),
      });
    } catch (e) {
      throw new PortcullisError('POLICY_UNAVAILABLE', 'the policy engine could not decide; nothing was opened', { cause: e });
    }
  }

  decideApproval(approver: Principal, grant: Grant, channel: Channel): PolicyDecision {
    const target = this.targets.get(grant.targetId);
    if (!target) return { allowed: false, policyIds: [], errors: ['unknown target'] };
    const [address, len] = grant.source.split('/');
    return this.decide({
      action: 'ApprovePort',
      principal: approver,
      target: { id: target.id, tags: target.tags, ports: target.ports },
      context: buildPolicyContext({ principal: approver, durationMinutes: grant.durationSeconds / 60, port: grant.port, sourceIp: address!, sourcePrefixLength: Number(len), callerIp: grant.callerIp, channel, reason: grant.reason, requester: grant.requester, now: this.clock(), timeZone: this.limits.timeZone }),
    });
  }

  decide(query: PolicyQuery): PolicyDecision {
    try {
      return this.deps.policy().decide(query);
    } catch (e) {
      throw new PortcullisError('POLICY_UNAVAILABLE', 'the policy engine could not decide; nothing was opened', { cause: e });
    }
  }

  /** Re-runs the requester's request decision with what the broker knows of them now; undefined = still permitted. */
  async recheckRequester(grant: Grant, now: number): Promise<{ policyIds: string[] } | undefined> {
    const known = await this.store.knownUser(grant.requester);
    if (!known) return { policyIds: [] };
    const source = parseSource(grant.source, { ipv4: 0, ipv6: 0 });
    // MFA freshness was proven at request time; the re-check is about who they are now.
    const principal: Principal = { ...known, mfa: true, authTime: Math.floor(grant.createdAt / 1000) - 1 };
    const d = this.decideRequest(principal, grant, source, grant.channel, now);
    return d.outcome === 'deny' ? { policyIds: d.policyIds } : undefined;
  }

  /** How many approvers the permitting policies ask for: the largest `@approvals("N")`, at least 1. */
  requiredApprovals(policyIds: string[]): number {
    const wanted = new Set(policyIds);
    let n = 1;
    for (const p of this.deps.policy().describe()) {
      const v = Number(p.annotations?.approvals);
      if (wanted.has(p.id) && Number.isInteger(v) && v > n) n = Math.min(v, 10);
    }
    return n;
  }
}
