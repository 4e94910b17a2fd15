// fwknop, the reference single-packet-authorization knocker, on a lab of test/helpers/netns.ts: fwknopd sniffs
// the gateway's veth and opens 3389 with iptables-nft for the client's address; the client's SPA packets are
// built with the fwknop client (Rijndael + HMAC keys made here) and sent by the prober. Everything lives in a
// temp dir that stop() removes; the namespaces are the caller's.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The port fwknopd's default PCAP filter listens on (`udp port 62201`). */
export const SPA_PORT = 62201;

/** Why fwknop cannot be measured here, or undefined when it can. */
export function fwknopUnavailable(): string | undefined {
  // `command -v`, not `fwknop --version`: the client writes ~/.fwknoprc on any run that does not name one.
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!has('fwknopd') || !has('fwknop')) return 'fwknop is not installed (apt-get install fwknop-server fwknop-client iptables)';
  const ipt = spawnSync('iptables', ['--version'], { encoding: 'utf8' });
  if (ipt.status !== 0 || !ipt.stdout.includes('nf_tables')) return 'iptables-nft is not installed (apt-get install iptables)';
  return undefined;
}

export interface Fwknopd {
  /** A fresh SPA packet for the client (fwknopd refuses a replayed one), built and not sent. */
  packet(): string;
  /** The expiry fwknopd wrote into its open rule (`_exp_SECONDS`), as epoch ms; undefined when no rule is open. */
  ruleExpiresAt(): number | undefined;
  stop(): Promise<void>;
}

export interface FwknopOptions {
  gw: string;
  client: string;
  gwAddr: string;
  clientAddr: string;
  port: number;
  /** PCAP_LOOP_SLEEP, µs fwknopd sleeps between pcap dispatches (its default is 100,000). */
  loopSleepUs: number;
  /** FW_ACCESS_TIMEOUT, seconds. */
  accessSeconds: number;
}

export async function startFwknopd(o: FwknopOptions): Promise<Fwknopd> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fwknop-'));
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const c = child;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => c.kill('SIGKILL'), 5000);
        c.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        c.kill('SIGTERM');
      });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const key = randomBytes(32).toString('base64');
    const hmac = randomBytes(64).toString('base64');
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text, { mode: 0o600 });
      return join(dir, name);
    };
    const conf = file('fwknopd.conf', [`PCAP_INTF v0;`, `PCAP_LOOP_SLEEP ${o.loopSleepUs};`, `FWKNOP_RUN_DIR ${dir};`, `FIREWALL_EXE /usr/sbin/iptables;`, ''].join('\n'));
    const access = file('access.conf', [`SOURCE ${o.clientAddr}`, `REQUIRE_SOURCE_ADDRESS Y`, `OPEN_PORTS tcp/${o.port}`, `KEY_BASE64 ${key}`, `HMAC_KEY_BASE64 ${hmac}`, `FW_ACCESS_TIMEOUT ${o.accessSeconds}`, ''].join('\n'));
    const rc = file('fwknoprc', ['[default]', `KEY_BASE64 ${key}`, `HMAC_KEY_BASE64 ${hmac}`, 'USE_HMAC Y', ''].join('\n'));
    // The client's default-drop on the port; fwknopd puts its jump to FWKNOP_INPUT in front of it.
    const drop = spawnSync('ip', ['netns', 'exec', o.gw, 'iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', String(o.port), '-j', 'DROP'], { encoding: 'utf8' });
    if (drop.status !== 0) throw new Error(`iptables in ${o.gw}: ${drop.stderr.trim()}`);
    const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir };
    const d = spawn('ip', ['netns', 'exec', o.gw, 'fwknopd', '-f', '-c', conf, '-a', access, '-d', join(dir, 'digest.cache'), '-p', join(dir, 'fwknopd.pid')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = d;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`fwknopd did not start in 10 s:\n${out}`)), 10_000);
      const on = (b: Buffer) => {
        out += b.toString();
        if (out.includes('main event loop')) {
          clearTimeout(t);
          resolve();
        }
      };
      d.stdout!.on('data', on);
      d.stderr!.on('data', on);
      d.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`fwknopd exited (${code}):\n${out}`));
      });
    });
    const spa = join(dir, 'spa.txt');
    return {
      packet() {
        const args = ['--rc-file', rc, '--no-save-args', '-E', join(dir, 'fwknop.run'), '--no-home-dir', '-A', `tcp/${o.port}`, '-a', o.clientAddr, '-D', o.gwAddr, '-T', '-B', spa];
        const r = spawnSync('ip', ['netns', 'exec', o.client, 'fwknop', ...args], { env, encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`fwknop client: ${(r.stderr || r.stdout).trim()}`);
        const packet = readFileSync(spa, 'utf8').trim();
        rmSync(spa);
        return packet;
      },
      ruleExpiresAt() {
        const r = spawnSync('ip', ['netns', 'exec', o.gw, 'iptables', '-S', 'FWKNOP_INPUT'], { encoding: 'utf8' });
        const exp = /_exp_(\d+)/.exec(r.stdout)?.[1];
        return exp === undefined ? undefined : Number(exp) * 1000;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
