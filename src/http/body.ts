// Reads JSON request bodies: UTF-8 JSON objects only, no lone surrogates, a small size cap; each refusal has its code.
import express, { type RequestHandler } from 'express';
import { PortcullisError } from '../errors.ts';

/** With the `u` flag a surrogate range matches only unpaired halves: text that is not valid Unicode. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

export const BODY_LIMIT = '16kb';

/**
 * A lone surrogate cannot be stored, hashed into the audit chain or handed to Cedar faithfully:
 * the name of the first field that holds one (a reviver cannot say: body-parser strips its errors).
 */
function invalidUnicodeField(v: unknown, key: string, depth = 0): string | undefined {
  if (typeof v === 'string') return LONE_SURROGATE.test(v) ? key : undefined;
  if (v === null || typeof v !== 'object' || depth > 32) return undefined;
  for (const [k, inner] of Object.entries(v)) {
    if (LONE_SURROGATE.test(k)) return '(name)';
    const found = invalidUnicodeField(inner, k, depth + 1);
    if (found) return found;
  }
  return undefined;
}

export function jsonBody(): RequestHandler {
  const parse = express.json({ limit: BODY_LIMIT, strict: true });
  return (req, res, next) => {
    // A body that was read already (a replayed step-up request) carries its parsed value.
    if (req.readableEnded) return next();
    const length = Number(req.headers['content-length'] ?? 0);
    const hasBody = req.headers['transfer-encoding'] !== undefined || length > 0;
    if (hasBody && !req.is('application/json')) {
      next(new PortcullisError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json', { field: 'content-type' }));
      return;
    }
    parse(req, res, (err?: unknown) => {
      if (err) return next(err);
      if (!hasBody) return next();
      if (req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
        return next(new PortcullisError('INVALID_REQUEST', 'the request body must be a JSON object'));
      }
      const field = invalidUnicodeField(req.body, '');
      if (field !== undefined) {
        return next(new PortcullisError('INVALID_ENCODING', `${field === '(name)' ? 'a field name' : field} is not valid Unicode (a lone surrogate)`, { field }));
      }
      next();
    });
  };
}
