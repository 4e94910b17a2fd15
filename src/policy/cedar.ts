// The Cedar adapter of the PolicyEngine port: loads and validates policies/, preparses the set
// once, answers decide() with the deciding policy ids, and reloads without ever going half-way.
import { policyToJson, preparsePolicySet, statefulIsAuthorized } from '@cedar-policy/cedar-wasm/nodejs';
import { setFlagsFromString } from 'node:v8';
import { PortcullisError } from '../errors.ts';
import { toCedarRequest } from './entities.ts';
import { Memo, memoKey, setFacts, type SetFacts } from './memo.ts';
import type { DecideOptions, PolicyDecision, PolicyEngine, PolicyQuery } from './port.ts';
import { formatProblem, readPolicyDir, type LoadedPolicySet, type PolicyProblem } from './source.ts';

// Node 20's V8 crashes the process ("Fatal error … unreachable code" in
// Deoptimizer::DoComputeBuiltinContinuation) when optimized code that inlined a JS→Wasm call is
// deoptimized lazily during that call; under sustained load decide() hit it in a few percent of
// runs. Not inlining those calls removed every crash in our reproductions (0 of 30 runs, against
// about 1 in 3 with --liftoff-only) for no measurable cost: the call is into Cedar anyway.
setFlagsFromString('--no-turbo-inline-js-wasm-calls');

export interface CedarEngineOptions {
  dir: string;
  /** policy.timeZone; kept so callers building contexts for this engine can ask it. */
  timeZone?: string;
}

export interface ReloadResult {
  generation: number;
  policies: number;
}

export interface CedarPolicyEngine extends PolicyEngine {
  readonly dir: string;
  readonly timeZone: string;
  /** Increments on every successful load; audit and logs can say which set decided. */
  readonly generation: number;
  /**
   * Re-reads the directory. On any problem the running set stays in force and a
   * PortcullisError('POLICY_INVALID') says so, with `details.problems` (file:line:column).
   */
  reload(): ReloadResult;
  /** Answers remembered for the loaded set (see remember); 0 after a reload. */
  readonly memoSize: number;
}

/** A policy whose condition reads the request's reason (`context.reason` or `context["reason"]`). */
const READS_REASON = /\bcontext\s*(\.\s*reason\b|\[\s*"reason"\s*\])/;

// Cedar caches preparsed sets per thread under a name; every engine gets its own names.
let engines = 0;

/** Loads `dir` or throws PortcullisError('POLICY_INVALID') listing each problem as file:line:column. */
export function loadPolicyEngine(options: CedarEngineOptions): CedarPolicyEngine {
  return new Engine(options.dir, options.timeZone ?? 'UTC');
}

/** Thrown by load and reload; the message lists every problem, one per line. */
export function policyInvalid(dir: string, problems: PolicyProblem[], kept?: LoadedPolicySet): PortcullisError {
  const head = kept
    ? `policy reload from ${dir} failed; keeping the previous set of ${kept.policies.length} policies`
    : `policies in ${dir} are invalid`;
  return new PortcullisError('POLICY_INVALID', [head, ...problems.map(formatProblem)].join('\n'), {
    details: { dir, problems, keptPrevious: kept !== undefined },
  });
}

class Engine implements CedarPolicyEngine {
  readonly dir: string;
  readonly timeZone: string;
  generation = 0;
  readonly #name = `portcullis-${++engines}`;
  #set!: LoadedPolicySet;
  #setId = '';
  #reasonlessId = '';
  #facts!: SetFacts;
  #memo = new Memo();

  constructor(dir: string, timeZone: string) {
    this.dir = dir;
    this.timeZone = timeZone;
    this.#install(this.#read());
  }

  reload(): ReloadResult {
    this.#install(this.#read());
    return { generation: this.generation, policies: this.#set.policies.length };
  }

  describe(): { id: string; file: string; comment: string; annotations: Record<string, string> }[] {
    return this.#set.policies.map((p) => ({ id: p.id, file: `${p.file}:${p.line}:${p.column}`, comment: p.comment, annotations: p.annotations }));
  }

  get memoSize(): number {
    return this.#memo.size;
  }

  remember<T>(label: string, query: Omit<PolicyQuery, 'action'>, compute: () => T): T {
    let key;
    try {
      key = memoKey(query, this.#facts);
    } catch {
      return compute(); // a malformed context: decide() answers it with a named error
    }
    return this.#memo.get(`${label}|${key}`, compute);
  }

  decide(query: PolicyQuery, opts: DecideOptions = {}): PolicyDecision {
    let request;
    try {
      request = toCedarRequest(query);
    } catch (e) {
      return { allowed: false, policyIds: [], errors: [(e as Error).message] };
    }
    const answer = statefulIsAuthorized({
      ...request,
      preparsedPolicySetId: opts.reasonUnknown ? this.#reasonlessId : this.#setId,
      // No schema per call: the policies were validated against it at load (strict mode), and
      // entities.ts builds entities and context of exactly its types, extension values and entity
      // references written explicitly. Parsing them against the schema again cost ~15 % of a call;
      // validating the request ~100 µs more. A mismatch still ends as an error below, hence a deny.
      validateRequest: false,
    });
    if (answer.type === 'failure') {
      return { allowed: false, policyIds: [], errors: answer.errors.map((e) => e.message) };
    }
    const { decision, diagnostics } = answer.response;
    const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
    // Cedar skips a policy whose evaluation errors and may still allow; a skipped forbid must
    // not turn into an open port, so any error is a deny here.
    return { allowed: decision === 'allow' && errors.length === 0, policyIds: [...diagnostics.reason].sort(), errors };
  }

  #read(): LoadedPolicySet {
    const got = readPolicyDir(this.dir);
    if (!got.ok) throw policyInvalid(this.dir, got.problems, this.generation > 0 ? this.#set : undefined);
    return got.set;
  }

  #install(set: LoadedPolicySet): void {
    // Two alternating cache slots: the new set is parsed beside the live one, so a failure
    // at this step leaves the live set untouched; the swap itself is two assignments.
    const slot = (this.generation + 1) % 2;
    const setId = `${this.#name}-policies-${slot}`;
    const problems: PolicyProblem[] = [];
    const p = preparsePolicySet(setId, {
      staticPolicies: Object.fromEntries(set.policies.map((x) => [x.id, x.text])),
    });
    if (p.type === 'failure') problems.push(...p.errors.map((e) => ({ file: set.dir, line: 1, column: 1, message: e.message })));
    // The same set without the forbids about the reason, for previews made before a reason exists.
    const reasonlessId = `${this.#name}-reasonless-${slot}`;
    const q = preparsePolicySet(reasonlessId, {
      staticPolicies: Object.fromEntries(set.policies.filter((x) => !(x.effect === 'forbid' && READS_REASON.test(x.text))).map((x) => [x.id, x.text])),
    });
    if (q.type === 'failure') problems.push(...q.errors.map((e) => ({ file: set.dir, line: 1, column: 1, message: e.message })));
    const printed = set.policies.map((x) => policyToJson(x.text));
    for (const j of printed) if (j.type === 'failure') problems.push(...j.errors.map((e) => ({ file: set.dir, line: 1, column: 1, message: e.message })));
    const facts = setFacts(printed.map((j) => (j.type === 'success' ? j.json : null)));
    if (problems.length > 0) throw policyInvalid(this.dir, problems, this.generation > 0 ? this.#set : undefined);
    this.#facts = facts;
    this.#memo = new Memo();
    this.#set = set;
    this.#setId = setId;
    this.#reasonlessId = reasonlessId;
    this.generation++;
  }
}
