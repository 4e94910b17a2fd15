// The nftables adapter: one element per grant in a table Portcullis owns, with a kernel timeout and a
// comment naming the grant, so the kernel closes access at expiry even when the broker is down.
import { PortcullisError } from '../errors.ts';
import type { FirewallConfig } from '../config/schema.ts';
import type { Exposure, ExposureScanner, FirewallAdapter, FirewallHealth, ManagedRule, RuleSpec } from './port.ts';
import { createNftRunner, nftFailure, type NftRunner } from './nft-exec.ts';
import { assertGrantId, assertNetns, assertPort, assertTable, canonicalIp, cidrText, grantComment, parseCidr } from './nft-values.ts';
import { baselineScript, elementKey, elementRef, grantSet, parseRef, parseTableListing, type NftElement, type TableLayout } from './nft-table.ts';
import { scanRuleset } from './nft-exposure.ts';

export type NftablesConfig = FirewallConfig & { kind: 'nftables' };

export interface NftablesOptions {
  /** Ports this target guards: dropped unless a grant element admits the source. Default [3389]. */
  ports?: number[];
  /** Grant sets per family; bounds how many live grants may share one source and port. Default 4. */
  slots?: number;
  /** Default timeout of the grant sets, a backstop for elements written without one. Default 8 h. */
  backstopSeconds?: number;
  /** Runs nft; tests inject one to count calls or fail on purpose. */
  runner?: NftRunner;
  nftPath?: string;
  ipPath?: string;
  timeoutMs?: number;
  now?: () => number;
}

const RETRIES = 3;

export class NftablesAdapter implements FirewallAdapter, ExposureScanner {
  readonly kind = 'nftables';
  readonly simulated = false;
  readonly scope: string;
  /** Counts nft invocations that change the ruleset, so tests can prove "one transaction". */
  readonly calls = { write: 0, read: 0 };
  private readonly layout: TableLayout;
  private readonly ports: number[];
  private readonly destination: { family: 4 | 6; address: string } | undefined;
  private readonly nft: NftRunner;
  private readonly now: () => number;
  private baseline: Promise<void> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(cfg: NftablesConfig, opts: NftablesOptions = {}) {
    const table = cfg.table ?? 'portcullis';
    assertTable(table);
    if (cfg.netns !== undefined) assertNetns(cfg.netns);
    this.ports = [...new Set(opts.ports ?? [3389])];
    if (this.ports.length === 0) throw new PortcullisError('CONFIG_INVALID', 'nftables: at least one port must be guarded', { field: 'ports' });
    this.ports.forEach(assertPort);
    if (cfg.destination !== undefined) {
      this.destination = canonicalIp(cfg.destination);
      if (this.destination === undefined) throw new PortcullisError('CONFIG_INVALID', 'nftables: destination is not an IP address', { field: 'destination' });
    }
    const slots = opts.slots ?? 4;
    if (!Number.isInteger(slots) || slots < 1 || slots > 16) throw new PortcullisError('CONFIG_INVALID', 'nftables: slots must be 1-16', { field: 'slots' });
    this.layout = { table, slots, backstopSeconds: opts.backstopSeconds ?? 8 * 3600 };
    this.scope = `nftables:${cfg.netns ?? '-'}/inet/${table}${this.destination ? `@${this.destination.address}` : ''}`;
    this.nft = opts.runner ?? createNftRunner({ netns: cfg.netns, nftPath: opts.nftPath, ipPath: opts.ipPath, timeoutMs: opts.timeoutMs });
    this.now = opts.now ?? Date.now;
  }

  /** Creates the table, sets and gate chain (idempotent, one transaction). Call at start so ports close before any grant. */
  init(): Promise<void> {
    this.baseline ??= this.write(baselineScript(this.layout, { ports: this.ports, destination: this.destination?.address })).catch((e: unknown) => {
      this.baseline = undefined;
      throw e;
    });
    return this.baseline;
  }

  async open(rule: RuleSpec): Promise<string> {
    assertGrantId(rule.grantId);
    const src = parseCidr(rule.source);
    // Invariant 2 is the core's job; the adapter still refuses the whole internet on its own.
    if (src.prefix === 0) throw new PortcullisError('SOURCE_TOO_WIDE', `nftables: ${cidrText(src)} would admit everyone`, { field: 'sourceIp' });
    assertPort(rule.port);
    if (!this.ports.includes(rule.port)) {
      throw new PortcullisError('INVALID_PORT', `nftables: port ${rule.port} is not guarded by ${this.scope} (guarded: ${this.ports.join(', ')})`, { field: 'port' });
    }
    if (rule.protocol !== 'tcp') throw new PortcullisError('INVALID_REQUEST', 'nftables: only tcp is supported', { field: 'protocol' });
    if (this.destination && this.destination.family !== src.family) {
      throw new PortcullisError('INVALID_SOURCE_IP', `nftables: an IPv${src.family} source cannot reach the IPv${this.destination.family} destination`, { field: 'sourceIp' });
    }
    if (!Number.isFinite(rule.expiresAt)) throw new PortcullisError('INVALID_DURATION', 'nftables: expiresAt must be a time', { field: 'expiresAt' });
    const want = {
      saddr: cidrText(src),
      daddr: this.destination ? `${this.destination.address}/${src.family === 4 ? 32 : 128}` : src.family === 4 ? '0.0.0.0/0' : '::/0',
      dport: String(rule.port),
    };
    return this.serial(async () => {
      await this.init();
      let rebuilt = false;
      for (let slot = 0; slot < this.layout.slots; ) {
        const listing = await this.listing();
        const mine = listing.find((e) => e.grantId === rule.grantId);
        if (mine && !rule.extend) return elementRef(mine);
        if (mine) {
          // Extend: replace the element in one transaction so the new timeout and comment agree and
          // there is no instant without it. (`add` would refresh the timeout but keep the old comment.)
          const el: NftElement = { ...mine, expiresAt: rule.expiresAt, comment: grantComment(rule.grantId, rule.expiresAt) };
          const t = this.layout.table;
          await this.write(() => `delete element inet ${t} ${mine.set} { ${elementKey(mine)} }\n${this.createLine(el, rule.expiresAt)}`);
          return elementRef(el);
        }
        const set = grantSet(src.family, slot);
        if (listing.some((e) => e.set === set && elementKey(e) === elementKey(want))) {
          slot++;
          continue;
        }
        if (rule.expiresAt - this.now() < 1) throw new PortcullisError('INVALID_DURATION', 'nftables: the grant has already expired', { field: 'expiresAt' });
        const el: NftElement = { set, family: src.family, ...want, grantId: rule.grantId, expiresAt: rule.expiresAt, comment: grantComment(rule.grantId, rule.expiresAt) };
        try {
          await this.write(() => this.createLine(el, rule.expiresAt));
          return elementRef(el);
        } catch (e) {
          const why = nftFailure(e);
          if (why === 'exists') slot++;
          else if (why === 'missing' && !rebuilt) {
            // Someone deleted our table or a set since the baseline: rebuild it once and retry.
            rebuilt = true;
            this.baseline = undefined;
            await this.init();
          } else throw e;
        }
      }
      throw new PortcullisError('RULE_LIMIT_EXCEEDED', `nftables: ${this.layout.slots} live grants already admit ${want.saddr} to port ${want.dport}`);
    });
  }

  async close(refs: string[]): Promise<void> {
    const wanted = [...new Set(refs)].map(parseRef); // throws before anything is touched
    if (wanted.length === 0) return;
    await this.serial(async () => {
      for (let attempt = 1; ; attempt++) {
        const listing = await this.listing();
        const present = listing.filter((e) =>
          wanted.some((w) => w.set === e.set && elementKey(w) === elementKey(e) && w.grantId === e.grantId),
        );
        if (present.length === 0) return;
        const bySet = new Map<string, string[]>();
        for (const e of present) bySet.set(e.set, [...(bySet.get(e.set) ?? []), elementKey(e)]);
        const script = [...bySet].map(([set, keys]) => `delete element inet ${this.layout.table} ${set} { ${keys.join(', ')} }`).join('\n');
        try {
          await this.write(script + '\n');
          return;
        } catch (e) {
          // An element the kernel expired between our listing and the delete fails the whole
          // transaction (nft 1.0.6 has no `destroy`); list again and retry without it.
          if (nftFailure(e) !== 'missing' || attempt >= RETRIES) throw e;
        }
      }
    });
  }

  /**
   * The elements of this adapter's destination (targets with another destination may share the table
   * through their own adapter; each reconciles only its own). Creates the baseline first: reconcile at
   * start is what raises the gate.
   */
  async list(): Promise<ManagedRule[]> {
    await this.init();
    const listing = (await this.listing()).filter((e) => this.owns(e));
    return listing.map((e) => ({
      ref: elementRef(e),
      grantIds: e.grantId === undefined ? [] : [e.grantId],
      source: e.saddr,
      port: Number(e.dport.split('-')[0]),
      expiresAt: e.expiresAt,
    }));
  }

  async check(): Promise<FirewallHealth> {
    try {
      const out = await this.read(['-j', 'list', 'table', 'inet', this.layout.table]);
      if (out === undefined) return { ok: false, detail: `${this.scope}: table missing (baseline not created yet)` };
      const { sets, elements } = parseTableListing(out, this.now());
      const need = ['ports', 'guarded4', 'guarded6', grantSet(4, 0), grantSet(6, 0)];
      const lacking = need.filter((s) => !sets.has(s));
      if (lacking.length > 0) return { ok: false, detail: `${this.scope}: table present but sets missing: ${lacking.join(', ')}` };
      return { ok: true, detail: `${this.scope}: table present, ${elements.length} grant elements` };
    } catch (e) {
      return { ok: false, detail: e instanceof Error ? e.message : String(e) };
    }
  }

  async scanExposure(ports: number[]): Promise<Exposure[]> {
    ports.forEach(assertPort);
    const out = await this.read(['-j', 'list', 'ruleset']);
    const found = out === undefined ? [] : scanRuleset(out, { ownTable: this.layout.table, ports, scope: this.scope });
    // Our own grant sets can hold elements no grant explains (hand-added, or /0): report them too.
    const own = (await this.listing()).filter((e) => this.owns(e) && ports.some((p) => portIn(p, e.dport)) && (e.grantId === undefined || /\/0$/.test(e.saddr)));
    for (const e of own) {
      const [from, to] = e.dport.split('-').map(Number);
      found.push({
        scope: this.scope,
        ref: elementRef(e),
        source: e.saddr,
        fromPort: from!,
        toPort: to ?? from!,
        protocol: 'tcp',
        why: /\/0$/.test(e.saddr) ? 'world' : 'unmanaged',
        description: `element of ${this.layout.table}/${e.set}${e.comment ? ` (${e.comment})` : ''}`,
      });
    }
    return found;
  }

  /**
   * Removes exposures found in Portcullis's own table. Rules in other tables are never changed:
   * they belong to someone else's configuration, so those are refused, by name, after ours are fixed.
   */
  async fixExposure(items: Exposure[]): Promise<void> {
    const ours = items.filter((i) => isOwnRef(i.ref));
    const foreign = items.filter((i) => !isOwnRef(i.ref));
    if (ours.length > 0) await this.close(ours.map((i) => i.ref));
    if (foreign.length > 0) {
      throw new PortcullisError(
        'FORBIDDEN',
        `nftables: refusing to change tables Portcullis does not own; remove by hand: ${foreign.map((i) => i.ref).join('; ')}`,
        { details: { refused: foreign.map((i) => i.ref) } },
      );
    }
  }

  /**
   * `create`, not `add`: `add` of an existing key silently refreshes its timeout (and keeps the other
   * grant's comment); `create` fails, and open() moves to the next slot. The timeout is computed when
   * nft has started and rounded down, so the kernel closes a little early rather than late; if the
   * grant expired meanwhile, 1 ms (the element is gone at once, and access never opens late).
   */
  private createLine(el: NftElement, expiresAt: number): string {
    const timeoutMs = Math.max(1, Math.floor(expiresAt - this.now()));
    return `create element inet ${this.layout.table} ${el.set} { ${elementKey(el)} timeout ${timeoutMs}ms comment "${el.comment}" }\n`;
  }

  /** Whether an element's destination is the one this adapter guards (any destination when none is configured). */
  private owns(e: NftElement): boolean {
    if (this.destination) return e.daddr === `${this.destination.address}/${this.destination.family === 4 ? 32 : 128}`;
    return e.daddr === '0.0.0.0/0' || e.daddr === '::/0';
  }

  private async listing(): Promise<NftElement[]> {
    const out = await this.read(['-j', 'list', 'table', 'inet', this.layout.table]);
    return out === undefined ? [] : parseTableListing(out, this.now()).elements;
  }

  /** A read; `undefined` when the table (or ruleset object) does not exist. */
  private async read(args: string[]): Promise<string | undefined> {
    this.calls.read += 1;
    try {
      return await this.nft(args);
    } catch (e) {
      if (nftFailure(e) === 'missing') return undefined;
      throw e;
    }
  }

  /** One `nft -f -` run: the whole script is one kernel transaction. */
  private write(script: string | (() => string)): Promise<void> {
    this.calls.write += 1;
    return this.nft(['-f', '-'], script).then(() => undefined);
  }

  /** Open and close read then write; running them one at a time keeps slot choice and deletes consistent. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function portIn(port: number, key: string): boolean {
  const [a, b] = key.split('-').map(Number);
  return port >= a! && port <= (b ?? a!);
}

function isOwnRef(ref: string): boolean {
  try {
    parseRef(ref);
    return true;
  } catch {
    return false;
  }
}

export function createNftablesAdapter(cfg: NftablesConfig, opts?: NftablesOptions): NftablesAdapter {
  return new NftablesAdapter(cfg, opts);
}
