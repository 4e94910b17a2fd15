// The property campaign over every input surface: API bodies, query strings and path parameters,
// headers, config files, CLI arguments and policy contexts. Never a 5xx, never a rule wider than the
// approved source or on another port (checked against the memory firewall twin), and every refusal
// carries a stable code whose HTTP status is the one the error table gives it. The case count is printed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Command } from 'commander';
import fc from 'fast-check';
import request from 'supertest';
import { EXIT } from '../../src/errors.ts';
import { registerClientCommands } from '../../src/cli/client/index.ts';
import { configSchema } from '../../src/config/schema.ts';
import { httpStatus, type ErrorCode } from '../../src/errors.ts';
import { parseAddress, parseCidr } from '../../src/net/cidr.ts';
import { loadPolicyEngine } from '../../src/policy/cedar.ts';
import { engineerQuery, EXAMPLE_DIR } from '../policy/helpers/policy-dir.ts';
import { startApiWorld, type ApiWorld } from '../http/helpers/world.ts';

/** Cases per surface; the sum is the campaign's size (≥ 10,000 per CI run). */
const RUNS = { bodies: 2500, paths: 1500, headers: 1500, configs: 2500, cli: 1000, policy: 2000 };
const counted: Record<string, number> = {};
const count = (surface: string) => (counted[surface] = (counted[surface] ?? 0) + 1);

after(() => {
  const total = Object.values(counted).reduce((a, b) => a + b, 0);
  console.log(`# property campaign: ${total} generated cases (${Object.entries(counted).map(([k, v]) => `${k} ${v}`).join(', ')}); 0 with a 5xx`);
  assert.ok(total >= 10_000, `only ${total} cases ran`);
});

describe('HTTP surfaces', () => {
  let w: ApiWorld;
  let server: Server;
  const limits = { signInPerAddress: 1e9, refusedPerAddress: 1e9, grantRequestsPerUser: 1e9, grantRequestsPerAddress: 1e9, inFlightSignInsPerAddress: 1e9, inFlightSignIns: 1e9 };

  before(async () => {
    w = await startApiWorld(() => ({
      server: { listen: '127.0.0.1:0', trustProxy: ['127.0.0.1/32'], rateLimits: limits },
      audit: { readerGroups: ['engineers'] },
      grants: { minDuration: '1s', maxDuration: '8h', maxActivePerUser: 1000 },
    }));
    // One in-process server for every supertest call (supertest would otherwise listen anew per request).
    server = createServer(w.broker.app.http);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await w?.stop();
  });

  const http = () => request(server);

  /** A response is a success, a redirect, or a refusal with a code whose status the error table gives. */
  function assertAnswer(res: { status: number; body: any; text: string }, what: string): void {
    assert.ok(res.status < 500, `${what} → ${res.status} ${res.text.slice(0, 300)}`);
    if (res.status >= 400) {
      const code = res.body?.error?.code as ErrorCode | undefined;
      assert.ok(typeof code === 'string', `${what} → ${res.status} without a code: ${res.text.slice(0, 200)}`);
      assert.equal(httpStatus(code), res.status, `${what} → ${code} with status ${res.status}`);
    }
  }

  /** Every rule in the twin belongs to an active grant, admits exactly its approved source on its port, and no wider than a host. */
  async function assertRulesFaithful(expect?: { grantId: string; source?: string }): Promise<void> {
    const rules = await w.fw.list();
    const live = await w.broker.app.store.grantsInStates(['active', 'opening', 'closing']);
    for (const rule of rules) {
      const g = live.find((x) => rule.grantIds.includes(x.id));
      assert.ok(g, `rule ${rule.ref} has no live grant`);
      assert.equal(rule.source, g.source, 'the rule admits the approved source');
      assert.equal(rule.port, g.port);
      assert.ok([3389].includes(rule.port), `rule on port ${rule.port}`);
      const c = parseCidr(rule.source.includes('/') ? rule.source : `${rule.source}/${rule.source.includes(':') ? 128 : 32}`);
      assert.ok(c && c.prefix === (c.family === 4 ? 32 : 128), `rule source ${rule.source} is wider than one host`);
    }
    if (expect) {
      const rule = rules.find((r) => r.grantIds.includes(expect.grantId));
      assert.ok(rule, 'an active grant has its rule');
      if (expect.source !== undefined) assert.equal(rule.source.replace(/\/(32|128)$/, ''), expect.source.replace(/\/(32|128)$/, ''));
    }
    // Close what opened, so every case starts from the same few rules.
    const active = live.filter((g) => g.state === 'active');
    if (active.length) await w.broker.app.broker.close(active, 'revoked', 'test:campaign');
  }

  const lone = fc.string({ maxLength: 8 }).chain((s) => fc.constantFrom(`${s}\ud800`, `\udc00${s}`, `${s}\udbff\udbff`));
  const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 20 }), lone);
  const ipv4 = fc.ipV4();
  const ipv6 = fc.ipV6();
  const sourceIp = fc.oneof(
    ipv4,
    ipv6,
    fc.tuple(ipv4, fc.integer({ min: -1, max: 40 })).map(([a, p]) => `${a}/${p}`),
    fc.tuple(ipv6, fc.integer({ min: -1, max: 130 })).map(([a, p]) => `${a}/${p}`),
    fc.constantFrom('0.0.0.0/0', '::/0', '0.0.0.0', '::', '255.255.255.255', '224.0.0.1', '::ffff:198.51.100.7', '10.0.0.1%eth0', 'fe80::1%eth0', ' 198.51.100.7', '010.0.0.1', '198.51.100.7/32', '2001:db8::1/128', '1e2.0.0.1', '0x7f.0.0.1'),
    text,
    fc.anything(),
  );
  const duration = fc.oneof(fc.constantFrom('10m', '1h', 'PT5M', '0s', '-5m', '9h', '1h30m', '8h', '2h', 'P1D', 'PT0.5S', '1e3m'), text, fc.integer(), fc.double(), fc.anything());
  const reason = fc.oneof(fc.constantFrom('T-1', 'INC-42 restore'), text, fc.anything());
  const target = fc.oneof(fc.constant('lab-pc'), fc.constant('nope'), text, fc.anything());
  const port = fc.oneof(fc.constant(3389), fc.constant(445), fc.integer(), fc.double(), fc.anything());
  const grantBody = fc.record({ target, duration, reason, port, sourceIp }, { requiredKeys: [] });
  const body = fc.oneof(
    { weight: 6, arbitrary: grantBody },
    { weight: 1, arbitrary: fc.tuple(grantBody, fc.dictionary(fc.string({ maxLength: 12 }), fc.anything(), { maxKeys: 3 })).map(([a, b]) => ({ ...b, ...a })) },
    { weight: 1, arbitrary: fc.anything() },
  );

  test(`API bodies: POST /api/v1/grants with ${RUNS.bodies} generated bodies`, async () => {
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        count('bodies');
        const json = JSON.stringify(b);
        const req = http().post('/api/v1/grants').set('authorization', `Bearer ${w.token}`);
        const res = json === undefined ? await req : await req.set('content-type', 'application/json').send(json);
        assertAnswer(res, `POST /grants ${json?.slice(0, 200)}`);
        if (res.status === 201) {
          const given = (b as { sourceIp?: unknown }).sourceIp;
          await assertRulesFaithful({ grantId: res.body.grant.id, source: typeof given === 'string' ? undefined : '127.0.0.1' });
        } else await assertRulesFaithful();
      }),
      { numRuns: RUNS.bodies },
    );
  });

  // Path segments: printable text, percent-encoded or raw, with broken percent sequences mixed in.
  const hex = fc.constantFrom(...'0123456789abcdefABCDEFxg%'.split(''));
  const broken = fc.tuple(hex, hex).map(([a, b]) => `%${a}${b}`);
  const segment = fc.oneof(
    fc.string({ maxLength: 30 }).map(encodeURIComponent),
    fc.string({ unit: 'binary', maxLength: 10 }).map((s) => s.replace(/[\ud800-\udfff]/g, '')).map(encodeURIComponent),
    fc.array(fc.oneof(broken, fc.constantFrom('a', 'g_', '.', '..', '-', '~', '%2F', '%00', '%c0%af')), { maxLength: 6 }).map((p) => p.join('')),
    fc.constantFrom('g_doesnotexist000000', '', '%ff', '%E0%A4%A', '__proto__', 'constructor'),
  );
  const queryValue = fc.oneof(fc.string({ maxLength: 20 }).map(encodeURIComponent), segment, fc.constantFrom('mine', 'all', 'approvable', '-1', '1e9', 'NaN', '0x10', '99999999999999999999'));
  const query = fc.array(fc.tuple(fc.constantFrom('view', 'limit', 'after', 'grant', 'returnTo', 'r', 'state', 'code', 'x', 'view[]', 'limit[a]', '__proto__'), queryValue), { maxLength: 4 }).map((kv) => (kv.length ? `?${kv.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));
  const route = fc.oneof(
    fc.tuple(segment, query).map(([s, q]) => ({ method: 'GET', path: `/api/v1/grants/${s}${q}` })),
    fc.tuple(segment, fc.constantFrom('approve', 'deny', 'revoke', 'extend', 'nope'), body).map(([s, a, b]) => ({ method: 'POST', path: `/api/v1/grants/${s}/${a}`, body: b })),
    fc.tuple(fc.constantFrom('/api/v1/grants', '/api/v1/audit', '/api/v1/audit/verify', '/api/v1/targets', '/api/v1/me'), query).map(([p, q]) => ({ method: 'GET', path: `${p}${q}` })),
    fc.tuple(fc.constantFrom('/auth/login', '/auth/callback', '/auth/resume', '/auth/step-up', '/auth/session', '/auth/cli-config'), query).map(([p, q]) => ({ method: 'GET', path: `${p}${q}` })),
    fc.tuple(segment, segment, query).map(([a, b, q]) => ({ method: 'GET', path: `/api/v1/${a}/${b}${q}` })),
  );

  test(`query strings and path parameters: ${RUNS.paths} generated routes`, async () => {
    await fc.assert(
      fc.asyncProperty(route, fc.boolean(), async (r, authed) => {
        count('paths');
        let req = r.method === 'GET' ? http().get(r.path) : http().post(r.path);
        req = req.set('accept', 'application/json');
        if (authed) req = req.set('authorization', `Bearer ${w.token}`);
        const json = 'body' in r ? JSON.stringify(r.body) : undefined;
        const res = json === undefined ? await req : await req.set('content-type', 'application/json').send(json);
        assertAnswer(res, `${r.method} ${r.path}`);
        await assertRulesFaithful();
      }),
      { numRuns: RUNS.paths },
    );
  });

  const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });
  const xffEntry = fc.oneof(ipv4, ipv6, fc.constantFrom('unknown', '10.0.0.1%eth0', '198.51.100.0/24', '0.0.0.0', '::', '[2001:db8::1]', '198.51.100.7:5555', '::ffff:127.0.0.1', '255.255.255.255', '224.0.0.5', 'ff02::1'), printable);
  const xff = fc.oneof(fc.array(xffEntry, { minLength: 1, maxLength: 4 }).map((a) => a.join(', ')), printable);
  const encoding = fc.oneof(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'GZIP', 'gzip, gzip', 'x-gzip', 'compress', 'zstd', ''), printable);
  const contentType = fc.oneof(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'application/JSON', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/merge-patch+json', 'application/json;charset="utf-8"'), printable);
  const authorization = fc.oneof(fc.constant('TOKEN'), fc.constant('Bearer TOKEN'), printable, printable.map((s) => `Bearer ${s}`), fc.constant('Bearer TOKEN, Bearer TOKEN'));
  const valid = JSON.stringify({ target: 'lab-pc', duration: '10m', reason: 'T-1' });
  const payload = fc.oneof(fc.constant(Buffer.from(valid)), fc.constant(gzipSync(valid)), fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)));

  test(`headers: X-Forwarded-For, Content-Encoding, Content-Type, Authorization in ${RUNS.headers} combinations`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.option(xff), fc.option(encoding), fc.option(contentType), authorization, payload, async (f, enc, ct, auth, bytes) => {
        count('headers');
        const headers: Record<string, string> = { authorization: auth.replaceAll('TOKEN', w.token) };
        if (f !== null) headers['x-forwarded-for'] = f;
        if (enc !== null) headers['content-encoding'] = enc;
        if (ct !== null) headers['content-type'] = ct;
        // Over the socket with fetch: superagent would re-serialise a Buffer sent as JSON.
        const addr = server.address() as { port: number };
        let res: Response;
        try {
          res = await fetch(`http://127.0.0.1:${addr.port}/api/v1/grants`, { method: 'POST', headers, body: bytes });
        } catch (e) {
          // The client itself refused to send the header (fetch validates values): not a case.
          if ((e as Error).name === 'TypeError' && /header|ByteString|Invalid/i.test(String((e as Error).message) + String((e as { cause?: Error }).cause?.message))) return;
          throw e;
        }
        const t = await res.text();
        let parsed: unknown;
        try {
          parsed = JSON.parse(t);
        } catch {
          parsed = undefined;
        }
        assertAnswer({ status: res.status, body: parsed, text: t }, `headers ${JSON.stringify({ ...headers, authorization: undefined })}`);
        if (res.status === 201) {
          const g = (parsed as { grant: { id: string; source: string } }).grant;
          // The source is one of the addresses the request carried (canonically), never one it did not.
          const canon = (s: string) => parseAddress(s.trim().replace(/\/(32|128)$/, ''))?.text;
          const candidates = [...(f ?? '').split(','), '127.0.0.1'].map(canon);
          assert.ok(candidates.includes(canon(g.source)), `source ${g.source} came from nowhere in ${f}`);
          await assertRulesFaithful({ grantId: g.id });
        } else await assertRulesFaithful();
      }),
      { numRuns: RUNS.headers },
    );
  });
});

describe('config files through configSchema', () => {
  const key = fc.constantFrom('listen', 'publicUrl', 'trustProxy', 'refusalAuditPerMinute', 'rateLimits', 'url', 'issuer', 'clients', 'mfa', 'amr', 'acr', 'maxAge', 'dir', 'timeZone', 'maxSourcePrefix', 'ipv4', 'ipv6', 'minDuration', 'maxDuration', 'reasonPattern', 'targets', 'firewall', 'kind', 'ports', 'embeddedIdp', 'window', 'signInPerAddress', 'dangerouslyAllowHttpIssuer', 'bogus');
  const leaf = fc.oneof(fc.string({ maxLength: 20 }), fc.integer({ min: -5, max: 70_000 }), fc.boolean(), fc.constant(null), fc.constantFrom('0.0.0.0/0', '127.0.0.1:0', '1m', '0s', 'http://idp.example', 'https://idp.example', 'sqlite::memory:', 'Europe/Berlin', 'Mars/Olympus', '(', 'memory', 'simulated', 'nftables'));
  const value = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(key, tie('node'), { maxKeys: 4 })),
  })).node;
  const section = fc.constantFrom('server', 'store', 'oidc', 'policy', 'grants', 'targets', 'reaper', 'audit', 'slack', 'dev', 'nonsense');
  const config = fc.dictionary(section, value, { maxKeys: 5 });

  test(`${RUNS.configs} generated config files: refused by key path or accepted with every guarantee`, () => {
    fc.assert(
      fc.property(config, (raw) => {
        count('configs');
        const r = configSchema.safeParse(raw);
        if (!r.success) {
          for (const issue of r.error.issues) assert.ok(Array.isArray(issue.path) && typeof issue.message === 'string' && issue.message.length > 0);
          return;
        }
        const c = r.data;
        assert.ok(c.oidc.mfa.amr.length + c.oidc.mfa.acr.length > 0, 'MFA cannot be switched off');
        for (const v of Object.values(c.server.rateLimits)) if (typeof v === 'number') assert.ok(v >= 1);
        assert.ok(c.policy.maxSourcePrefix.ipv4 >= 8 && c.policy.maxSourcePrefix.ipv6 >= 16);
        if (c.dev.embeddedIdp) assert.match(c.server.listen, /^(127\.|\[::1\]|localhost)/);
        if (c.oidc.issuer?.startsWith('http:')) assert.ok(c.oidc.dangerouslyAllowHttpIssuer);
      }),
      { numRuns: RUNS.configs },
    );
  });
});

describe('CLI arguments', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-prop-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const documented = new Set<number>(Object.values(EXIT));
  const word = fc.oneof(fc.constantFrom('acme-dc01', 'g_abc', '30m', '1h', '-1', '0', '65536', '3389', 'T-1', '', ' ', '--', '-', '1e3', 'PT2H', '198.51.100.7', '0.0.0.0/0', '/nonexistent/dir/x.rdp'), fc.string({ maxLength: 12 }));
  const flag = fc.constantFrom('--for', '-f', '--reason', '-r', '--port', '--ip', '--wait', '-w', '--timeout', '--rdp-file', '--poll-interval', '--json', '--profile', '-p', '--all', '--after', '--limit', '--output', '--comment', '--bogus', '-x', '--help');
  const argv = fc.tuple(
    fc.constantFrom(['open'], ['ls'], ['close'], ['extend'], ['approve'], ['deny'], ['whoami'], ['targets'], ['audit', 'export'], ['logout'], ['nonsense']),
    fc.array(fc.oneof(flag, word), { maxLength: 7 }),
  ).map(([cmd, rest]) => [...cmd, ...rest]);

  test(`${RUNS.cli} generated command lines: each ends with a documented exit code, never an unexpected error`, async () => {
    const realExit = process.exit;
    const realOut = process.stdout.write.bind(process.stdout);
    const realErr = process.stderr.write.bind(process.stderr);
    const xdg = process.env.XDG_CONFIG_HOME;
    const profile = process.env.PORTCULLIS_PROFILE;
    const cwd = process.cwd();
    process.env.XDG_CONFIG_HOME = dir; // no profile: nothing reaches a network
    delete process.env.PORTCULLIS_PROFILE;
    process.chdir(dir); // whatever a command line names as an output file lands here
    class Exit extends Error {
      constructor(readonly code: number) {
        super(`exit ${code}`);
      }
    }
    let stderr = '';
    try {
      await fc.assert(
        fc.asyncProperty(argv, async (args) => {
          count('cli');
          stderr = '';
          process.exit = ((code?: number) => {
            throw new Exit(code ?? 0);
          }) as typeof process.exit;
          // The test runner's own protocol (Buffers) passes; what the commands print (strings) does not.
          process.stdout.write = ((chunk: unknown, ...rest: never[]) => (typeof chunk === 'string' ? true : realOut(chunk as Buffer, ...rest))) as typeof process.stdout.write;
          process.stderr.write = ((s: string) => ((stderr += s), true)) as typeof process.stderr.write;
          const program = new Command('portcullis').exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2)).configureOutput({ writeOut: () => {}, writeErr: (s) => (stderr += s) });
          registerClientCommands(program);
          let code: number | undefined;
          try {
            await program.parseAsync(['node', 'portcullis', ...args]);
          } catch (e) {
            if (!(e instanceof Exit)) throw new Error(`${args.join(' ')}: threw ${(e as Error).stack}`);
            code = e.code;
          } finally {
            process.exit = realExit;
            process.stdout.write = realOut;
            process.stderr.write = realErr;
          }
          if (code === undefined) return; // a command with nothing to do
          assert.ok(documented.has(code), `${JSON.stringify(args)} exited ${code}`);
          assert.ok(!stderr.includes('unexpected error'), `${JSON.stringify(args)}: ${stderr}`);
        }),
        { numRuns: RUNS.cli },
      );
    } finally {
      process.exit = realExit;
      process.stdout.write = realOut;
      process.stderr.write = realErr;
      process.chdir(cwd);
      if (xdg === undefined) delete process.env.XDG_CONFIG_HOME;
      else process.env.XDG_CONFIG_HOME = xdg;
      if (profile !== undefined) process.env.PORTCULLIS_PROFILE = profile;
    }
  });
});

describe('policy contexts', () => {
  const engine = loadPolicyEngine({ dir: EXAMPLE_DIR });
  const anyNumber = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 2 ** 53, Number.MAX_SAFE_INTEGER, NaN, Infinity));
  const ctx = fc.record({
    mfa: fc.oneof(fc.boolean(), fc.anything()),
    authAgeSeconds: anyNumber,
    durationMinutes: anyNumber,
    port: fc.oneof(fc.constant(3389), anyNumber),
    sourceIp: fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 20 }), fc.constantFrom('0.0.0.0/0', '10.0.0.0/8', '198.51.100.7/32')),
    sourcePrefixLength: anyNumber,
    channel: fc.oneof(fc.constantFrom('web', 'cli', 'api', 'slack'), fc.string({ maxLength: 8 })),
    reason: fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'grapheme', maxLength: 10 })),
    hour: fc.oneof(fc.integer({ min: 0, max: 23 }), anyNumber),
    weekday: fc.oneof(fc.constantFrom('Monday', 'Sunday'), fc.string({ maxLength: 10 })),
  }, { requiredKeys: [] });
  const groups = fc.subarray(['engineers', 'approvers', 'msp-technicians', 'network-admins', 'sales', 'portcullis-admins']);

  test(`${RUNS.policy} generated contexts: never a throw, never an allow without MFA, on an undeclared port or for a fractional duration; an evaluation error is a deny`, () => {
    fc.assert(
      fc.property(ctx, groups, fc.constantFrom('OpenPort', 'RequestPort', 'ApprovePort') as fc.Arbitrary<'OpenPort' | 'RequestPort' | 'ApprovePort'>, (over, gs, action) => {
        count('policy');
        const q = engineerQuery(over as never, gs);
        const d = engine.decide({ ...q, action });
        assert.equal(typeof d.allowed, 'boolean');
        const c = q.context;
        if (d.allowed && action !== 'ApprovePort') {
          assert.equal(c.mfa, true, 'no allow without MFA');
          assert.equal(c.port, 3389, 'no allow on an undeclared port');
          // (The duration's bounds are the broker's guardrails, checked before any policy is asked.)
          assert.ok(Number.isInteger(c.durationMinutes), `no allow for a fractional duration ${c.durationMinutes}`);
        }
        if (d.errors.length) assert.equal(d.allowed, false, 'a context Cedar cannot evaluate is a deny');
      }),
      { numRuns: RUNS.policy },
    );
  });
});
