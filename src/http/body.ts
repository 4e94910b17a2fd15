// Reads JSON request bodies: UTF-8 JSON objects only, no lone surrogates, a small size cap; each refusal has its code.
import express, { type RequestHandler } from 'express';
import { PortcullisError } from '../errors.ts';

/** With the `u` flag a surrogate range matches only unpaired halves: text that is not valid Unicode. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

export const BODY_LIMIT = '16kb';

/** A lone surrogate cannot be stored, hashed into the audit chain or handed to Cedar faithfully: refuse it by field. */
function refuseInvalidUnicode(key: string, value: unknown): unknown {
  if (LONE_SURROGATE.test(key)) throw new PortcullisError('INVALID_ENCODING', 'a field name is not valid Unicode', { field: '(name)' });
  if (typeof value === 'string' && LONE_SURROGATE.test(value)) {
    throw new PortcullisError('INVALID_ENCODING', `${key || 'the body'} is not valid Unicode (a lone surrogate)`, { field: key || undefined });
  }
  return value;
}

export function jsonBody(): RequestHandler {
  const parse = express.json({ limit: BODY_LIMIT, strict: true, reviver: refuseInvalidUnicode });
  return (req, res, next) => {
    // A body that was read already (a replayed step-up request) carries its parsed value.
    if (req.readableEnded) return next();
    const length = Number(req.headers['content-length'] ?? 0);
    const hasBody = req.headers['transfer-encoding'] !== undefined || length > 0;
    if (hasBody && !req.is('application/json')) {
      next(new PortcullisError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json', { field: 'content-type' }));
      return;
    }
    parse(req, res, next);
  };
}
