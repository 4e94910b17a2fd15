// Maps errors to HTTP at the edge, in one place: 4xx carry code, message and field; 5xx never leak internals.
import type { ErrorRequestHandler } from 'express';
import { httpStatus, isPortcullisError, type ErrorCode } from '../errors.ts';
import { errorFields, type Logger } from '../log.ts';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string; grant?: string };
}

export function errorBody(e: unknown): { status: number; body: ErrorBody } {
  if (isPortcullisError(e)) {
    const status = httpStatus(e.code);
    if (status < 500 || status === 503) {
      const grant = typeof e.details?.grant === 'string' ? e.details.grant : undefined;
      return { status, body: { error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}), ...(grant ? { grant } : {}) } } };
    }
    return { status, body: { error: { code: e.code, message: 'internal error; see the broker log' } } };
  }
  const err = e as { type?: string; status?: number };
  if (err?.type === 'entity.parse.failed') return { status: 400, body: { error: { code: 'INVALID_REQUEST', message: 'the request body is not valid JSON' } } };
  if (err?.type === 'entity.too.large') return { status: 413, body: { error: { code: 'INVALID_REQUEST', message: 'the request body is too large' } } };
  if (err?.type === 'encoding.unsupported' || err?.status === 415) return { status: 415, body: { error: { code: 'INVALID_REQUEST', message: 'send application/json' } } };
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error; see the broker log' } } };
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (e, req, res, _next) => {
    const { status, body } = errorBody(e);
    if (status >= 500) log.error('request failed', { method: req.method, path: req.path, status, ...errorFields(e) });
    if (res.headersSent) return;
    res.status(status).json(body);
  };
}
