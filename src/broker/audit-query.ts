// Audit trail queries for the auditor's view and its export: filters by time, type, user, target and grant.
import type { AuditEvent } from '../audit/chain.ts';
import type { Store } from '../store/store.ts';

export interface AuditFilter {
  /** Epoch ms, inclusive. */
  from?: number | undefined;
  /** Epoch ms, exclusive. */
  to?: number | undefined;
  type?: string | undefined;
  /** The actor, or the requester named in the event. */
  user?: string | undefined;
  target?: string | undefined;
  grant?: string | undefined;
}

const PAGE = 2000;

/**
 * Events matching every given filter, oldest first, at most `limit` (the newest ones when more match).
 * The store indexes only seq and grant, so other filters are applied while paging through the trail.
 */
export async function queryAudit(store: Pick<Store, 'auditEvents'>, filter: AuditFilter, limit: number): Promise<{ events: AuditEvent[]; matched: number }> {
  const keep: AuditEvent[] = [];
  let matched = 0;
  let after = 0;
  for (;;) {
    const page = await store.auditEvents(pageOf(after, filter));
    for (const e of page) {
      if (!matches(e, filter)) continue;
      matched += 1;
      keep.push(e);
      if (keep.length > limit) keep.shift();
    }
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.seq;
  }
  return { events: keep, matched };
}

/** Every matching event, page by page, for a streamed export. */
export async function* exportAudit(store: Pick<Store, 'auditEvents'>, filter: AuditFilter): AsyncGenerator<AuditEvent> {
  let after = 0;
  for (;;) {
    const page = await store.auditEvents(pageOf(after, filter));
    for (const e of page) if (matches(e, filter)) yield e;
    if (page.length < PAGE) return;
    after = page[page.length - 1]!.seq;
  }
}

/** The filters the database applies itself; `matches` applies the rest. */
function pageOf(after: number, f: AuditFilter) {
  return { afterSeq: after, limit: PAGE, grant: f.grant || undefined, type: f.type || undefined, fromTime: f.from };
}

export function matches(e: AuditEvent, f: AuditFilter): boolean {
  const t = Date.parse(e.time);
  if (f.from !== undefined && t < f.from) return false;
  if (f.to !== undefined && t >= f.to) return false;
  if (f.type && e.type !== f.type) return false;
  if (f.target && e.target !== f.target) return false;
  if (f.grant && e.grant !== f.grant) return false;
  if (f.user && e.actor !== f.user) return false;
  return true;
}
