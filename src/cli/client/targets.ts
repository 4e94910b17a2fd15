// `portcullis targets`: what you may ask for, for how long at most, and whether someone must approve it.
import type { Command } from 'commander';
import { BrokerApi } from './api.ts';
import { clientCommand, openSession, run, type ClientOptions } from './command.ts';
import { out, printJson, table } from './output.ts';

export interface TargetView {
  id: string;
  description: string | null;
  connect: string | null;
  ports: number[];
  tags: Record<string, string>;
  firewall: string;
  /** Longest duration the caller may ask for; null: the caller may not ask at all. Absent from older brokers. */
  maxDuration?: string | null;
  /** Whether asking for maxDuration waits for an approver; null when nothing may be asked. */
  needsApproval?: boolean | null;
  /** Longest duration that opens at once, without an approver; null: none. */
  maxImmediateDuration?: string | null;
}

export function registerTargetsCommand(program: Command): void {
  clientCommand(program, 'targets', 'list the targets you can ask for, the longest time you may ask for, and whether approval is needed', {
    json: true,
    examples: ['portcullis targets', 'portcullis targets --profile acme --json'],
  }).action((opts: ClientOptions) =>
    run(opts, async () => {
      const api = new BrokerApi(openSession(opts));
      const { targets } = await api.get<{ targets: TargetView[] }>('/targets');
      if (opts.json) {
        printJson({ targets });
        return 0;
      }
      if (!targets.length) {
        out('No targets are configured on this broker.');
        return 0;
      }
      out(
        table(
          ['TARGET', 'PORTS', 'LONGEST', 'APPROVAL', 'CONNECT', 'DESCRIPTION'],
          targets.map((t) => [t.id, t.ports.join(','), longest(t), approval(t), t.connect ?? '-', t.description ?? '']),
        ),
      );
      return 0;
    }),
  );
}

function longest(t: TargetView): string {
  if (t.maxDuration === undefined) return '?';
  return t.maxDuration === null ? 'not allowed' : t.maxDuration;
}

function approval(t: TargetView): string {
  if (t.maxDuration === null) return '-';
  if (t.needsApproval === undefined || t.needsApproval === null) return '?';
  if (!t.needsApproval) return 'no';
  // Short requests may open at once and only longer ones wait: say where the line is.
  return t.maxImmediateDuration ? `over ${t.maxImmediateDuration}` : 'needed';
}
