// Checks an access request's fields against the targets and the configured guardrails; each error names its field.
import type { TargetConfig } from '../config/schema.ts';
import { parseDuration } from '../config/duration.ts';
import { PortcullisError } from '../errors.ts';

/** The request as a transport received it; nothing in it is trusted yet. */
export interface AccessRequestInput {
  target?: unknown;
  duration?: unknown;
  reason?: unknown;
  port?: unknown;
  sourceIp?: unknown;
}

export interface ValidRequest {
  target: TargetConfig;
  durationSeconds: number;
  reason: string;
  port: number;
  sourceIp: string | undefined;
}

export interface RequestLimits {
  minDurationSeconds: number;
  maxDurationSeconds: number;
  reasonPattern?: RegExp | undefined;
}

const MAX_REASON = 500;

export function validateRequest(input: AccessRequestInput, targets: ReadonlyMap<string, TargetConfig>, limits: RequestLimits): ValidRequest {
  if (input === null || typeof input !== 'object') {
    throw new PortcullisError('INVALID_REQUEST', 'the request body must be a JSON object');
  }
  const known = new Set(['target', 'duration', 'reason', 'port', 'sourceIp']);
  const unknown = Object.keys(input).filter((k) => !known.has(k));
  if (unknown.length) {
    throw new PortcullisError('INVALID_REQUEST', `unknown field ${unknown.map((k) => `"${k.slice(0, 40)}"`).join(', ')}`, { field: unknown[0]!.slice(0, 40) });
  }

  if (typeof input.target !== 'string' || input.target.length === 0) {
    throw new PortcullisError('INVALID_TARGET', 'target is required: the id of a configured target', { field: 'target' });
  }
  const target = targets.get(input.target);
  if (!target) {
    throw new PortcullisError('INVALID_TARGET', `unknown target "${input.target.slice(0, 64)}"`, { field: 'target' });
  }

  if (typeof input.duration !== 'string') {
    throw new PortcullisError('INVALID_DURATION', 'duration is required, written like 30m, 2h or PT2H', { field: 'duration' });
  }
  const durationSeconds = parseDuration(input.duration);
  if (durationSeconds === undefined) {
    throw new PortcullisError('INVALID_DURATION', `duration "${input.duration.slice(0, 32)}" is not a duration such as 30m, 2h or PT2H`, { field: 'duration' });
  }
  if (durationSeconds < limits.minDurationSeconds) {
    throw new PortcullisError('DURATION_TOO_SHORT', `duration must be at least ${limits.minDurationSeconds / 60} minutes`, { field: 'duration' });
  }
  if (durationSeconds > limits.maxDurationSeconds) {
    throw new PortcullisError('DURATION_TOO_LONG', `duration must be at most ${limits.maxDurationSeconds / 60} minutes`, { field: 'duration' });
  }

  if (typeof input.reason !== 'string' || input.reason.trim().length === 0) {
    throw new PortcullisError('INVALID_REASON', 'reason is required: say why you need access (for example a ticket number)', { field: 'reason' });
  }
  const reason = input.reason.trim();
  if (reason.length > MAX_REASON || /[\u0000-\u001f\u007f]/.test(reason)) {
    throw new PortcullisError('INVALID_REASON', `reason must be one line of at most ${MAX_REASON} characters`, { field: 'reason' });
  }
  if (limits.reasonPattern && !limits.reasonPattern.test(reason)) {
    throw new PortcullisError('INVALID_REASON', `reason must match ${limits.reasonPattern.source}`, { field: 'reason' });
  }

  let port = target.ports[0]!;
  if (input.port !== undefined) {
    if (typeof input.port !== 'number' || !Number.isInteger(input.port) || !target.ports.includes(input.port)) {
      throw new PortcullisError('INVALID_PORT', `port must be one of ${target.ports.join(', ')} for target ${target.id}`, { field: 'port' });
    }
    port = input.port;
  }

  if (input.sourceIp !== undefined && typeof input.sourceIp !== 'string') {
    throw new PortcullisError('INVALID_SOURCE_IP', 'sourceIp must be a string', { field: 'sourceIp' });
  }
  return { target, durationSeconds, reason, port, sourceIp: input.sourceIp as string | undefined };
}
