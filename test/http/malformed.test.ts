// No malformed input gets a 5xx: every one gets a 4xx with a stable code and the field it concerns,
// in process through supertest (and over a real socket where Node itself parses the request).
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { startApiWorld, type ApiWorld } from './helpers/world.ts';

describe('malformed input gets a 4xx with a code, never a 5xx', () => {
  let w: ApiWorld;
  before(async () => {
    w = await startApiWorld();
  });
  after(async () => {
    await w?.stop();
  });

  const body = JSON.stringify({ target: 'lab-pc', duration: '10m', reason: 'T-1' });
  const post = (path = '/api/v1/grants') => w.http().post(path).set('authorization', `Bearer ${w.token}`);

  async function nothingOpened() {
    assert.deepEqual(await w.fw.list(), []);
    assert.deepEqual((await w.broker.app.store.listGrants()).filter((g) => g.state !== 'denied'), []);
  }

  const encoded: [string, string, Buffer][] = [
    ['gzip', 'a gzip body that is not gzip', Buffer.from('{"target":"lab-pc"}')],
    ['gzip', 'a truncated gzip body', gzipSync(body).subarray(0, 12)],
    ['deflate', 'a deflate body that is not deflate', Buffer.from('xxxx-not-deflate')],
    ['br', 'a brotli body that is not brotli', Buffer.from([0xff, 0xff, 0xff, 0x00, 0x13])],
    ['br', 'a truncated brotli body', brotliCompressSync(Buffer.from(body.repeat(5))).subarray(0, 10)],
  ];
  // Over the real socket: superagent would re-serialise a Buffer sent as JSON.
  const sendEncoded = async (enc: string, bytes: Buffer) => {
    const res = await fetch(`${w.broker.url}/api/v1/grants`, { method: 'POST', headers: { authorization: `Bearer ${w.token}`, 'content-type': 'application/json', 'content-encoding': enc }, body: new Uint8Array(bytes) });
    return { status: res.status, body: (await res.json()) as any };
  };
  for (const [enc, name, bytes] of encoded) {
    test(`${name} → 400 INVALID_ENCODING (content-encoding)`, async () => {
      const res = await sendEncoded(enc, bytes);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.deepEqual(res.body.error.code, 'INVALID_ENCODING');
      assert.equal(res.body.error.field, 'content-encoding');
      await nothingOpened();
    });
  }

  test('a well-formed gzip or brotli body is read', async () => {
    const json = JSON.stringify({ target: 'nope', duration: '10m', reason: 'T-1' });
    for (const [enc, bytes] of [['gzip', gzipSync(json)], ['br', brotliCompressSync(json)]] as const) {
      const res = await sendEncoded(enc, bytes);
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'INVALID_TARGET', `the body reached validation: ${JSON.stringify(res.body)}`);
    }
  });

  const cases: [string, () => Promise<{ status: number; body: any; text: string }>, number, string, string | undefined][] = [
    ['an unknown Content-Encoding', () => post().set('content-type', 'application/json').set('content-encoding', 'zstd').send(Buffer.from(body)), 415, 'UNSUPPORTED_MEDIA_TYPE', 'content-encoding'],
    ['a text/plain body', () => post().set('content-type', 'text/plain').send(body), 415, 'UNSUPPORTED_MEDIA_TYPE', 'content-type'],
    ['a form-encoded body', () => post().type('form').send('target=lab-pc&duration=10m&reason=T-1'), 415, 'UNSUPPORTED_MEDIA_TYPE', 'content-type'],
    ['a body with no Content-Type', () => post().set('content-type', '').send(Buffer.from(body)), 415, 'UNSUPPORTED_MEDIA_TYPE', 'content-type'],
    ['JSON in latin-1', () => post().set('content-type', 'application/json; charset=latin1').send(body), 415, 'UNSUPPORTED_MEDIA_TYPE', 'content-type'],
    ['a body over 16 KiB', () => post().set('content-type', 'application/json').send(JSON.stringify({ target: 'lab-pc', reason: 'x'.repeat(20_000) })), 413, 'BODY_TOO_LARGE', undefined],
    ['a JSON array', () => post().set('content-type', 'application/json').send('[1,2]'), 400, 'INVALID_REQUEST', undefined],
    ['a bare JSON string', () => post().set('content-type', 'application/json').send('"x"'), 400, 'INVALID_REQUEST', undefined],
    ['truncated JSON', () => post().set('content-type', 'application/json').send('{"target":'), 400, 'INVALID_REQUEST', undefined],
    ['a lone surrogate in reason', () => post().set('content-type', 'application/json').send('{"target":"lab-pc","duration":"10m","reason":"T-1 \\ud800"}'), 400, 'INVALID_ENCODING', 'reason'],
    ['a lone low surrogate in target', () => post().set('content-type', 'application/json').send('{"target":"lab\\udc00","duration":"10m","reason":"T-1"}'), 400, 'INVALID_ENCODING', 'target'],
    ['a lone surrogate in a field name', () => post().set('content-type', 'application/json').send('{"\\ud800":1}'), 400, 'INVALID_ENCODING', '(name)'],
    ['a lone surrogate in an approval comment', () => post('/api/v1/grants/g_x/approve').set('content-type', 'application/json').send('{"comment":"\\udfff"}'), 400, 'INVALID_ENCODING', 'comment'],
    ['invalid percent-encoding in a grant id', () => w.http().get('/api/v1/grants/%ff').set('authorization', `Bearer ${w.token}`), 400, 'INVALID_ENCODING', 'path'],
    ['invalid percent-encoding without credentials', () => w.http().get('/api/v1/grants/%E0%A4%A'), 400, 'INVALID_ENCODING', 'path'],
    ['invalid percent-encoding in a revoke', () => post('/api/v1/grants/%c3%28/revoke').send({}), 400, 'INVALID_ENCODING', 'path'],
    ['an Authorization header that is not Bearer', () => w.http().get('/api/v1/me').set('authorization', 'Basic YWxpY2U6cHc='), 401, 'TOKEN_MALFORMED', undefined],
    ['a view that is a list', () => w.http().get('/api/v1/grants?view=mine&view=all').set('authorization', `Bearer ${w.token}`), 400, 'INVALID_REQUEST', 'view'],
  ];
  for (const [name, send, status, code, field] of cases) {
    test(`${name} → ${status} ${code}${field ? ` (${field})` : ''}`, async () => {
      const res = await send();
      assert.equal(res.status, status, res.text);
      assert.equal(res.body.error.code, code);
      assert.equal(res.body.error.field, field);
      await nothingOpened();
    });
  }

  test('a 503 names its code with a fixed message: the backend\'s own words stay in the log', async () => {
    w.fw.inject('open', 'unavailable');
    const res = await post().set('content-type', 'application/json').send(body);
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'FIREWALL_UNAVAILABLE');
    assert.ok(!/backend said|secret|injected/.test(res.text), res.text);
    assert.deepEqual(await w.fw.list(), []);
  });

  /** Sends raw bytes over a socket to the real server and returns what came back. */
  function raw(bytes: string): Promise<string> {
    const { hostname, port } = new URL(w.broker.url);
    return new Promise((resolve, reject) => {
      const s = connect(Number(port), hostname, () => s.write(bytes));
      let out = '';
      s.on('data', (d) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
  }
  const jsonOf = (response: string) => JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4));

  test('a 20 KiB token through the real server → 431 HEADER_TOO_LARGE naming authorization', async () => {
    const res = await fetch(`${w.broker.url}/api/v1/me`, { headers: { authorization: `Bearer ${'a'.repeat(20 * 1024)}` } });
    assert.equal(res.status, 431);
    assert.deepEqual(await res.json(), { error: { code: 'HEADER_TOO_LARGE', message: 'the Authorization header is longer than 16384 bytes; no ID token is that long', field: 'authorization' } });
  });

  test('headers past the server limit → 431 with a JSON body and a code, not Node\'s bare status line', async () => {
    const out = await raw(`GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(40 * 1024)}\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 431 /);
    assert.equal(jsonOf(out).error.code, 'HEADER_TOO_LARGE');
  });

  test('conflicting Content-Length headers → 400 INVALID_REQUEST with a JSON body', async () => {
    const out = await raw('POST /api/v1/grants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}');
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.equal(jsonOf(out).error.code, 'INVALID_REQUEST');
  });

  test('a request line that is not HTTP → 400 INVALID_REQUEST with a JSON body', async () => {
    const out = await raw('GET /\x01 HTTP/9\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.equal(jsonOf(out).error.code, 'INVALID_REQUEST');
  });

  test('duplicate Authorization headers: the first counts, a broken second one cannot smuggle anything', async () => {
    const out = await raw(`GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${w.token}\r\nAuthorization: Bearer forged\r\nConnection: close\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 200 /);
    assert.equal(jsonOf(out).sub !== undefined, true);
  });
});
