// `portcullis open`: ask for access to one target; with --wait, see it through approval to an open rule.
import { accessSync, constants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../../config/duration.ts';
import { BrokerApi } from './api.ts';
import { clientCommand, openSession, run, type ClientOptions } from './command.ts';
import { CliError, usage } from './cli-error.ts';
import { endpoint, type GrantView } from './grant-view.ts';
import { humanSeconds, localTime, out, printJson } from './output.ts';
import { writeRdpFile } from './rdp.ts';
import { Interrupts, waitForActive } from './wait.ts';

interface OpenOptions extends ClientOptions {
  for: string;
  reason: string;
  port?: string;
  ip?: string;
  wait?: boolean;
  timeout?: string;
  rdpFile?: string;
  pollInterval: string;
}

export function registerOpenCommand(program: Command): void {
  clientCommand(program, 'open <target>', 'ask for access to a target from your address for a bounded time; prints how to connect', {
    json: true,
    examples: [
      'portcullis open acme-dc01 --for 1h --reason "T-4411 patch night"',
      'portcullis open acme-dc01 --for 30m --reason T-4411 --wait --rdp-file acme-dc01.rdp',
      'portcullis open lab-gw --for 2h --reason "INC-88" --port 3389 --ip 198.51.100.7 --wait --timeout 15m',
      'portcullis open acme-dc01 --for 1h --reason T-4411 --wait --json | jq .grant.expiresAt',
    ],
  })
    .requiredOption('-f, --for <duration>', 'how long, e.g. 30m, 1h, 1h30m (the clock starts when the rule is in place)')
    .requiredOption('-r, --reason <text>', 'why: a ticket or incident number, shown to approvers and kept in the audit trail')
    .option('--port <port>', "port to open (default: the target's first port)")
    .option('--ip <address>', 'source address to admit (default: your address as the broker sees it)')
    .option('-w, --wait', 'if approval is needed, wait for it (and for the rule) instead of exiting with code 5')
    .option('--timeout <duration>', 'with --wait: give up (and withdraw the request) after this long')
    .option('--rdp-file <path>', 'write a Remote Desktop (.rdp) file for the connection once access is open')
    .option('--poll-interval <duration>', 'with --wait: how often to ask the broker', '2s')
    .action((target: string, opts: OpenOptions) => run(opts, () => open(target, opts)));
}

async function open(target: string, opts: OpenOptions): Promise<number> {
  if (!parseDuration(opts.for)) throw usage(`--for "${opts.for}" is not a duration`, 'write it like 30m, 1h or 1h30m');
  const timeoutSeconds = opts.timeout === undefined ? undefined : parseDuration(opts.timeout);
  if (opts.timeout !== undefined && !timeoutSeconds) throw usage(`--timeout "${opts.timeout}" is not a duration`, 'write it like 90s or 15m');
  if (opts.timeout !== undefined && !opts.wait) throw usage('--timeout only applies with --wait');
  const pollSeconds = parseDuration(opts.pollInterval);
  if (!pollSeconds) throw usage(`--poll-interval "${opts.pollInterval}" is not a duration`);
  let port: number | undefined;
  if (opts.port !== undefined) {
    port = Number(opts.port);
    if (!/^\d{1,5}$/.test(opts.port) || port < 1 || port > 65535) throw usage(`--port "${opts.port}" is not a port number (1-65535)`);
  }

  if (opts.rdpFile !== undefined) {
    // Found out now, not after a port was opened for a file that cannot be written.
    try {
      accessSync(dirname(resolve(opts.rdpFile)), constants.W_OK);
    } catch {
      throw usage(`--rdp-file ${opts.rdpFile}: its directory does not exist or is not writable`);
    }
  }

  const s = openSession(opts);
  const api = new BrokerApi(s);
  const interrupts = new Interrupts(api, s.flag);
  try {
    const body = { target, duration: opts.for, reason: opts.reason, ...(port !== undefined ? { port } : {}), ...(opts.ip !== undefined ? { sourceIp: opts.ip } : {}) };
    const res = await api.post<{ grant: GrantView }>('/grants', body);
    let grant = res.body.grant;
    // A Ctrl-C that arrived while the broker was answering withdraws what it created.
    await interrupts.track(grant);
    if (grant.state !== 'active' && !opts.wait) {
      if (opts.json) printJson({ grant });
      else {
        out(`Request ${grant.id} for ${grant.target} waits for an approver (it is ${grant.state}).`);
        out(`  check it:     portcullis ls ${grant.id}${s.flag}`);
        out(`  withdraw it:  portcullis close ${grant.id}${s.flag}`);
        out('  next time add --wait to wait here for the approval.');
      }
      return 5;
    }
    if (grant.state !== 'active') {
      grant = await waitForActive(api, grant, { pollMs: pollSeconds * 1000, timeoutMs: timeoutSeconds === undefined ? undefined : timeoutSeconds * 1000, flag: s.flag, interrupts });
    }
    await interrupts.gate();
    interrupts.dispose();
    return printOpen(grant, opts, s.flag);
  } finally {
    interrupts.dispose();
  }
}

function printOpen(g: GrantView, opts: OpenOptions, flag: string): number {
  const ep = endpoint(g);
  if (opts.rdpFile) {
    if (!ep) throw new CliError('ERROR', `access to ${g.target} is open (grant ${g.id}), but the broker does not say which host to connect to, so no .rdp file was written`, { hint: 'ask the broker operator to set connect: for this target' });
    writeRdpFile(opts.rdpFile, ep.host, ep.port);
  }
  if (opts.json) {
    printJson({ grant: g, ...(opts.rdpFile ? { rdpFile: opts.rdpFile } : {}) });
    return 0;
  }
  out(`Access to ${g.target} is open for ${g.source} on port ${g.port}.`);
  if (ep) out(`  connect:    ${ep.address}   (mstsc /v:${ep.address}  or  xfreerdp /v:${ep.address})`);
  else out(`  connect:    port ${g.port} of ${g.target} (the broker has no address for it)`);
  if (g.secondsLeft !== null) out(`  time left:  ${humanSeconds(g.secondsLeft)} (until ${localTime(g.expiresAt)})`);
  if (opts.rdpFile) out(`  rdp file:   ${opts.rdpFile}`);
  out(`  grant:      ${g.id}   close early: portcullis close ${g.id}${flag}   more time: portcullis extend ${g.id} --for 30m${flag}`);
  return 0;
}
