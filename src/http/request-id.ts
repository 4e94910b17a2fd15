// Gives every HTTP request an id (X-Request-Id), answers with it, logs one line per request, and puts the id on every
// log line written while the request is handled, so a 5xx a user reports can be found in the logs.
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { logContext, type Logger } from '../log.ts';

// A proxy's or client's id is kept only when it is short and plain: it goes into logs verbatim.
const SAFE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export function requestId(log: Logger): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    const id = given !== undefined && SAFE_ID.test(given) ? given : randomUUID();
    res.locals.requestId = id;
    res.set('X-Request-Id', id);
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      // The path only: query strings carry OAuth codes and state.
      logContext.run({ requestId: id }, () =>
        log.info('http', { method: req.method, path: req.path, status: res.statusCode, ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000 }),
      );
    });
    logContext.run({ requestId: id }, next);
  };
}
