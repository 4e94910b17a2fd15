// Translates a PolicyQuery into Cedar's request: entities (User in Groups, Target in
// TargetGroups derived from tags) and the context record of schema.cedarschema.
import type { CedarValueJson, Context, EntityJson, TypeAndId } from '@cedar-policy/cedar-wasm/nodejs';
import { isIP } from 'node:net';
import type { PolicyContext, PolicyQuery } from './port.ts';

export const NAMESPACE = 'Portcullis';
const T = {
  user: `${NAMESPACE}::User`,
  group: `${NAMESPACE}::Group`,
  target: `${NAMESPACE}::Target`,
  targetGroup: `${NAMESPACE}::TargetGroup`,
  action: `${NAMESPACE}::Action`,
} as const;

export interface CedarRequest {
  principal: TypeAndId;
  action: TypeAndId;
  resource: TypeAndId;
  context: Context;
  entities: EntityJson[];
}

/** `TargetGroup` ids a target belongs to: one per tag, written `key:value`. */
export function targetGroupsOf(tags: Record<string, string>): string[] {
  return Object.entries(tags).map(([k, v]) => `${k}:${v}`);
}

export function toCedarRequest(q: PolicyQuery): CedarRequest {
  checkContext(q.context);
  const principal = { type: T.user, id: q.principal.sub };
  const resource = { type: T.target, id: q.target.id };
  const groups = [...new Set(q.principal.groups)];
  const targetGroups = targetGroupsOf(q.target.tags);
  // Groups and TargetGroups appear only as parents: Cedar needs no entity record for an
  // ancestor without attributes, and each record left out is less to serialise into wasm.
  const entities: EntityJson[] = [
    {
      uid: principal,
      attrs: { email: q.principal.email ?? '', name: q.principal.name ?? '' },
      parents: groups.map((id) => ({ type: T.group, id })),
    },
    {
      uid: resource,
      attrs: { customer: q.target.tags['customer'] ?? '', env: q.target.tags['env'] ?? '', ports: q.target.ports },
      parents: targetGroups.map((id) => ({ type: T.targetGroup, id })),
      tags: { ...q.target.tags },
    },
  ];
  return { principal, action: { type: T.action, id: q.action }, resource, context: toCedarContext(q.context), entities };
}

export function toCedarContext(c: PolicyContext): Context {
  const context: Record<string, CedarValueJson> = {
    mfa: c.mfa,
    authAgeSeconds: c.authAgeSeconds,
    durationMinutes: c.durationMinutes,
    port: c.port,
    sourceIp: { __extn: { fn: 'ip', arg: c.sourceIp } },
    sourcePrefixLength: c.sourcePrefixLength,
    callerIp: { __extn: { fn: 'ip', arg: c.callerIp } },
    sourceIsCaller: c.sourceIsCaller,
    channel: c.channel,
    reason: c.reason,
    hour: c.hour,
    weekday: c.weekday,
  };
  // An entity reference, so a policy can say `context.requester == principal`.
  if (c.requester !== undefined) context['requester'] = { __entity: { type: T.user, id: c.requester } };
  return context;
}

/**
 * Catches a malformed context before Cedar does, with the field named. Cedar would also fail
 * (and the engine treats that as a deny), but "context invalid" helps nobody debug a caller.
 */
function checkContext(c: PolicyContext): void {
  const longs = ['authAgeSeconds', 'durationMinutes', 'port', 'sourcePrefixLength', 'hour'] as const;
  for (const k of longs) {
    if (!Number.isSafeInteger(c[k])) throw new TypeError(`policy context ${k} must be an integer, got ${String(c[k])}`);
  }
  if (typeof c.mfa !== 'boolean') throw new TypeError('policy context mfa must be a boolean');
  if (typeof c.sourceIsCaller !== 'boolean') throw new TypeError('policy context sourceIsCaller must be a boolean');
  const [address, prefix, ...rest] = String(c.sourceIp).split('/');
  if (isIP(address ?? '') === 0 || prefix !== String(c.sourcePrefixLength) || rest.length > 0) {
    throw new TypeError(`policy context sourceIp must be the source CIDR (address/${c.sourcePrefixLength}), got ${c.sourceIp}`);
  }
  if (isIP(c.callerIp) === 0) throw new TypeError(`policy context callerIp must be an IP address, got ${c.callerIp}`);
  for (const k of ['channel', 'reason', 'weekday'] as const) {
    if (typeof c[k] !== 'string') throw new TypeError(`policy context ${k} must be a string`);
  }
}
