// The connect prober of bench/connect.bench.ts: one long-lived process inside the client namespace
// (`ip netns exec CLIENT node prober.mjs HOST PORT`). While a measurement is armed it starts a TCP
// connect to HOST:PORT every 2 ms (each given up after 10 ms) and reports, one JSON line each:
//   {"id":N,"armed":true}   after a streak of failed attempts: the port is closed, the measurement may start
//   {"id":N,"sent":T}       (knock only) the moment the SPA datagram was handed to the kernel
//   {"id":N,"open":T}       the first successful connect (its `connect` event)
//   {"id":N,"close":T}      the start of the first attempt of the closing streak (none succeeded after it)
// T is CLOCK_MONOTONIC in ms (process.hrtime), one clock for every process on the machine, so the
// parent compares it with its own process.hrtime readings. Outcomes are judged in the order the
// attempts started, so an attempt that succeeds late never hides an earlier failure or success.
// stdin, one JSON line each: {"cmd":"arm","id":N,"knock"?:{"payload":"…","port":62201}}
import net from 'node:net';
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';

const [host, portText] = process.argv.slice(2);
const port = Number(portText);
const EVERY_MS = 2;
const TIMEOUT_MS = 10;
/** Consecutive failures (in start order) that mean "closed": 25 × 2 ms = 50 ms without a connect. */
const STREAK = 25;

// Bound before any measurement, so sending a knock is one sendto.
const udp = dgram.createSocket('udp4');
udp.bind();
const now = () => Number(process.hrtime.bigint()) / 1e6;
const say = (m) => process.stdout.write(JSON.stringify(m) + '\n');

let job; // { id, phase: 'arming' | 'open' | 'close', knock, streak, streakStart }
let timer;
let nextSeq = 0;
let doneSeq = 0;
const outcomes = new Map(); // seq -> { ok, at, started }

function attempt() {
  if (!job) {
    clearInterval(timer);
    timer = undefined;
    return;
  }
  const seq = nextSeq++;
  const started = now();
  const s = net.connect({ host, port });
  let settled = false;
  const finish = (ok) => {
    if (settled) return;
    settled = true;
    const at = now();
    s.destroy();
    outcomes.set(seq, { ok, at, started });
    judge();
  };
  s.setTimeout(TIMEOUT_MS, () => finish(false));
  s.on('connect', () => finish(true));
  s.on('error', () => finish(false));
}

function judge() {
  while (outcomes.has(doneSeq)) {
    const o = outcomes.get(doneSeq);
    outcomes.delete(doneSeq);
    doneSeq++;
    if (job) step(o);
  }
}

function step(o) {
  if (o.started < job.since) return; // started before this job: says nothing about it
  if (job.phase === 'arming') {
    job.streak = o.ok ? 0 : job.streak + 1;
    if (job.streak < STREAK) return;
    say({ id: job.id, armed: true });
    job.phase = 'open';
    if (job.knock) {
      const sent = now();
      udp.send(job.knock.payload, job.knock.port, host);
      say({ id: job.id, sent });
    }
  } else if (job.phase === 'open') {
    if (!o.ok) return;
    say({ id: job.id, open: o.at });
    job.phase = 'close';
    job.streak = 0;
  } else if (o.ok) {
    job.streak = 0;
  } else {
    if (job.streak === 0) job.streakStart = o.started;
    if (++job.streak >= STREAK) {
      say({ id: job.id, close: job.streakStart });
      job = undefined;
    }
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line);
  if (m.cmd !== 'arm') return;
  job = { id: m.id, phase: 'arming', knock: m.knock, streak: 0, since: now() };
  timer ??= setInterval(attempt, EVERY_MS);
});
process.stdin.on('end', () => process.exit(0));
udp.on('listening', () => say({ ready: true }));
