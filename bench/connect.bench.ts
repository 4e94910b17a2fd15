// Request → first successful TCP connect on a namespace testbed, Portcullis and fwknop side by side in one run.
//
// Each system gets its own lab of test/helpers/netns.ts (a gateway namespace with a listener on 3389, a client
// namespace on a veth pair), so their firewalls never see each other's packets. One long-lived prober per
// lab (bench/testbed/prober.mjs) runs inside the client namespace and tries a TCP connect to the gateway
// every 2 ms while a measurement is armed. The clock is CLOCK_MONOTONIC (process.hrtime), one for every
// process on the machine: the bench reads it just before it sends the HTTP request, the prober just before
// it sends the SPA datagram and at its first successful connect.
//
// - Portcullis: the compiled server (`portcullis serve`, dist/), an nftables target in the gateway
//   namespace; `POST /api/v1/grants` for the client's veth address (a network-admin may name a source).
// - fwknop: fwknopd in the gateway namespace sniffing its veth, iptables-nft with a drop on 3389; the SPA
//   packet (Rijndael + HMAC) is built by the fwknop client beforehand and sent by the prober. Two fwknopd:
//   PCAP_LOOP_SLEEP 1 ms (tuned for latency) and its default of 100 ms.
// - Close: each grant is 1 s (fwknop: FW_ACCESS_TIMEOUT 2 s) and ends by expiry; "expiry → closed" is
//   from the expiry the system recorded to the first connect of the closing streak.
// Rounds interleave the systems, so the machine's load falls on all of them alike.
// Needs root, nft and ip netns (otherwise no rows); without fwknop the fwknop rows are left out.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnBroker, ROOT, tempDir, testConfig, type BrokerProcess } from '../test/helpers/broker.ts';
import { startTestIdp, type TestIdp } from '../test/helpers/idp.ts';
import { createLab, LAB_ADDR, netnsUnavailable, type Lab } from '../test/helpers/netns.ts';
import { fwknopUnavailable, SPA_PORT, startFwknopd, type Fwknopd } from './testbed/fwknop.ts';
import { mono, startProber, within, type Prober } from './testbed/probe.ts';
import { stats, type BenchRow } from './stats.ts';

const SAMPLES = Number(process.env.BENCH_CONNECT_SAMPLES ?? 30);
const WARMUP = 2;
const PORT = 3389;
const VARIANTS = [
  { name: 'fwknop', loopSleepUs: 1000, note: 'PCAP_LOOP_SLEEP 1 ms' },
  { name: 'fwknop (default loop)', loopSleepUs: 100_000, note: 'PCAP_LOOP_SLEEP 100 ms, as shipped' },
];

interface Knocker {
  name: string;
  note: string;
  prober: Prober;
  fwknopd: Fwknopd;
  samples: Sample[];
}

interface Sample {
  open: number;
  answer?: number;
  close: number;
}

export async function run(): Promise<BenchRow[]> {
  const unavailable = netnsUnavailable();
  if (unavailable) {
    process.stderr.write(`bench connect: skipped — ${unavailable} (no rows reported)\n`);
    return [];
  }
  const stale = staleBuild();
  if (stale) throw new Error(`bench connect spawns the compiled server: ${stale}; run \`npm run build\` first`);
  const noFwknop = fwknopUnavailable();
  if (noFwknop) process.stderr.write(`bench connect: fwknop rows left out — ${noFwknop}\n`);

  const labs: Lab[] = [];
  const probers: Prober[] = [];
  const daemons: Fwknopd[] = [];
  const tmp = tempDir('portcullis-bench-connect-');
  let idp: TestIdp | undefined;
  let broker: BrokerProcess | undefined;
  try {
    const lab = async () => {
      const l = await createLab([PORT]);
      labs.push(l);
      const p = await startProber(l.client, LAB_ADDR.gw4, PORT);
      probers.push(p);
      return { lab: l, prober: p };
    };
    const pc = await lab();
    const knockers: Knocker[] = [];
    if (!noFwknop) {
      for (const v of VARIANTS) {
        const { lab: l, prober } = await lab();
        const d = await startFwknopd({ gw: l.gw, client: l.client, gwAddr: LAB_ADDR.gw4, clientAddr: LAB_ADDR.client4, port: PORT, loopSleepUs: v.loopSleepUs, accessSeconds: 2 });
        daemons.push(d);
        knockers.push({ name: v.name, note: v.note, prober, fwknopd: d, samples: [] });
      }
    }

    // network-admins: the grant names the client namespace's address, not the caller's (loopback).
    idp = await startTestIdp({ mfa: 'amr-otp', users: { alice: { email: 'alice@example.test', groups: ['engineers', 'network-admins'] } } });
    const config = testConfig(tmp.dir, {
      server: { listen: '127.0.0.1:0', rateLimits: { grantRequestsPerUser: 100_000 } },
      oidc: { issuer: idp.issuer, dangerouslyAllowHttpIssuer: true, clients: { web: { id: idp.clients.web.id, secret: idp.clients.web.secret }, cli: { id: idp.clients.cli.id } } },
      targets: [{ id: 'lab-gw', connect: `${LAB_ADDR.gw4}:${PORT}`, ports: [PORT], tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'nftables', table: 'portcullis', netns: pc.lab.gw } }],
    });
    // As production runs it: compiled JavaScript with the flags of `npm start`, logging at info.
    broker = await spawnBroker(config, tmp.dir, {}, { compiled: true });
    const token = await idp.getIdToken('alice');
    const url = broker.url;
    const body = JSON.stringify({ target: 'lab-gw', duration: '1s', reason: 'connect bench', sourceIp: LAB_ADDR.client4 });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    // The fetch keep-alive connection and the broker's first-request paths are set up before anything counts.
    await fetch(`${url}/api/v1/grants`, { headers }).then((r) => r.arrayBuffer());

    const portcullis = async (): Promise<Sample> => {
      const m = pc.prober.arm();
      await within(m.armed, 5000, 'the Portcullis lab to be closed');
      const t0 = mono();
      const answer = fetch(`${url}/api/v1/grants`, { method: 'POST', headers, body }).then(async (r) => {
        const at = mono();
        const b = (await r.json()) as { grant?: { expiresAt: string } };
        if (r.status !== 201 || !b.grant) throw new Error(`grant request answered ${r.status}: ${JSON.stringify(b)}`);
        return { at, expiresAt: Date.parse(b.grant.expiresAt) };
      });
      const [open, a] = await Promise.all([within(m.open, 10_000, 'a connect after the grant'), answer]);
      const close = await within(m.close, 15_000, 'the grant to close at expiry');
      return { open: open - t0, answer: a.at - t0, close: close - toMono(a.expiresAt) };
    };
    const knock = async (k: Knocker): Promise<Sample> => {
      const payload = k.fwknopd.packet();
      const m = k.prober.arm({ payload, port: SPA_PORT });
      await within(m.armed, 5000, `the ${k.name} lab to be closed`);
      const sent = await m.sent;
      const open = await within(m.open, 10_000, `a connect after the ${k.name} knock`);
      const exp = k.fwknopd.ruleExpiresAt();
      if (exp === undefined) throw new Error(`${k.name}: connected, but fwknopd lists no open rule`);
      const close = await within(m.close, 15_000, `${k.name} to close its rule at expiry`);
      return { open: open - sent, close: close - toMono(exp) };
    };

    const before = await serverTimes(url);
    const pcSamples: Sample[] = [];
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const s = await portcullis();
      if (i >= WARMUP) pcSamples.push(s);
      for (const k of knockers) {
        const ks = await knock(k);
        if (i >= WARMUP) k.samples.push(ks);
      }
    }
    const after = await serverTimes(url);

    const ms = (v: number) => Math.round(v * 100) / 100;
    const open = stats(pcSamples.map((s) => s.open));
    const answered = stats(pcSamples.map((s) => s.answer!));
    const closed = stats(pcSamples.map((s) => s.close));
    const n = pcSamples.length;
    const nftOpen = (after.openSum - before.openSum) / Math.max(1, after.openCount - before.openCount);
    const request = (after.requestSum - before.requestSum) / Math.max(1, after.requestCount - before.requestCount);
    const rows: BenchRow[] = [
      { bench: 'connect', metric: 'Portcullis request → first connect, median', value: ms(open.median), unit: 'ms', note: `${n} grants (+${WARMUP} warm-up); POST /api/v1/grants to the compiled server → first TCP connect from the client netns (2 ms attempts); goal ≤ 5 ms` },
      { bench: 'connect', metric: 'Portcullis request → first connect, p99', value: ms(open.p99), unit: 'ms', note: `min ${ms(open.min)}, max ${ms(open.max)}` },
      { bench: 'connect', metric: 'Portcullis request → 201 answer, median', value: ms(answered.median), unit: 'ms', note: `p99 ${ms(answered.p99)} ms; the same requests as above` },
      { bench: 'connect', metric: 'Portcullis server: request handling, mean', value: ms(request * 1000), unit: 'ms', note: `portcullis_request_seconds over the ${after.requestCount - before.requestCount} requests` },
      { bench: 'connect', metric: 'Portcullis server: nftables open, mean', value: ms(nftOpen * 1000), unit: 'ms', note: `portcullis_firewall_operation_seconds{op="open"} over ${after.openCount - before.openCount} opens (part of the request)` },
      { bench: 'connect', metric: 'Portcullis server: request outside the firewall call, mean', value: ms((request - nftOpen) * 1000), unit: 'ms', note: 'authentication, policy, store writes and audit before and after the open' },
      { bench: 'connect', metric: 'Portcullis first connect → 201 answer, median', value: ms(stats(pcSamples.map((s) => s.answer! - s.open)).median), unit: 'ms', note: 'what the request still does after the port is open (store write, audit, answer)' },
      { bench: 'connect', metric: 'Portcullis expiry → closed, median', value: ms(closed.median), unit: 'ms', note: `1 s grants; from expiresAt to the first connect of the closing streak; p99 ${ms(closed.p99)} ms` },
    ];
    for (const k of knockers) {
      const o = stats(k.samples.map((s) => s.open));
      const c = stats(k.samples.map((s) => s.close));
      rows.push(
        { bench: 'connect', metric: `${k.name} knock → first connect, median`, value: ms(o.median), unit: 'ms', note: `${k.samples.length} SPA knocks (+${WARMUP} warm-up); ${k.note}; iptables-nft; from the datagram's send` },
        { bench: 'connect', metric: `${k.name} knock → first connect, p99`, value: ms(o.p99), unit: 'ms', note: `min ${ms(o.min)}, max ${ms(o.max)}` },
        { bench: 'connect', metric: `${k.name} / Portcullis, median first connect`, value: Math.round((o.median / open.median) * 100) / 100, unit: '×', note: 'same run, same prober; goal ≥ 3×' },
        { bench: 'connect', metric: `${k.name} expiry → closed, median`, value: ms(c.median), unit: 'ms', note: `FW_ACCESS_TIMEOUT 2 s (whole seconds); from the rule's _exp_ second; p99 ${ms(c.p99)} ms` },
      );
    }
    return rows;
  } finally {
    await broker?.kill('SIGTERM');
    for (const d of daemons) await d.stop();
    for (const p of probers) await p.stop();
    await idp?.close();
    for (const l of labs) await l.destroy();
    tmp.cleanup();
  }
}

/** Epoch ms → the monotonic clock (the offset read now; both clocks tick together). */
function toMono(epochMs: number): number {
  return epochMs - (performance.timeOrigin + performance.now()) + mono();
}

async function serverTimes(url: string): Promise<{ openSum: number; openCount: number; requestSum: number; requestCount: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    openSum: read(/^portcullis_firewall_operation_seconds_sum\{[^}]*op="open"[^}]*\} (\S+)$/m),
    openCount: read(/^portcullis_firewall_operation_seconds_count\{[^}]*op="open"[^}]*\} (\S+)$/m),
    requestSum: read(/^portcullis_request_seconds_sum(?:\{[^}]*\})? (\S+)$/m),
    requestCount: read(/^portcullis_request_seconds_count(?:\{[^}]*\})? (\S+)$/m),
  };
}

/** Why dist/ cannot stand for src/ (missing, or older than a source file), or undefined. */
function staleBuild(): string | undefined {
  // scripts/build.mjs writes the stamp after every build (tsc's incremental build leaves unchanged outputs old).
  const stamp = join(ROOT, 'dist/.built');
  if (!existsSync(stamp)) return 'dist/ is missing or was not built by `npm run build`';
  const built = statSync(stamp).mtimeMs;
  const newer = (readdirSync(join(ROOT, 'src'), { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name))
    .find((f) => statSync(f).mtimeMs > built);
  return newer ? `dist/ is older than ${newer.slice(ROOT.length + 1)}` : undefined;
}
