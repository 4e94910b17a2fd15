// The approver's inbox: pending requests this principal may decide and has not yet approved, with the approvals so far.
import type { Store } from '../store/store.ts';
import type { Broker } from './broker.ts';
import type { Approval, Channel, Grant, Principal } from '../domain/index.ts';

export interface InboxItem {
  grant: Grant;
  approvals: Approval[];
}

export async function approverInbox(broker: Pick<Broker, 'approvable'>, store: Pick<Store, 'approvals'>, principal: Principal, channel: Channel): Promise<InboxItem[]> {
  const out: InboxItem[] = [];
  for (const grant of await broker.approvable(principal, channel)) {
    const approvals = await store.approvals(grant.id);
    // One approver counts once: a request waiting for a second approver has left the first one's inbox.
    if (approvals.some((a) => a.approver === principal.sub)) continue;
    out.push({ grant, approvals });
  }
  return out.sort((a, b) => a.grant.createdAt - b.grant.createdAt);
}
