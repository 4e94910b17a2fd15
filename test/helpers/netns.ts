// A two-namespace lab for nft tests: a gateway with TCP and UDP listeners on 3389 (answering on two
// addresses per family, as two machines behind one gateway would) and a client on a veth pair, plus
// a probe that runs inside the client namespace.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';

/** Every namespace made here starts with this and carries the creating pid, so leftovers can be told apart. */
export const NETNS_PREFIX = 'pcnft-';

export const LAB_ADDR = { gw4: '10.77.0.1', client4: '10.77.0.2', gw6: 'fd00:77::1', client6: 'fd00:77::2', other4: '10.77.0.11', other6: 'fd00:77::11', stranger4: '10.77.0.22', stranger6: 'fd00:77::22' } as const;

/** Why namespace tests cannot run here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'nft tests need Linux';
  if (process.getuid?.() !== 0) return 'nft tests need root (network namespaces and nftables)';
  if (spawnSync('nft', ['--version']).status !== 0) return 'nft (nftables) is not installed';
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return '`ip netns` (iproute2) is not available';
  return undefined;
}

function run(args: string[], input?: string): string {
  const r = spawnSync(args[0]!, args.slice(1), { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`);
  return r.stdout;
}

/** Runs nft inside a namespace (test-side inspection, independent of the adapter under test). */
export function nftIn(ns: string, args: string[], input?: string): string {
  return run(['ip', 'netns', 'exec', ns, 'nft', ...args], input);
}

/** Removes namespaces of earlier runs whose creating process is gone; live runs' namespaces stay. */
export function removeLeftoverNamespaces(): void {
  const names = run(['ip', 'netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(NETNS_PREFIX));
  for (const n of names) {
    const pid = Number(/^pcnft-(\d+)-/.exec(n)?.[1]);
    if (Number.isInteger(pid) && alive(pid)) continue;
    spawnSync('ip', ['netns', 'del', n]);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const LISTENER = `
const net = require('node:net');
const dgram = require('node:dgram');
const port = Number(process.argv[1]);
const s = net.createServer((c) => { c.end('portcullis-lab\\n'); c.on('error', () => {}); });
const u = dgram.createSocket({ type: 'udp6', ipv6Only: false });
u.on('message', (m, r) => u.send(m, r.port, r.address));
s.listen({ port, host: '::', ipv6Only: false }, () => u.bind(port, '::', () => console.log('ready')));
`;

// A long-lived prober in the client namespace: one node start, then one JSON line per connect attempt.
const PROBER = `
const net = require('node:net');
const rl = require('node:readline').createInterface({ input: process.stdin });
const dgram = require('node:dgram');
rl.on('line', (line) => {
  const { id, host, port, timeoutMs, proto, from } = JSON.parse(line);
  if (proto === 'udp') {
    // No connection in UDP: admitted means the echo came back in time.
    const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    if (from) u.bind({ address: from });
    let done = false;
    const finish = (ok) => { if (done) return; done = true; clearTimeout(t); u.close(); console.log(JSON.stringify({ id, ok })); };
    const t = setTimeout(() => finish(false), timeoutMs);
    u.on('message', () => finish(true));
    u.on('error', () => finish(false));
    u.send('probe', port, host);
    return;
  }
  const s = net.connect({ host, port, ...(from ? { localAddress: from } : {}) });
  let done = false;
  const finish = (ok) => { if (done) return; done = true; s.destroy(); console.log(JSON.stringify({ id, ok })); };
  s.setTimeout(timeoutMs, () => finish(false));
  s.on('connect', () => finish(true));
  s.on('error', () => finish(false));
});
console.log(JSON.stringify({ ready: true }));
`;

const ECHO = `
const net = require('node:net');
const s = net.createServer((c) => { c.on('data', (d) => c.write(d)); c.on('error', () => {}); });
s.listen({ port: Number(process.argv[1]), host: '::', ipv6Only: false }, () => console.log('ready'));
`;

// One long-lived TCP connection from the client namespace: each stdin line is sent, each echo reported.
const SESSION = `
const net = require('node:net');
const s = net.connect({ host: process.argv[1], port: Number(process.argv[2]) });
s.setNoDelay(true);
s.on('connect', () => console.log(JSON.stringify({ connected: true })));
s.on('data', (d) => console.log(JSON.stringify({ echo: d.toString() })));
s.on('error', (e) => console.log(JSON.stringify({ error: e.code })));
s.on('close', () => { console.log(JSON.stringify({ closed: true })); process.exit(0); });
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => s.write(l));
`;

/** A TCP connection held open from the client namespace (to an echo server the lab started). */
export interface Session {
  /** Sends `text`; true when its echo comes back within `timeoutMs`. */
  send(text: string, timeoutMs?: number): Promise<boolean>;
  close(): void;
}

export interface Lab {
  /** Starts a TCP echo server on `port` in the gateway namespace (both families, every address). */
  echo(port: number): Promise<void>;
  /** Opens one TCP connection from the client namespace; resolves once it is connected, rejects when it cannot connect. */
  session(host: string, port: number): Promise<Session>;
  gw: string;
  client: string;
  /** True when a TCP connect (or a UDP echo) from the client namespace to host:port completes within timeoutMs. */
  connect(host: string, port?: number, timeoutMs?: number, proto?: 'tcp' | 'udp'): Promise<boolean>;
  /** The same, from another source address of the client namespace (`LAB_ADDR.stranger4`: a source no grant names). */
  probe(host: string, opts: { port?: number; timeoutMs?: number; proto?: 'tcp' | 'udp'; from?: string }): Promise<boolean>;
  /** Adds source addresses to the client namespace in one `ip -batch` (any prefix; the gateway routes them back over the veth). */
  addClientAddresses(addrs: string[]): void;
  destroy(): Promise<void>;
}

/** An id for `createLab({ id })`, known before the lab exists; its gateway namespace is `${id}-gw`. */
export function labId(): string {
  return `${NETNS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
}

export async function createLab(ports: number[] = [3389], opts: { id?: string } = {}): Promise<Lab> {
  removeLeftoverNamespaces();
  const id = opts.id ?? labId();
  const gw = `${id}-gw`;
  const client = `${id}-cl`;
  const children: ChildProcessWithoutNullStreams[] = [];
  const destroy = async () => {
    for (const c of children) c.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', gw]);
    spawnSync('ip', ['netns', 'del', client]);
  };
  try {
    run(['ip', 'netns', 'add', gw]);
    run(['ip', 'netns', 'add', client]);
    // Both ends are created inside the namespaces, so nothing appears in the host's namespace.
    run(['ip', '-n', gw, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1', 'netns', client]);
    for (const [ns, dev, a4, a6] of [
      [gw, 'v0', LAB_ADDR.gw4, LAB_ADDR.gw6],
      [client, 'v1', LAB_ADDR.client4, LAB_ADDR.client6],
    ] as const) {
      run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      run(['ip', '-n', ns, 'addr', 'add', `${a4}/24`, 'dev', dev]);
      run(['ip', '-n', ns, '-6', 'addr', 'add', `${a6}/64`, 'dev', dev, 'nodad']);
      run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
    // A second client address per family: a source no grant names.
    run(['ip', '-n', client, 'addr', 'add', `${LAB_ADDR.stranger4}/24`, 'dev', 'v1']);
    // Deprecated (preferred_lft 0), so the kernel never picks it as the default IPv6 source; a bind still can.
    run(['ip', '-n', client, '-6', 'addr', 'add', `${LAB_ADDR.stranger6}/64`, 'dev', 'v1', 'nodad', 'preferred_lft', '0']);
    // A second address per family on the gateway: another machine behind the same gateway.
    run(['ip', '-n', gw, 'addr', 'add', `${LAB_ADDR.other4}/24`, 'dev', 'v0']);
    run(['ip', '-n', gw, '-6', 'addr', 'add', `${LAB_ADDR.other6}/64`, 'dev', 'v0', 'nodad', 'preferred_lft', '0']);
    for (const port of ports) {
      const l = spawn('ip', ['netns', 'exec', gw, process.execPath, '-e', LISTENER, String(port)]);
      children.push(l);
      await firstLine(l, 'ready');
    }
    const prober = spawn('ip', ['netns', 'exec', client, process.execPath, '-e', PROBER]);
    children.push(prober);
    const pending = new Map<number, (ok: boolean) => void>();
    const lines = createInterface({ input: prober.stdout });
    await new Promise<void>((resolve, reject) => {
      prober.once('exit', (code) => reject(new Error(`prober exited (${code})`)));
      lines.on('line', (line) => {
        const msg = JSON.parse(line) as { ready?: boolean; id?: number; ok?: boolean };
        if (msg.ready) resolve();
        else if (msg.id !== undefined) pending.get(msg.id)?.(Boolean(msg.ok));
      });
    });
    let seq = 0;
    const lab: Lab = {
      gw,
      client,
      destroy,
      async echo(port) {
        const l = spawn('ip', ['netns', 'exec', gw, process.execPath, '-e', ECHO, String(port)]);
        children.push(l);
        await firstLine(l, 'ready');
      },
      async session(host, port) {
        const c = spawn('ip', ['netns', 'exec', client, process.execPath, '-e', SESSION, host, String(port)]);
        children.push(c);
        const waiting: ((m: { echo?: string; connected?: boolean; error?: string; closed?: boolean }) => void)[] = [];
        createInterface({ input: c.stdout }).on('line', (line) => {
          const m = JSON.parse(line) as { echo?: string };
          for (const w of [...waiting]) w(m);
        });
        await new Promise<void>((resolve, reject) => {
          waiting.push((m) => (m.connected ? resolve() : m.error || m.closed ? reject(new Error(`session to ${host}:${port}: ${m.error ?? 'closed'}`)) : undefined));
        });
        waiting.length = 0;
        return {
          send(text, timeoutMs = 1500) {
            return new Promise<boolean>((resolve) => {
              let got = '';
              const done = (ok: boolean) => {
                clearTimeout(t);
                waiting.splice(waiting.indexOf(on), 1);
                resolve(ok);
              };
              const on = (m: { echo?: string }) => {
                if (m.echo !== undefined) got += m.echo;
                if (got.includes(text)) done(true);
              };
              const t = setTimeout(() => done(false), timeoutMs);
              waiting.push(on);
              c.stdin.write(`${text}\n`);
            });
          },
          close: () => c.kill('SIGKILL'),
        };
      },
      addClientAddresses(addrs) {
        run(['ip', '-n', client, '-batch', '-'], addrs.map((a) => `addr add ${a}/32 dev v1`).join('\n') + '\n');
        // Routes back for addresses outside the lab's /24, so the gateway's reverse-path check never drops them first.
        const outside = [...new Set(addrs.filter((a) => !a.startsWith('10.77.0.')).map((a) => a.split('.').slice(0, 2).join('.')))];
        for (const p of outside) spawnSync('ip', ['-n', gw, 'route', 'add', `${p}.0.0/16`, 'dev', 'v0']);
      },
      connect(host, port = 3389, timeoutMs = 700, proto = 'tcp') {
        return lab.probe(host, { port, timeoutMs, proto });
      },
      probe(host, { port = 3389, timeoutMs = 700, proto = 'tcp', from }) {
        const n = seq++;
        return new Promise<boolean>((resolve) => {
          pending.set(n, (ok) => {
            pending.delete(n);
            resolve(ok);
          });
          prober.stdin.write(JSON.stringify({ id: n, host, port, timeoutMs, proto, from }) + '\n');
        });
      },
    };
    return lab;
  } catch (e) {
    await destroy();
    throw e;
  }
}

function firstLine(child: ChildProcessWithoutNullStreams, want: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('exit', (code) => reject(new Error(`lab process exited (${code}): ${err.trim()}`)));
    createInterface({ input: child.stdout }).once('line', (l) => (l.trim() === want ? resolve() : reject(new Error(`unexpected: ${l}`))));
  });
}

/**
 * Asserts that access ends at `expiresAt`, allowing for the time nft takes to start and commit (the
 * kernel's clock starts at commit), which on a loaded machine can be a second or more.
 */
export async function closesAtExpiry(lab: Lab, host: string, expiresAt: number, slackMs = 2000): Promise<void> {
  await delay(Math.max(0, expiresAt - Date.now() + 100));
  while (await lab.connect(host, 3389)) {
    assert.ok(Date.now() < expiresAt + slackMs, `still open ${Date.now() - expiresAt} ms after expiry`);
    await delay(100);
  }
}
