// Who knocked on the gate over a period: the audited `gate.attempts` window summaries since then, summed per
// source, target, protocol and port, plus the window still in progress when this process holds it. One use
// case for `portcullis attempts` and the admin view.
import type { Store } from '../store/store.ts';
import type { AttemptsRow, WindowSummary } from './attempts.ts';

export type { AttemptsRow } from './attempts.ts';

export interface AttemptsReport {
  since: string;
  /** Window summaries counted (the one in progress included). */
  windows: number;
  total: number;
  /** Attempts dropped while the per-source set was full: counted, their sources not recorded. */
  overflow: number;
  /** Whether the window still in progress (not audited yet) is included. */
  current: boolean;
  /** Busiest first. */
  sources: AttemptsRow[];
}

export interface AttemptsReportDeps {
  store: Pick<Store, 'auditEvents'>;
  /** The window in progress of this process's watcher (absent in the CLI: another process holds it). */
  current?: (() => WindowSummary | undefined) | undefined;
}

const PAGE = 2000;

/**
 * The report since `sinceMs`, on one target or all. A window that ended after `sinceMs` is counted whole:
 * summaries are the unit the trail keeps. Only `gate.attempts` events of the period are read.
 */
export async function attemptsReport(deps: AttemptsReportDeps, opts: { sinceMs: number; target?: string | undefined }): Promise<AttemptsReport> {
  const windows: WindowSummary[] = [];
  let after = 0;
  for (;;) {
    const page = await deps.store.auditEvents({ afterSeq: after, limit: PAGE, type: 'gate.attempts', fromTime: opts.sinceMs });
    for (const e of page) windows.push((e.detail ?? {}) as unknown as WindowSummary);
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.seq;
  }
  const live = deps.current?.();
  if (live) windows.push(live);
  return { ...summarise(windows, opts.target), since: new Date(opts.sinceMs).toISOString(), current: live !== undefined && summarise([live], opts.target).windows > 0 };
}

/** One row per target of a report's sources: attempts, distinct sources, first and last seen (busiest first). */
export function perTarget(sources: AttemptsRow[]): { target: string; count: number; sources: number; firstSeen: string; lastSeen: string }[] {
  const byTarget = new Map<string, { target: string; count: number; sources: Set<string>; firstSeen: string; lastSeen: string }>();
  for (const r of sources) {
    const id = r.target ?? '—';
    const t = byTarget.get(id) ?? { target: id, count: 0, sources: new Set<string>(), firstSeen: r.firstSeen, lastSeen: r.lastSeen };
    t.count += r.count;
    t.sources.add(r.source);
    if (r.firstSeen < t.firstSeen) t.firstSeen = r.firstSeen;
    if (r.lastSeen > t.lastSeen) t.lastSeen = r.lastSeen;
    byTarget.set(id, t);
  }
  return [...byTarget.values()].sort((a, b) => b.count - a.count).map((t) => ({ ...t, sources: t.sources.size }));
}

/** Sums the windows' top sources per source, target, protocol and port (busiest first). */
export function summarise(windows: Partial<WindowSummary>[], target?: string): Omit<AttemptsReport, 'since' | 'current'> {
  const rows = new Map<string, AttemptsRow>();
  let total = 0;
  let overflow = 0;
  let counted = 0;
  for (const d of windows) {
    const top = Array.isArray(d.top) ? d.top : [];
    const mine = target === undefined ? top : top.filter((r) => r.target === target);
    if (target !== undefined && mine.length === 0) continue;
    counted += 1;
    // The overflow belongs to no target: it is counted only in the report on all of them.
    total += target === undefined ? Number(d.total ?? 0) : mine.reduce((n, r) => n + r.count, 0);
    if (target === undefined) overflow += Number(d.overflow ?? 0);
    for (const r of mine) {
      const k = `${r.source}|${r.target}|${r.protocol}|${r.port}`;
      const have = rows.get(k);
      if (!have) rows.set(k, { ...r });
      else {
        have.count += r.count;
        if (r.firstSeen < have.firstSeen) have.firstSeen = r.firstSeen;
        if (r.lastSeen > have.lastSeen) have.lastSeen = r.lastSeen;
      }
    }
  }
  const sources = [...rows.values()].sort((a, b) => b.count - a.count || a.source.localeCompare(b.source));
  return { windows: counted, total, overflow, sources };
}
