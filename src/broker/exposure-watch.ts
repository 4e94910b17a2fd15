// `exposure.schedule`: the region-wide scan, run periodically by `serve`. Each finding is audited once
// (`exposure.detected`, which the webhook notifier forwards as an alert); a finding already in the trail
// is not audited again, across restarts and replicas, until it is gone and comes back.
import type { Store } from '../store/store.ts';
import { queryAudit } from './audit-query.ts';
import { errorFields, type Logger } from '../log.ts';

export interface Finding {
  region: string;
  groupId: string;
  ruleId: string;
  source: string;
  protocol: string;
  fromPort: number;
  toPort: number;
  why: string;
  attachments: unknown[];
}

export interface ExposureWatchDeps {
  store: Store;
  regions: readonly string[];
  /** The region scan (AWS), injected: the broker does not import AWS code. */
  scan: (region: string) => Promise<Finding[]>;
  log: Logger;
}

export class ExposureWatch {
  /** Rule refs audited as detected and still present at the last scan; loaded from the trail on first use. */
  private known: Set<string> | undefined;

  constructor(private readonly deps: ExposureWatchDeps) {}

  /** One scan of every region; returns the findings audited now. Never throws. */
  async run(): Promise<Finding[]> {
    if (!this.known) {
      const { events } = await queryAudit(this.deps.store, { type: 'exposure.detected' }, 100_000);
      this.known = new Set(events.map((e) => e.ruleRef).filter((r): r is string => typeof r === 'string'));
    }
    const fresh: Finding[] = [];
    for (const region of this.deps.regions) {
      let found: Finding[];
      try {
        found = await this.deps.scan(region);
      } catch (e) {
        this.deps.log.warn('exposure: scheduled scan failed; next run retries', { region, ...errorFields(e) });
        continue;
      }
      for (const f of found) {
        const ref = `${f.region}/${f.groupId}/${f.ruleId}`;
        if (this.known.has(ref)) continue;
        this.known.add(ref);
        fresh.push(f);
        await this.deps.store.audit({ type: 'exposure.detected', actor: 'system:exposure', ruleRef: ref, port: f.fromPort, detail: { ...f } });
      }
    }
    return fresh;
  }
}
