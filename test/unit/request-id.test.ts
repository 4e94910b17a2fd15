// Every HTTP request gets an id: answered in X-Request-Id, on the one access-log line, and on every line logged while
// it is handled (after the body is parsed too, and by the error handler of a 5xx).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { errorHandler } from '../../src/http/errors.ts';
import { requestId } from '../../src/http/request-id.ts';
import { createLogger } from '../../src/log.ts';
import { waitFor } from '../helpers/broker.ts';

describe('request ids', () => {
  const lines: Record<string, any>[] = [];
  const log = createLogger('info', (l) => lines.push(JSON.parse(l)));
  let url: string;
  let close: () => Promise<void>;
  before(async () => {
    const app = express();
    app.use(requestId(log));
    app.use(express.json());
    app.post('/work', async (req, res) => {
      await new Promise((r) => setTimeout(r, 5));
      log.info('working', { n: req.body.n });
      res.json({ ok: true });
    });
    app.post('/fail', async () => {
      await Promise.resolve();
      throw new Error('boom');
    });
    app.use(errorHandler(log));
    const server = createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => new Promise((r) => server.close(() => r()));
  });
  after(() => close());

  const post = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ n: 7 }) });
  // The access line is written on 'finish', which may come after the client has the answer.
  const line = (msg: string) => waitFor(`log line ${msg}`, async () => lines.find((l) => l.msg === msg));

  it('answers with an id and puts it on the handler\'s log lines and on the access line, which has no query string', async () => {
    lines.length = 0;
    const res = await post('/work?code=secret-oauth-code');
    const id = res.headers.get('x-request-id')!;
    assert.match(id, /^[0-9a-f-]{36}$/);
    const working = await line('working');
    assert.equal(working.requestId, id);
    assert.equal(working.n, 7);
    const access = await line('http');
    assert.deepEqual({ ...access, time: undefined, ms: undefined }, { time: undefined, ms: undefined, level: 'info', msg: 'http', requestId: id, method: 'POST', path: '/work', status: 200 });
    assert.ok(!JSON.stringify(lines).includes('secret-oauth-code'));
  });

  it("keeps a proxy's plain id, replaces one that is long or could forge log fields", async () => {
    assert.equal((await post('/work', { 'x-request-id': 'lb-1234.abc' })).headers.get('x-request-id'), 'lb-1234.abc');
    for (const bad of ['x'.repeat(65), 'a"b', 'a b']) assert.notEqual((await post('/work', { 'x-request-id': bad })).headers.get('x-request-id'), bad);
  });

  it('a 5xx is logged with the request id the client was given', async () => {
    lines.length = 0;
    const res = await post('/fail');
    assert.equal(res.status, 500);
    const failed = await line('request failed');
    assert.equal(failed.requestId, res.headers.get('x-request-id'));
  });
});
