// `portcullis approve | deny`: decide on someone else's pending request (the broker re-checks who may, and refuses self-approval).
import type { Command } from 'commander';
import { BrokerApi } from './api.ts';
import { clientCommand, openSession, run, type ClientOptions } from './command.ts';
import { who, type GrantView } from './grant-view.ts';
import { humanSeconds, out, printJson } from './output.ts';

export function registerApprovalCommands(program: Command): void {
  for (const verb of ['approve', 'deny'] as const) {
    clientCommand(program, `${verb} <grant>`, verb === 'approve' ? "approve someone's pending request (the rule opens at once)" : "deny someone's pending request", {
      json: true,
      examples: [
        'portcullis ls --approvable',
        verb === 'approve' ? 'portcullis approve g_4f9cQ2… --comment "ok for T-4411"' : 'portcullis deny g_4f9cQ2… --comment "use the change window"',
        `portcullis ${verb} g_4f9cQ2… --profile acme --json`,
      ],
    })
      .option('-m, --comment <text>', 'a note for the requester and the audit trail')
      .action((id: string, opts: ClientOptions & { comment?: string }) =>
        run(opts, async () => {
          const api = new BrokerApi(openSession(opts));
          const { body } = await api.post<{ grant: GrantView }>(`/grants/${encodeURIComponent(id)}/${verb}`, opts.comment === undefined ? {} : { comment: opts.comment });
          const g = body.grant;
          if (opts.json) printJson({ grant: g });
          else out(`${verb === 'approve' ? 'Approved' : 'Denied'} ${g.id}: ${who(g)} → ${g.target} port ${g.port} for ${humanSeconds(g.durationSeconds)} ("${g.reason}"); it is now ${g.state}.`);
          return 0;
        }),
      );
  }
}
