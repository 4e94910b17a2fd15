// Many live grants fast, for scale tests and benchmarks: written straight into the store (no
// policy decision, no audit events) in large transactions, each with its rule opened in its backend.
import { newGrantId } from '../../src/broker/broker.ts';
import type { Grant, TargetId, UserId } from '../../src/domain/index.ts';
import type { FirewallAdapter } from '../../src/firewall/port.ts';
import type { Store } from '../../src/store/store.ts';

/** The i-th distinct source address (10.0.0.0/8 and beyond: up to 16M of them). */
export function sourceOf(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`;
}

/** An active grant as the broker writes one once its rule is open. */
export function activeGrant(over: Omit<Partial<Grant>, 'targetId'> & { targetId: string; expiresAt: number }): Grant {
  const now = Date.now();
  return {
    id: newGrantId(),
    port: 3389,
    source: '198.51.100.7/32',
    requester: 'alice' as UserId,
    requesterEmail: 'alice@example.test',
    reason: 'scale',
    durationSeconds: 3600,
    channel: 'api',
    state: 'active',
    closeReason: null,
    policyIds: ['engineers-nonprod'],
    ruleRef: null,
    createdAt: now,
    updatedAt: now,
    activatedAt: now,
    closedAt: null,
    failure: null,
    requiredApprovals: 1,
    ...over,
    targetId: over.targetId as TargetId,
  };
}

/**
 * Opens each grant's rule in `firewall(targetId)` (when given) and inserts the grants, `batch` per
 * transaction. Returns the grants as stored (with their rule refs).
 */
export async function insertActive(store: Store, grants: Grant[], firewall?: (targetId: string) => FirewallAdapter, batch = 5000): Promise<Grant[]> {
  const out: Grant[] = [];
  for (let i = 0; i < grants.length; i += batch) {
    const page: Grant[] = [];
    for (const g of grants.slice(i, i + batch)) {
      const ruleRef = firewall ? await firewall(g.targetId).open({ grantId: g.id, targetId: g.targetId, source: g.source, port: g.port, protocol: 'tcp', expiresAt: g.expiresAt! }) : g.ruleRef;
      page.push({ ...g, ruleRef });
    }
    await store.write(async (w) => {
      for (const g of page) await w.insertGrant(g);
    });
    out.push(...page);
  }
  return out;
}
