// `portcullis ls | close | extend`: your grants, closing one early, asking for more time.
import type { Command } from 'commander';
import { parseDuration } from '../../config/duration.ts';
import { BrokerApi } from './api.ts';
import { clientCommand, openSession, run, type ClientOptions } from './command.ts';
import { usage } from './cli-error.ts';
import { endpoint, FINAL, who, type GrantView } from './grant-view.ts';
import { humanSeconds, localTime, out, printJson, table } from './output.ts';

export function registerGrantCommands(program: Command): void {
  clientCommand(program, 'ls [grant]', 'list your open and waiting grants (or everything with --all, or one grant in detail)', {
    json: true,
    examples: ['portcullis ls', 'portcullis ls --all --limit 20', 'portcullis ls g_4f9cQ2… ', 'portcullis ls --approvable        # requests waiting for you to approve', 'portcullis ls --json | jq -r ".grants[].id"'],
  })
    .option('-a, --all', 'include closed, denied, expired and failed grants')
    .option('--approvable', 'list the pending requests of others that you may approve')
    .option('-n, --limit <n>', 'at most this many grants', '100')
    .action((id: string | undefined, opts: ClientOptions & { all?: boolean; approvable?: boolean; limit: string }) => run(opts, () => list(id, opts)));

  clientCommand(program, 'close <grant>', 'close a grant now (the rule is removed), or withdraw a request that waits for approval', {
    json: true,
    examples: ['portcullis close g_4f9cQ2…', 'portcullis close g_4f9cQ2… --profile acme --json'],
  }).action((id: string, opts: ClientOptions) =>
    run(opts, async () => {
      const api = new BrokerApi(openSession(opts));
      const { body } = await api.post<{ grant: GrantView }>(`/grants/${encodeURIComponent(id)}/revoke`, {});
      const g = body.grant;
      if (opts.json) printJson({ grant: g });
      else if (g.activatedAt) out(`Closed ${g.id}: ${g.target} port ${g.port} no longer admits ${g.source}.`);
      else out(`Withdrew request ${g.id} for ${g.target}; it is ${g.state}.`);
      return 0;
    }),
  );

  clientCommand(program, 'extend <grant>', 'ask for more time on an open grant (policy is checked again)', {
    json: true,
    examples: ['portcullis extend g_4f9cQ2… --for 30m', 'portcullis extend g_4f9cQ2… --for 1h --json'],
  })
    .requiredOption('-f, --for <duration>', 'additional time, e.g. 30m or 1h')
    .action((id: string, opts: ClientOptions & { for: string }) =>
      run(opts, async () => {
        if (!parseDuration(opts.for)) throw usage(`--for "${opts.for}" is not a duration`, 'write it like 30m or 1h');
        const s = openSession(opts);
        const { status, body } = await new BrokerApi(s).post<{ grant: GrantView }>(`/grants/${encodeURIComponent(id)}/extend`, { duration: opts.for });
        const g = body.grant;
        if (opts.json) printJson({ grant: g });
        else if (status === 202) out(`The extension of ${g.id} waits for an approver; the grant stays open until ${localTime(g.expiresAt)} meanwhile.`);
        else out(`Extended ${g.id} on ${g.target}: ${g.secondsLeft === null ? '' : `${humanSeconds(g.secondsLeft)} left, `}until ${localTime(g.expiresAt)}.`);
        return status === 202 ? 5 : 0;
      }),
    );
}

async function list(id: string | undefined, opts: ClientOptions & { all?: boolean; approvable?: boolean; limit: string }): Promise<number> {
  if (!/^\d{1,4}$/.test(opts.limit) || Number(opts.limit) < 1) throw usage(`--limit "${opts.limit}" must be a number from 1 to 1000`);
  if (id !== undefined && (opts.all || opts.approvable)) throw usage('give a grant id, or --all / --approvable, not both');
  const api = new BrokerApi(openSession(opts));
  if (id !== undefined) {
    const { grant } = await api.get<{ grant: GrantView }>(`/grants/${encodeURIComponent(id)}`);
    if (opts.json) printJson({ grant });
    else details(grant);
    return 0;
  }
  const query = new URLSearchParams({ limit: opts.limit, ...(opts.approvable ? { view: 'approvable' } : {}) });
  let { grants } = await api.get<{ grants: GrantView[] }>(`/grants?${query}`);
  if (!opts.all && !opts.approvable) grants = grants.filter((g) => !FINAL.includes(g.state));
  if (opts.json) {
    printJson({ grants });
    return 0;
  }
  if (!grants.length) {
    out(opts.approvable ? 'No requests wait for your approval.' : opts.all ? 'You have no grants.' : "You have no open or waiting grants ('portcullis ls --all' shows past ones).");
    return 0;
  }
  if (opts.approvable) {
    out(table(['ID', 'REQUESTER', 'TARGET', 'PORT', 'FOR', 'SOURCE', 'REASON'], grants.map((g) => [g.id, who(g), g.target, String(g.port), humanSeconds(g.durationSeconds), g.source, g.reason])));
  } else {
    out(table(['ID', 'TARGET', 'STATE', 'PORT', 'SOURCE', 'LEFT', 'REASON'], grants.map((g) => [g.id, g.target, g.state, String(g.port), g.source, left(g), g.reason])));
  }
  return 0;
}

function left(g: GrantView): string {
  if (g.state === 'active' && g.secondsLeft !== null) return humanSeconds(g.secondsLeft);
  if (g.state === 'pending') return 'needs approval';
  if (g.state === 'extending') return 'Extending…';
  return g.closeReason ?? '-';
}

function details(g: GrantView): void {
  const ep = endpoint(g);
  out(`${g.id}  ${g.target}  ${g.state}${g.closeReason ? ` (${g.closeReason})` : ''}`);
  out(`  requester:  ${who(g)}`);
  out(`  reason:     ${g.reason}`);
  out(`  source:     ${g.source} → port ${g.port}`);
  out(`  duration:   ${humanSeconds(g.durationSeconds)}`);
  if (g.state === 'active') {
    if (ep) out(`  connect:    ${ep.address}`);
    if (g.secondsLeft !== null) out(`  time left:  ${humanSeconds(g.secondsLeft)} (until ${localTime(g.expiresAt)})`);
  }
  if (g.createdAt) out(`  requested:  ${localTime(g.createdAt)}`);
  if (g.activatedAt) out(`  opened:     ${localTime(g.activatedAt)}`);
  if (g.closedAt) out(`  closed:     ${localTime(g.closedAt)}`);
  if (g.failure) out(`  failure:    ${g.failure}`);
}
