// Maps errors to HTTP at the edge, in one place: 4xx carry code, message and field; 5xx never leak internals.
import type { ErrorRequestHandler } from 'express';
import { httpStatus, isPortcullisError, type ErrorCode } from '../errors.ts';
import { errorFields, type Logger } from '../log.ts';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string; grant?: string };
}

// A 5xx message is fixed per code: the error's own message may quote a backend (nft's stderr, an
// AWS error text, a database path), which belongs in the log only.
const UNAVAILABLE: Partial<Record<ErrorCode, string>> = {
  FIREWALL_UNAVAILABLE: 'the firewall backend did not answer; nothing was left half-done, try again later',
  STORE_UNAVAILABLE: 'the store did not answer; nothing was changed, try again later',
  POLICY_UNAVAILABLE: 'the policy engine could not decide; nothing was opened',
  IDP_UNAVAILABLE: 'the identity provider is not reachable yet; try again later',
};

/** Errors of the HTTP plumbing (body-parser, the router's path decoding, zlib), by what they mean to a client. */
function transportError(e: unknown): { status: number; code: ErrorCode; message: string; field?: string } | undefined {
  const err = e as { type?: string; status?: number; code?: unknown } | null;
  if (e instanceof URIError) return { status: 400, code: 'INVALID_ENCODING', message: 'the path is not valid percent-encoded UTF-8', field: 'path' };
  if (!err || typeof err.status !== 'number' || err.status < 400 || err.status >= 500) return undefined;
  switch (err.type) {
    case 'entity.parse.failed':
      return { status: 400, code: 'INVALID_REQUEST', message: 'the request body is not valid JSON' };
    case 'entity.too.large':
      return { status: 413, code: 'BODY_TOO_LARGE', message: 'the request body is too large' };
    case 'encoding.unsupported':
      return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Content-Encoding must be identity, gzip, deflate or br', field: 'content-encoding' };
    case 'charset.unsupported':
      return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'send application/json in UTF-8', field: 'content-type' };
  }
  if (typeof err.code === 'string' && /^(Z_|ERR__|ERR_BROTLI|ERR_ZLIB)/.test(err.code)) {
    return { status: 400, code: 'INVALID_ENCODING', message: 'the request body does not decode with its Content-Encoding', field: 'content-encoding' };
  }
  return { status: 400, code: 'INVALID_REQUEST', message: 'the request could not be read' };
}

export function errorBody(e: unknown): { status: number; body: ErrorBody; retryAfterSeconds?: number } {
  if (isPortcullisError(e)) {
    const status = httpStatus(e.code);
    const grant = typeof e.details?.grant === 'string' ? e.details.grant : undefined;
    if (status < 500) {
      const retry = typeof e.details?.retryAfterSeconds === 'number' ? { retryAfterSeconds: e.details.retryAfterSeconds } : {};
      return { status, ...retry, body: { error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}), ...(grant ? { grant } : {}) } } };
    }
    return { status, body: { error: { code: e.code, message: UNAVAILABLE[e.code] ?? 'internal error; see the broker log', ...(grant ? { grant } : {}) } } };
  }
  const t = transportError(e);
  if (t) return { status: t.status, body: { error: { code: t.code, message: t.message, ...(t.field ? { field: t.field } : {}) } } };
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error; see the broker log' } } };
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (e, req, res, _next) => {
    const { status, body, retryAfterSeconds } = errorBody(e);
    if (status >= 500) log.error('request failed', { method: req.method, path: req.path, status, ...errorFields(e) });
    if (res.headersSent) return;
    if (retryAfterSeconds !== undefined) res.set('Retry-After', String(retryAfterSeconds));
    res.status(status).json(body);
  };
}

/**
 * Node's answer to a request it could not parse (headers over maxHeaderSize, a malformed request
 * line, conflicting Content-Length) is a bare status line; this one carries the JSON error body.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: import('node:stream').Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return;
  const [status, reason, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'HEADER_TOO_LARGE', 'the request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'INVALID_REQUEST', 'the request did not arrive in time']
        : [400, 'Bad Request', 'INVALID_REQUEST', 'the request is not valid HTTP/1.1'];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
