// A per-policy-set memo for answers that cost many decisions (maxDuration: up to 2 × 8 per target
// and view). Its key is the Cedar request itself, minus what the loaded policies provably cannot
// tell apart: the target's id when no policy names a Target entity, and the sign-in age within a
// band between the numbers the policies compare it with. Two queries with one key get the same
// answer from every policy of the set, so the memo can only ever return what Cedar would.
import { NAMESPACE, toCedarRequest } from './entities.ts';
import type { PolicyQuery } from './port.ts';

/** What the key may leave out, learnt from the policies' JSON form (Cedar's `policyToJson`). */
export interface SetFacts {
  /** Some policy names a Target entity (`resource == Target::"x"`, an entity literal): the id is part of the key. */
  namesTarget: boolean;
  /** The sorted numbers `context.authAgeSeconds` is compared with; null when it is used any other way (the exact age keys). */
  ageThresholds: number[] | null;
}

const COMPARISONS = new Set(['<', '<=', '>', '>=', '==', '!=']);
// Entity types whose literals say nothing about which target is asked about.
const NOT_A_TARGET = new Set(['User', 'Group', 'TargetGroup', 'Action'].map((t) => `${NAMESPACE}::${t}`));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: Json | undefined): v is { [k: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);
const isContext = (v: Json | undefined) => isObject(v) && v['Var'] === 'context';
const isAge = (v: Json | undefined) => isObject(v) && isObject(v['.']) && isContext(v['.']['left']) && v['.']['attr'] === 'authAgeSeconds';
const longLiteral = (v: Json | undefined) => (isObject(v) && Number.isSafeInteger(v['Value']) ? (v['Value'] as number) : undefined);

/** Reads the facts off every policy of a set (permits and forbids alike). */
export function setFacts(policies: readonly unknown[]): SetFacts {
  const thresholds = new Set<number>();
  let namesTarget = false;
  let ageUnbanded = false;
  const scan = (node: Json | undefined): void => {
    if (Array.isArray(node)) return node.forEach(scan);
    if (!isObject(node)) return;
    if (typeof node['type'] === 'string' && typeof node['id'] === 'string' && !NOT_A_TARGET.has(node['type'])) namesTarget = true;
    // `context` as a whole value (compared, passed to an if, …) could expose the exact age.
    if (node['Var'] === 'context') ageUnbanded = true;
    for (const [op, arg] of Object.entries(node)) {
      if ((op === '.' || op === 'has') && isObject(arg) && isContext(arg['left'])) {
        // context.x: every field but the age is in the key exactly; the age only inside a comparison below.
        if (op === '.' && arg['attr'] === 'authAgeSeconds') ageUnbanded = true;
        continue;
      }
      if (COMPARISONS.has(op) && isObject(arg)) {
        const [l, r] = [arg['left'], arg['right']];
        const t = isAge(l) ? longLiteral(r) : isAge(r) ? longLiteral(l) : undefined;
        if (t !== undefined) {
          thresholds.add(t);
          continue;
        }
      }
      scan(arg);
    }
  };
  for (const p of policies) scan(p as Json);
  return { namesTarget, ageThresholds: ageUnbanded ? null : [...thresholds].sort((a, b) => a - b) };
}

/**
 * The age as the policies can see it: how many thresholds lie below it and whether it equals one.
 * Any comparison `age op t` (<, <=, >, >=, ==, !=) has the same truth value for two ages with the same band.
 */
export function ageBand(age: number, thresholds: readonly number[] | null): string {
  if (thresholds === null) return `=${age}`;
  let below = 0;
  while (below < thresholds.length && thresholds[below]! < age) below++;
  return thresholds[below] === age ? `${below}=` : `${below}`;
}

/**
 * The memo key of a query without its action and duration (maxDuration varies both): the Cedar
 * request it becomes, with the target's id and the exact age replaced as `facts` allow.
 * Throws what toCedarRequest throws for a malformed context (then nothing is remembered).
 */
export function memoKey(query: Omit<PolicyQuery, 'action'>, facts: SetFacts): string {
  const age = query.context.authAgeSeconds;
  // A bad age must not share a band with good ones (its answer is an error's deny).
  if (!Number.isSafeInteger(age)) throw new TypeError(`policy context authAgeSeconds must be an integer, got ${String(age)}`);
  const request = toCedarRequest({ ...query, action: 'OpenPort', context: { ...query.context, durationMinutes: 0, authAgeSeconds: 0 } });
  if (!facts.namesTarget) {
    request.resource = { type: request.resource.type, id: '' };
    request.entities[1]!.uid = request.resource;
  }
  return `${ageBand(age, facts.ageThresholds)}|${JSON.stringify([request.principal, request.resource, request.context, request.entities])}`;
}

/** A bounded map: past `max` entries the oldest goes. */
export class Memo {
  readonly #entries = new Map<string, unknown>();
  constructor(readonly max = 20_000) {}

  get size(): number {
    return this.#entries.size;
  }

  get<T>(key: string, compute: () => T): T {
    if (this.#entries.has(key)) return this.#entries.get(key) as T;
    const value = compute();
    if (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, value);
    return value;
  }
}
