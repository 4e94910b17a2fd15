// The shape every client command shares: --profile, --json where it reads, examples in --help, and one error exit.
import type { Command } from 'commander';
import { ProfileStore, profileName } from '../profiles.ts';
import type { Session } from './api.ts';
import { CliError } from './cli-error.ts';
import { reportError } from './output.ts';

export interface ClientOptions {
  profile?: string;
  json?: boolean;
}

/** Adds a client command under `parent` with the common options and an examples section. */
export function clientCommand(parent: Command, spec: string, description: string, o: { json: boolean; examples: string[] }): Command {
  const cmd = parent
    .command(spec)
    .description(description)
    .option('-p, --profile <name>', 'broker profile (default: $PORTCULLIS_PROFILE, else "default")');
  if (o.json) cmd.option('--json', 'print the result as JSON (errors too, on stdout, besides the message on stderr)');
  cmd.addHelpText('after', `\nExamples:\n${o.examples.map((e) => `  ${e}`).join('\n')}\n\nExit codes: see 'portcullis --help'.`);
  // Usage mistakes exit 2 (commander's default is 1, which scripts would read as a failure of the request).
  cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
  return cmd;
}

/**
 * Runs a command body and exits with its code; any error is printed once, in the one format, and
 * mapped to its documented exit code. Exiting explicitly keeps idle keep-alive sockets from holding the process.
 */
export async function run(opts: ClientOptions, body: () => Promise<number | void>): Promise<never> {
  let code: number;
  try {
    code = (await body()) ?? 0;
  } catch (e) {
    code = reportError(e, opts.json === true);
  }
  process.exit(code);
}

/** The profile a command works with; a missing profile is "not signed in", with the login command to run. */
export function openSession(opts: ClientOptions): Session {
  const name = profileName(opts.profile);
  const store = new ProfileStore();
  const flag = opts.profile ? ` --profile ${name}` : '';
  const settings = store.readSettings(name);
  if (!settings) {
    const known = store.list();
    throw new CliError('NOT_SIGNED_IN', `no profile "${name}" yet${known.length ? ` (profiles: ${known.join(', ')})` : ''}`, {
      hint: `sign in first: portcullis login${flag} --server https://YOUR-BROKER`,
    });
  }
  return { name, flag, store, settings };
}
