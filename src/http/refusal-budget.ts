// Caps how many refused credentials per source address reach the audit trail per window, so
// a flood of bad tokens cannot grow the trail without bound; the excess is counted and reported
// on the next audited refusal from that address.

export class RefusalBudget {
  private readonly byAddress = new Map<string, { start: number; count: number; suppressed: number }>();

  constructor(
    private readonly perWindow: number,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether this refusal is audited, and how many from this address were not since the last one. */
  take(address: string): { audit: boolean; suppressed: number } {
    const t = this.now();
    let e = this.byAddress.get(address);
    if (!e || t - e.start >= this.windowMs) {
      const carried = e?.suppressed ?? 0;
      if (this.byAddress.size >= 10_000) this.byAddress.clear();
      e = { start: t, count: 0, suppressed: carried };
      this.byAddress.set(address, e);
    }
    e.count += 1;
    if (e.count > this.perWindow) {
      e.suppressed += 1;
      return { audit: false, suppressed: 0 };
    }
    const suppressed = e.suppressed;
    e.suppressed = 0;
    return { audit: true, suppressed };
  }
}
