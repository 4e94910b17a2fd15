// The nftables adapter: one table per namespace that Portcullis owns, guarding one or more targets.
// Each grant is one element per destination and protocol, with a kernel timeout and a comment naming
// the grant, so the kernel closes access at expiry even when the broker is down. The table's baseline
// is verified against its description and restored, and nothing opens while it is not in place.
import { PortcullisError } from '../errors.ts';
import type { FirewallConfig } from '../config/schema.ts';
import type { Exposure, ExposureScanner, FirewallAdapter, FirewallHealth, GateReport, ManagedRule, Protocol, RuleSpec } from './port.ts';
import { createNftRunner, nftFailure, type NftRunner } from './nft-exec.ts';
import { NftSession, sessionOutcome } from './nft-session.ts';
import { assertGrantId, assertNetns, assertPort, assertTable, canonicalIp, cidrText, grantComment, parseCidr, parseGrantComment, type Cidr } from './nft-values.ts';
import { compareBaseline, describeBaseline, grantSet, installScript, type Baseline, type NftTarget, type TableLayout } from './nft-baseline.ts';
import { elementKey, elementRef, keysShape, listingItems, parseRef, tableElements, type NftElement, type ParsedRef, type RefTiming } from './nft-table.ts';
import { scanRuleset } from './nft-exposure.ts';
import { parseAttempts, type AttemptCounter, type AttemptReading } from './nft-attempts.ts';

export type NftablesConfig = FirewallConfig & { kind: 'nftables' };

/** A target as the registry hands it over: destinations as text, checked here. */
export interface NftTargetInput {
  id: string;
  destinations?: string[];
  ports: number[];
  protocols?: Protocol[];
  /** `keep`: connections established during a grant outlive it (default `cut`). */
  onExpiry?: 'cut' | 'keep';
}

export interface NftablesOptions {
  /** The targets this table guards. Without it, one target guarding `ports` on `destinations` (or any). */
  targets?: NftTargetInput[];
  /** Ports guarded when no `targets` are given. Default [3389]. */
  ports?: number[];
  destinations?: string[];
  protocols?: Protocol[];
  /** Grant sets per family; bounds how many live grants may share one source and port. Default 4. */
  slots?: number;
  /** Default timeout of the grant sets, a backstop for elements written without one. Default 8 h. */
  backstopSeconds?: number;
  /** Bound and timeout of the per-source attempt sets (`watch.attempts.setSize`, `.timeout`). Default 4096 elements, 1 h. */
  attempts?: { size?: number; timeoutSeconds?: number };
  /**
   * Runs nft; tests inject one to count calls or fail on purpose. When given, writes go through it too
   * (`nft -f -`); otherwise writes go to one long-lived `nft -i` session and only listings start a process.
   */
  runner?: NftRunner;
  nftPath?: string;
  ipPath?: string;
  timeoutMs?: number;
  now?: () => number;
}

const RETRIES = 3;
/**
 * Close's fast paths, judged on `this.now()` (the clock the timeouts were computed with). The kernel
 * counts a timeout in jiffies, rounded down, from its commit: it fires no later than the bound (plus a
 * late tick: EXPIRED_MARGIN_MS) and no earlier than the grant's expiry less the millisecond and two
 * jiffies the rounding can take (REVOKE_MARGIN_MS covers HZ=100).
 */
const EXPIRED_MARGIN_MS = 10;
const REVOKE_MARGIN_MS = 50;
const ANY = { 4: '0.0.0.0/0', 6: '::/0' } as const;
type Json = Record<string, unknown>;

export class NftablesAdapter implements FirewallAdapter, ExposureScanner, AttemptCounter {
  readonly kind = 'nftables';
  readonly maxCallSeconds: number;
  readonly simulated = false;
  readonly scope: string;
  /** Counts listings (one `nft -j` run each) and write transactions, so tests can prove "one transaction" and the bench can count listings. */
  readonly calls = { write: 0, read: 0 };
  /** Ids of the targets this table guards (named by /readyz when the gate is not in place). */
  readonly targetIds: string[];
  private readonly layout: TableLayout;
  private readonly targets = new Map<string, NftTarget>();
  /** Without configured targets, every target id is served by this one. */
  private readonly fallback: NftTarget | undefined;
  private readonly baseline: Baseline;
  private readonly nft: NftRunner;
  /** The long-lived nft the writes go to (absent when a test injected a runner). */
  readonly session: NftSession | undefined;
  private readonly now: () => number;
  /** Nothing opens until a check found the baseline in place (or restored it); a failed check or write closes it again. */
  private gate: { verified: boolean; problem: string } = { verified: false, problem: 'not checked yet' };
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * A restore rewrites elements with timeouts computed before its (possibly long) transaction, so they
   * can outlive the bound in the ref open returned. By grant (source|port|grant, any set): the latest
   * the kernel can remove what the restore wrote. An after-expiry close waits for that too.
   */
  private readonly rewritten = new Map<string, number>();
  /** When `rewritten` and `deleted` are next cleared of entries that have passed. */
  private nextSweep = 0;
  /** Grants (set|source|port|grant) a write of which nft may or may not have committed: their closes list. */
  private readonly doubt = new Set<string>();
  /**
   * Grants (set|source|port|grant) this adapter deleted by key, until their expiry: a second close of
   * the same ref (a close retried after its record failed) lists, since another grant may hold the key by now.
   */
  private readonly deleted = new Map<string, number>();

  constructor(cfg: NftablesConfig, opts: NftablesOptions = {}) {
    const table = cfg.table ?? 'portcullis';
    assertTable(table);
    if (cfg.netns !== undefined) assertNetns(cfg.netns);
    const inputs = opts.targets ?? [{ id: '*', destinations: opts.destinations, ports: opts.ports ?? [3389], protocols: opts.protocols }];
    if (inputs.length === 0) throw new PortcullisError('CONFIG_INVALID', 'nftables: a table must guard at least one target', { field: 'targets' });
    const built = inputs.map(toTarget);
    // The config refuses this too; the adapter will not build a gate whose grants admit to another target.
    if (built.length > 1 && built.some((t) => t.destinations.length === 0)) {
      throw new PortcullisError('CONFIG_INVALID', `nftables: targets ${built.map((t) => t.id).join(', ')} share table ${table}; each needs its own destination`, { field: 'destination' });
    }
    if (opts.targets) for (const t of built) this.targets.set(t.id, t);
    else this.fallback = built[0];
    this.targetIds = opts.targets ? built.map((t) => t.id) : [];
    const slots = opts.slots ?? 4;
    if (!Number.isInteger(slots) || slots < 1 || slots > 16) throw new PortcullisError('CONFIG_INVALID', 'nftables: slots must be 1-16', { field: 'slots' });
    const attempts = { size: opts.attempts?.size ?? 4096, timeoutSeconds: opts.attempts?.timeoutSeconds ?? 3600 };
    if (!Number.isInteger(attempts.size) || attempts.size < 1 || attempts.size > 1_000_000) throw new PortcullisError('CONFIG_INVALID', 'nftables: the attempt set size must be 1-1000000', { field: 'watch.attempts.setSize' });
    if (!Number.isInteger(attempts.timeoutSeconds) || attempts.timeoutSeconds < 1) throw new PortcullisError('CONFIG_INVALID', 'nftables: the attempt set timeout must be at least 1 s', { field: 'watch.attempts.timeout' });
    this.layout = { table, slots, backstopSeconds: opts.backstopSeconds ?? 8 * 3600, attempts };
    this.baseline = describeBaseline(this.layout, built);
    this.scope = `nftables:${cfg.netns ?? '-'}/inet/${table}`;
    const exec = { netns: cfg.netns, nftPath: opts.nftPath, ipPath: opts.ipPath, timeoutMs: opts.timeoutMs };
    this.nft = opts.runner ?? createNftRunner(exec);
    this.session = opts.runner ? undefined : new NftSession(exec);
    // A call is a few nft steps, each bounded by the timeout: starting the session, a create, a listing
    // (slot 0 taken, or an outcome to settle), a create in another slot.
    this.maxCallSeconds = (4 * (opts.timeoutMs ?? 10_000)) / 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Verifies the baseline and installs it if needed, with no live grants to put back (standalone use, tests). */
  async init(): Promise<void> {
    await this.ensureGate(async () => []);
  }

  /**
   * One listing of our table compared with the baseline. When anything is missing or altered the whole
   * table is replaced in one transaction: the baseline, the grant elements still listed in intact sets,
   * and `live` grants whose elements are gone. Orphans stay for the reconciler, which audits them.
   */
  ensureGate(live: () => Promise<RuleSpec[]>): Promise<GateReport> {
    return this.serial(async () => {
      let items: Json[] | undefined;
      try {
        items = await this.readTable();
      } catch (e) {
        this.lose(e instanceof Error ? e.message : String(e));
        throw e;
      }
      const missing = compareBaseline(this.baseline, items);
      if (missing.length === 0) {
        this.gate = { verified: true, problem: '' };
        return { restored: false, missing, putBack: 0 };
      }
      const now = this.now();
      const broken = new Set(missing.filter((m) => m.startsWith('set ')).map((m) => m.split(' ')[1]));
      const kept = items === undefined ? [] : tableElements(items, now).elements.filter((e) => !broken.has(e.set) && e.expiresAt !== null && e.expiresAt > now);
      // Asked only now, inside the queue and after the listing: an intact gate costs no store read. A
      // store that cannot answer does not keep the ports open: the drops come back, grants come back
      // through reconcile once it answers.
      const back = this.placeBack(await live().catch(() => []), kept, now);
      let at: number | undefined;
      const script = (extra: NftElement[]) => () => {
        at = this.now();
        return installScript(this.baseline, [...kept, ...extra].map((e) => this.elementLine('add', e, at)));
      };
      try {
        try {
          await this.write(script(back), 'once');
        } catch (e) {
          // A put-back that overlaps an interval already held fails the batch; the reconciler reopens those one by one.
          if (back.length === 0 || nftFailure(e) !== 'exists') throw e;
          await this.write(script([]), 'once');
          back.length = 0;
        } finally {
          this.noteRewrite([...kept, ...back], at);
        }
      } catch (e) {
        this.lose(`${missing.join(', ')} missing and could not be restored: ${e instanceof Error ? e.message : String(e)}`);
        throw e;
      }
      this.gate = { verified: true, problem: '' };
      return { restored: true, missing, putBack: new Set(back.map((e) => e.grantId)).size };
    });
  }

  async open(rule: RuleSpec): Promise<string> {
    assertGrantId(rule.grantId);
    const src = parseCidr(rule.source);
    // Invariant 2 is the core's job; the adapter still refuses the whole internet on its own.
    if (src.prefix === 0) throw new PortcullisError('SOURCE_TOO_WIDE', `nftables: ${cidrText(src)} would admit everyone`, { field: 'sourceIp' });
    assertPort(rule.port);
    const target = this.targetOf(rule.targetId);
    if (!target.ports.includes(rule.port)) {
      throw new PortcullisError('INVALID_PORT', `nftables: port ${rule.port} is not guarded for ${rule.targetId} by ${this.scope} (guarded: ${target.ports.join(', ')})`, { field: 'port' });
    }
    if (rule.protocol !== 'tcp' && rule.protocol !== 'udp') throw new PortcullisError('INVALID_REQUEST', 'nftables: protocol must be tcp or udp', { field: 'protocol' });
    if (!Number.isFinite(rule.expiresAt)) throw new PortcullisError('INVALID_DURATION', 'nftables: expiresAt must be a time', { field: 'expiresAt' });
    if (target.destinations.length > 0 && !target.destinations.some((d) => d.family === src.family)) {
      throw new PortcullisError('INVALID_SOURCE_IP', `nftables: an IPv${src.family} source cannot reach ${rule.targetId} (destinations: ${target.destinations.map((d) => d.address).join(', ')})`, { field: 'sourceIp' });
    }
    return this.serial(async () => {
      this.assertGate();
      if (!rule.extend) {
        // The common case costs one transaction and no listing: slot 0, which `create` refuses when taken.
        if (rule.expiresAt - this.now() < 1) throw new PortcullisError('INVALID_DURATION', 'nftables: the grant has already expired', { field: 'expiresAt' });
        const els = this.elementsFor(rule, src, target, grantSet(src.family, 0));
        try {
          return elementRef(els[0]!, await this.create(els));
        } catch (e) {
          if (nftFailure(e) !== 'exists') throw e;
        }
      }
      // Slot 0 is taken (a retry of this grant, or another grant with the same key) or this is an extend:
      // one listing shows whose elements are where.
      const items = await this.readTable();
      // The listing shows whether the gate still stands; a gate gone since the last sweep refuses here
      // rather than opening into a table that admits everyone.
      const missing = compareBaseline(this.baseline, items);
      if (missing.length > 0 || items === undefined) {
        this.lose(`${missing.join(', ')} missing`);
        this.assertGate();
      }
      const listing = tableElements(items!, this.now()).elements;
      const mine = listing.filter((e) => e.grantId === rule.grantId);
      if (mine.length > 0 && !rule.extend) return elementRef(mine[0]!);
      if (mine.length > 0) {
        // Extend: replace the grant's elements in one transaction so the new timeout and comment agree
        // and there is no instant without them. (`add` would refresh the timeout but keep the old comment.)
        const els = this.elementsFor(rule, src, target, mine[0]!.set);
        return elementRef(els[0]!, await this.create(els, deleteLines(this.layout.table, mine)));
      }
      if (rule.expiresAt - this.now() < 1) throw new PortcullisError('INVALID_DURATION', 'nftables: the grant has already expired', { field: 'expiresAt' });
      const taken = new Set(listing.map((e) => `${e.set}|${elementKey(e)}`));
      for (let slot = 0; slot < this.layout.slots; slot++) {
        const els = this.elementsFor(rule, src, target, grantSet(src.family, slot));
        if (els.some((e) => taken.has(`${e.set}|${elementKey(e)}`))) continue;
        try {
          return elementRef(els[0]!, await this.create(els));
        } catch (e) {
          if (nftFailure(e) !== 'exists') throw e;
        }
      }
      throw new PortcullisError('RULE_LIMIT_EXCEEDED', `nftables: ${this.layout.slots} live grants already admit ${cidrText(src)} to port ${rule.port} of ${rule.targetId}`);
    });
  }

  /**
   * One transaction creating `els` (after `before`, the extend's deletes). A table or set gone marks the
   * gate unverified and refuses. When nft died or hung with the transaction in hand, one listing tells
   * whether it committed: then the open succeeded, else it failed, and the caller is told which.
   * Returns when the kernel removes the elements, for the ref (see closePath).
   */
  private async create(els: NftElement[], before = ''): Promise<RefTiming | undefined> {
    let at: number | undefined;
    const script = () => {
      at = this.now();
      return before + els.map((e) => this.elementLine('create', e, at)).join('');
    };
    try {
      await this.write(script);
    } catch (e) {
      if (nftFailure(e) === 'missing') {
        this.lose('table or set vanished during open');
        this.assertGate();
      }
      if (sessionOutcome(e) === 'unknown') {
        const held = await this.holds(els).catch(() => undefined);
        if (held) return this.timing(els, at);
        // Not settled (the listing failed too): an extend may have replaced the grant's elements with
        // a later timeout than its stored ref says, so closes of this grant list until one has.
        if (held === undefined) this.doubt.add(doubtKey(els[0]!));
      }
      throw e;
    }
    return this.timing(els, at);
  }

  /**
   * Called once the transaction has answered (or a listing has shown it committed): the kernel started
   * the timeout at its commit, before now, with the value computed at `at`, so it fires by now + that.
   */
  private timing(els: NftElement[], at: number | undefined): RefTiming | undefined {
    const e = els[0];
    if (at === undefined || e === undefined || e.expiresAt === null) return undefined;
    return { bound: Math.ceil(this.now()) + timeoutOf(e.expiresAt, at), expiresAt: Math.floor(e.expiresAt), shape: keysShape(els.map(elementKey)) };
  }

  /** Records a restore's rewrite (see `rewritten`), whether or not it answered: nft may have committed it. */
  private noteRewrite(els: NftElement[], at: number | undefined): void {
    if (at === undefined || els.length === 0) return;
    const done = Math.ceil(this.now());
    this.sweep(done);
    for (const e of els) {
      if (e.grantId === undefined) continue;
      const k = grantKey(e);
      this.rewritten.set(k, Math.max(this.rewritten.get(k) ?? -Infinity, done + timeoutOf(e.expiresAt ?? 0, at)));
    }
  }

  /** Whether the table holds every one of `els`, each with its grant's comment. */
  private async holds(els: NftElement[]): Promise<boolean> {
    const items = await this.readTable();
    const have = new Set((items === undefined ? [] : tableElements(items, this.now()).elements).map((e) => `${e.set}|${elementKey(e)}|${e.comment}`));
    return els.every((e) => have.has(`${e.set}|${elementKey(e)}|${e.comment}`));
  }

  /**
   * Removes the refs' elements. A ref the adapter wrote (with its timing) mostly needs no listing:
   * - after the kernel's timeout fired (past the bound): nothing to do. An expired element is neither
   *   matched nor in the way of a `create`, so another grant may already hold the key; it is not touched.
   * - well before the grant's expiry (a revoke): the element still lives, so no other grant can hold its
   *   key (a `create` of a live key fails): one `delete element` by key. Should it have been removed out
   *   of band and another grant have taken the key since, that grant's element goes instead: fail-closed
   *   (its rule is missing, the reconciler reopens it), never a rule left open.
   * - otherwise (around the expiry, a ref from a listing or stored before the timing existed, a target
   *   whose configuration no longer yields the keys written, a delete that failed or whose outcome is
   *   unknown): one listing shows which elements are the grant's.
   */
  async close(refs: string[]): Promise<void> {
    const wanted = [...new Set(refs)].map(parseRef); // throws before anything is touched
    if (wanted.length === 0) return;
    await this.serial(async () => {
      const now = this.now();
      const listed: ParsedRef[] = [];
      const keyed: { ref: ParsedRef; keys: string[] }[] = [];
      for (const w of wanted) {
        const path = this.closePath(w, now);
        if (path === 'expired') continue;
        if (path === undefined) listed.push(w);
        else keyed.push({ ref: w, keys: path });
      }
      if (keyed.length > 0) {
        try {
          await this.write(keyed.map((k) => `delete element inet ${this.layout.table} ${k.ref.set} { ${k.keys.join(', ')} }\n`).join(''));
          this.noteDeleted(keyed.map((k) => k.ref), now);
        } catch (e) {
          // One key gone fails the whole transaction (nft 1.0.6 has no `destroy`), so the others may live.
          if (nftFailure(e) !== 'missing' && sessionOutcome(e) === undefined) throw e;
          listed.push(...keyed.map((k) => k.ref));
        }
      }
      if (listed.length > 0) await this.closeListed(listed);
    });
  }

  /** Which fast path close() takes for a ref: 'expired', the keys to delete, or undefined (list). */
  private closePath(w: ParsedRef, now: number): 'expired' | string[] | undefined {
    const t = w.timing;
    if (t === undefined || w.grantId === undefined || this.doubt.has(doubtKey(w))) return undefined;
    // (A replica that deleted it and crashed before recording the close is not known here: fail-closed, as above.)
    if (this.deleted.has(doubtKey(w))) return undefined;
    if (now >= t.bound + EXPIRED_MARGIN_MS && now >= (this.rewritten.get(grantKey(w)) ?? -Infinity) + EXPIRED_MARGIN_MS) return 'expired';
    if (now >= t.expiresAt - REVOKE_MARGIN_MS) return undefined;
    const src = parseCidr(w.saddr);
    const all = this.fallback ? [this.fallback] : [...this.targets.values()];
    for (const target of all) {
      const keys = this.keysFor(src, target, w.set, w.dport).map(elementKey);
      if (keys.length > 0 && keysShape(keys) === t.shape) return keys;
    }
    return undefined;
  }

  private noteDeleted(refs: ParsedRef[], now: number): void {
    this.sweep(now);
    // Bounded: forgetting the oldest only costs a retried close the listing (fail-closed, as above).
    while (this.deleted.size > 100_000) this.deleted.delete(this.deleted.keys().next().value!);
    for (const w of refs) this.deleted.set(doubtKey(w), w.timing!.expiresAt);
  }

  /** Drops entries of `deleted` and `rewritten` that have passed, at most once a minute. */
  private sweep(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + 60_000;
    for (const m of [this.deleted, this.rewritten]) for (const [k, until] of m) if (until < now) m.delete(k);
  }

  /** The listing path of close(): the elements a listing shows are the refs' are deleted in one transaction. */
  private async closeListed(wanted: ParsedRef[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const items = await this.readTable();
      if (items === undefined) break;
      const present = tableElements(items, this.now()).elements.filter((e) => wanted.some((w) => refMatches(w, e)));
      if (present.length === 0) break;
      try {
        await this.write(deleteLines(this.layout.table, present));
        break;
      } catch (e) {
        // An element the kernel expired between our listing and the delete fails the whole
        // transaction (nft 1.0.6 has no `destroy`); list again and retry without it. So does a
        // delete nft died or hung with: the listing shows whether it committed.
        if ((nftFailure(e) !== 'missing' && sessionOutcome(e) !== 'unknown') || attempt >= RETRIES) throw e;
      }
    }
    for (const w of wanted) this.doubt.delete(doubtKey(w));
  }

  /** The grants' elements in the table, one rule per grant and set (its destinations and protocols together). Read only. */
  async list(): Promise<ManagedRule[]> {
    const items = await this.readTable();
    if (items === undefined) return [];
    const byRule = new Map<string, NftElement>();
    for (const e of tableElements(items, this.now()).elements) {
      const key = e.grantId === undefined ? `${e.set}|${e.saddr}|${e.daddr}|${e.dport}|` : `${e.set}|${e.saddr}|${e.dport}|${e.grantId}`;
      if (!byRule.has(key)) byRule.set(key, e);
    }
    return [...byRule.values()].map((e) => ({
      ref: elementRef(e),
      grantIds: e.grantId === undefined ? [] : [e.grantId],
      source: e.saddr,
      port: Number(e.dport.split('-')[0]),
      expiresAt: e.expiresAt,
    }));
  }

  /** Live: whether the baseline is in place now and this adapter has verified it. Writes nothing; a gate it finds broken stays closed until restored. */
  async check(): Promise<FirewallHealth> {
    const who = this.targetIds.length ? ` for ${this.targetIds.join(', ')}` : '';
    const seen = this.gate;
    try {
      const items = await this.readTable();
      const missing = compareBaseline(this.baseline, items);
      if (missing.length > 0) {
        // Open lists nothing on its way (one create), so it cannot see a flushed chain itself: a check
        // that saw the gate broken closes it until ensureGate has restored it (unless a restore
        // verified it meanwhile: then this listing is older than the restore).
        if (this.gate === seen && seen.verified) this.lose(`${missing.join(', ')} missing`);
        return { ok: false, detail: `${this.scope}: gate NOT in place${who}: ${missing.join(', ')} missing` };
      }
      if (!this.gate.verified) return { ok: false, detail: `${this.scope}: gate not verified${who} (${this.gate.problem})` };
      return { ok: true, detail: `${this.scope}: gate in place${who}, ${tableElements(items!, this.now()).elements.length} grant elements` };
    } catch (e) {
      return { ok: false, detail: `${this.scope}: gate NOT in place${who}: ${e instanceof Error ? e.message : String(e)}` };
    }
  }

  /** The drop path's per-source counters, each mapped to the target whose destination and port it names. Read only. */
  async readAttempts(): Promise<AttemptReading> {
    const items = await this.readTable();
    const { counts, overflow } = parseAttempts(items ?? [], (dst, port) => this.targetAt(dst, port));
    return { scope: this.scope, counts, overflow, size: this.layout.attempts.size };
  }

  /** Packets each grant's elements admitted so far (the kernel's counters), by grant id. Read only. */
  async readGrantActivity(): Promise<Map<string, number>> {
    const items = await this.readTable();
    const out = new Map<string, number>();
    for (const e of items === undefined ? [] : tableElements(items, this.now()).elements) {
      if (e.grantId !== undefined) out.set(e.grantId, (out.get(e.grantId) ?? 0) + (e.packets ?? 0));
    }
    return out;
  }

  private targetAt(destination: string, port: number): string | undefined {
    const all = this.fallback ? [this.fallback] : [...this.targets.values()];
    const t = all.find((x) => x.ports.includes(port) && (x.destinations.length === 0 || x.destinations.some((d) => d.address === destination)));
    return t?.id;
  }

  async scanExposure(ports: number[]): Promise<Exposure[]> {
    ports.forEach(assertPort);
    const out = await this.read(['-j', 'list', 'ruleset']);
    const found = out === undefined ? [] : scanRuleset(out, { ownTable: this.layout.table, ports, scope: this.scope });
    // Our own grant sets can hold elements no grant explains (hand-added, or /0): report them too.
    const items = await this.readTable();
    const own = (items === undefined ? [] : tableElements(items, this.now()).elements).filter((e) => ports.some((p) => portIn(p, e.dport)) && (e.grantId === undefined || /\/0$/.test(e.saddr)));
    for (const e of own) {
      const [from, to] = e.dport.split('-').map(Number);
      found.push({
        scope: this.scope,
        ref: elementRef(e),
        source: e.saddr,
        fromPort: from!,
        toPort: to ?? from!,
        protocol: e.proto,
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

  private targetOf(id: string): NftTarget {
    const t = this.targets.get(id) ?? this.fallback;
    if (!t) throw new PortcullisError('INVALID_REQUEST', `nftables: ${this.scope} does not guard target ${String(id).slice(0, 64)}`, { field: 'target' });
    return t;
  }

  /** The grant's elements in one set: one per destination of the source's family (or any) and declared protocol. */
  private elementsFor(rule: RuleSpec, src: Cidr, target: NftTarget, set: string): NftElement[] {
    const comment = grantComment(rule.grantId, rule.expiresAt);
    return this.keysFor(src, target, set, String(rule.port)).map((k) => ({ ...k, grantId: rule.grantId as string, expiresAt: rule.expiresAt, comment }));
  }

  /** The keys of a grant of `src` to `dport` of `target`: what open writes, and what a revoke deletes without a listing. */
  private keysFor(src: Cidr, target: NftTarget, set: string, dport: string): Pick<NftElement, 'set' | 'family' | 'saddr' | 'daddr' | 'proto' | 'dport'>[] {
    if (!target.ports.some((p) => String(p) === dport)) return [];
    const dests = target.destinations.length === 0 ? [ANY[src.family]] : target.destinations.filter((d) => d.family === src.family).map((d) => `${d.address}/${d.family === 4 ? 32 : 128}`);
    return dests.flatMap((daddr) => target.protocols.map((proto) => ({ set, family: src.family, saddr: cidrText(src), daddr, proto, dport })));
  }

  /** Elements of live grants the table lost, each in the first slot where its keys are free. */
  private placeBack(live: RuleSpec[], kept: NftElement[], now: number): NftElement[] {
    const held = new Set(kept.map((e) => e.grantId));
    const taken = new Set(kept.map((e) => `${e.set}|${elementKey(e)}`));
    const out: NftElement[] = [];
    for (const r of live) {
      if (held.has(r.grantId) || r.expiresAt <= now + 1) continue;
      let els: NftElement[] | undefined;
      try {
        const src = parseCidr(r.source);
        const target = this.targetOf(r.targetId);
        if (src.prefix === 0 || !target.ports.includes(r.port)) continue;
        for (let slot = 0; slot < this.layout.slots && !els; slot++) {
          const cand = this.elementsFor(r, src, target, grantSet(src.family, slot));
          if (cand.length > 0 && !cand.some((e) => taken.has(`${e.set}|${elementKey(e)}`))) els = cand;
        }
      } catch {
        continue; // not ours to restore (another table's target, or a malformed record): the reconciler judges it
      }
      for (const e of els ?? []) taken.add(`${e.set}|${elementKey(e)}`);
      out.push(...(els ?? []));
    }
    return out;
  }

  /**
   * `create` when opening: `add` of an existing key silently refreshes its timeout (and keeps the other
   * grant's comment); `create` fails, and open() moves to the next slot. The timeout is computed when
   * nft has started and rounded down, so the kernel closes a little early rather than late; if the
   * grant expired meanwhile, 1 ms (the element is gone at once, and access never opens late). Only our
   * own comment format is written back: a hand-made comment is text we do not put in a script.
   */
  private elementLine(verb: 'add' | 'create', el: NftElement, at = this.now()): string {
    const timeoutMs = timeoutOf(el.expiresAt ?? 0, at);
    const ours = parseGrantComment(el.comment) ? ` comment "${el.comment}"` : '';
    return `${verb} element inet ${this.layout.table} ${el.set} { ${elementKey(el)} timeout ${timeoutMs}ms${ours} }\n`;
  }

  private assertGate(): void {
    if (!this.gate.verified) {
      throw new PortcullisError('FIREWALL_UNAVAILABLE', `nftables: the gate of ${this.scope} is not in place (${this.gate.problem}); nothing opens until it is restored`, {
        details: { gate: this.gate.problem },
      });
    }
  }

  private lose(problem: string): void {
    this.gate = { verified: false, problem };
  }

  /** One listing of our table; undefined when it does not exist. */
  private async readTable(): Promise<Json[] | undefined> {
    const out = await this.read(['-j', 'list', 'table', 'inet', this.layout.table]);
    return out === undefined ? undefined : listingItems(out);
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

  /**
   * One kernel transaction: a command of the long-lived session, or (`once`, the big and rare installs,
   * or with an injected runner) one `nft -f -` run.
   */
  private write(script: string | (() => string), via: 'session' | 'once' = 'session'): Promise<void> {
    this.calls.write += 1;
    if (via === 'session' && this.session) return this.session.run(script);
    return this.nft(['-f', '-'], script).then(() => undefined);
  }

  /** Ends the long-lived nft (the broker calls this on shutdown); a later write would start another. */
  async shutdown(): Promise<void> {
    await this.session?.close();
  }

  /** Reads then writes; running them one at a time keeps slot choice, deletes and restores consistent. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function toTarget(t: NftTargetInput): NftTarget {
  const ports = [...new Set(t.ports)];
  if (ports.length === 0) throw new PortcullisError('CONFIG_INVALID', `nftables: target ${t.id} guards no port`, { field: 'ports' });
  ports.forEach(assertPort);
  const protocols: Protocol[] = [...new Set<Protocol>(t.protocols ?? ['tcp', 'udp'])];
  if (protocols.length === 0 || protocols.some((p) => p !== 'tcp' && p !== 'udp')) throw new PortcullisError('CONFIG_INVALID', `nftables: target ${t.id}: protocols must be tcp and/or udp`, { field: 'protocols' });
  const destinations = (t.destinations ?? []).map((d) => {
    const ip = canonicalIp(d);
    if (ip === undefined) throw new PortcullisError('CONFIG_INVALID', `nftables: target ${t.id}: destination is not an IP address`, { field: 'destination' });
    return ip;
  });
  const onExpiry = t.onExpiry ?? 'cut';
  if (onExpiry !== 'cut' && onExpiry !== 'keep') throw new PortcullisError('CONFIG_INVALID', `nftables: target ${t.id}: onExpiry must be cut or keep`, { field: 'onExpiry' });
  return { id: t.id, destinations, ports, protocols, onExpiry };
}

/** The kernel timeout written for an expiry at `at`: rounded down, at least 1 ms. */
function timeoutOf(expiresAt: number, at: number): number {
  return Math.max(1, Math.floor(expiresAt - at));
}

function doubtKey(e: Pick<NftElement, 'set' | 'saddr' | 'dport' | 'grantId'>): string {
  return `${e.set}|${grantKey(e)}`;
}

/** A grant's elements of one source and port, in whichever set (a restore may place them in another slot). */
function grantKey(e: Pick<NftElement, 'saddr' | 'dport' | 'grantId'>): string {
  return `${e.saddr}|${e.dport}|${e.grantId ?? ''}`;
}

/** An element a ref names: the grant's, by set, source and port; an orphan's, by its exact key. */
function refMatches(w: ParsedRef, e: NftElement): boolean {
  if (w.set !== e.set || w.saddr !== e.saddr || w.dport !== e.dport) return false;
  return w.grantId === undefined ? e.grantId === undefined && w.daddr === e.daddr : w.grantId === e.grantId;
}

function deleteLines(table: string, els: NftElement[]): string {
  const bySet = new Map<string, string[]>();
  for (const e of els) {
    const keys = bySet.get(e.set);
    if (keys) keys.push(elementKey(e));
    else bySet.set(e.set, [elementKey(e)]);
  }
  return [...bySet].map(([set, keys]) => `delete element inet ${table} ${set} { ${keys.join(', ')} }\n`).join('');
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
