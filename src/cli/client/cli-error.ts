// Failures of client commands: a stable code (the broker's, or one of the CLI's own), what to do next, and the exit code.
// The code → exit code and hint table is src/errors.ts; this is only the error the commands throw.
import { exitCodeFor, type ExitCode } from '../../errors.ts';

export class CliError extends Error {
  readonly code: string;
  /** One sentence telling the person what to do next; printed under the message. */
  readonly hint: string | undefined;
  readonly exit: ExitCode;
  readonly field: string | undefined;
  /** Extra facts for --json output (e.g. the grant id); never credentials. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, o: { hint?: string | undefined; field?: string | undefined; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'CliError';
    this.code = code;
    this.hint = o.hint;
    this.field = o.field;
    this.details = o.details;
    this.exit = exitCodeFor(code);
  }
}

export function usage(message: string, hint?: string): CliError {
  return new CliError('USAGE', message, { hint });
}
