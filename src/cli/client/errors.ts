// Failures of client commands: a stable code (the broker's, or one of the CLI's own), what to do next, and the exit code.
import { exitCodeFor, type ExitCode } from '../exit-codes.ts';

/** Codes the CLI raises itself, beside the broker's codes of src/errors.ts. */
export type CliOnlyCode =
  | 'USAGE'
  | 'NOT_SIGNED_IN'
  | 'BROKER_UNAVAILABLE'
  | 'BAD_RESPONSE'
  | 'APPROVAL_PENDING'
  | 'GRANT_DENIED'
  | 'GRANT_EXPIRED'
  | 'GRANT_FAILED'
  | 'GRANT_CLOSED'
  | 'WAIT_TIMEOUT'
  | 'CANCELLED';

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

/** What to do next after a broker error code; `profile` is added to suggested commands when not the default. */
export function hintFor(code: string, profileFlag: string): string | undefined {
  const login = `portcullis login${profileFlag}`;
  switch (code) {
    case 'AUTH_REQUIRED':
    case 'NOT_SIGNED_IN':
    case 'TOKEN_MALFORMED':
    case 'TOKEN_BAD_SIGNATURE':
    case 'TOKEN_WRONG_ISSUER':
    case 'TOKEN_WRONG_AUDIENCE':
    case 'TOKEN_EXPIRED':
    case 'TOKEN_INVALID':
    case 'TOKEN_NOT_ID_TOKEN':
    case 'TOKEN_BAD_SUBJECT':
    case 'TOKEN_WRONG_AZP':
    case 'TOKEN_ISSUED_IN_FUTURE':
    case 'TOKEN_LIFETIME_TOO_LONG':
    case 'TOKEN_TOO_OLD':
    case 'TOKEN_AUTH_TIME_IN_FUTURE':
    case 'LOGIN_FAILED':
      return `sign in again: ${login}`;
    case 'MFA_REQUIRED':
      return `sign in again and complete the second factor (MFA) at the identity provider: ${login}`;
    case 'MFA_TOO_OLD':
      return `your MFA sign-in is too old for this; sign in again: ${login}`;
    case 'POLICY_DENIED':
      return `ask for less (a shorter --for, the target's own port) or ask an administrator; 'portcullis targets${profileFlag}' shows how long you may ask for`;
    case 'DURATION_TOO_LONG':
    case 'DURATION_TOO_SHORT':
      return `'portcullis targets${profileFlag}' shows the longest duration you may ask for`;
    case 'FORBIDDEN':
      return 'you are not allowed to do this; ask an administrator if you should be';
    case 'SELF_APPROVAL':
      return 'someone else with approval rights must approve it';
    case 'TARGET_NOT_FOUND':
    case 'INVALID_TARGET':
      return `'portcullis targets${profileFlag}' lists the targets you can ask for`;
    case 'GRANT_NOT_FOUND':
      return `'portcullis ls --all${profileFlag}' lists your grants`;
    case 'INVALID_STATE':
      return `'portcullis ls --all${profileFlag}' shows the grant's state`;
    case 'QUOTA_EXCEEDED':
      return `close a grant you no longer need: 'portcullis ls${profileFlag}', then 'portcullis close ID${profileFlag}'`;
    case 'FIREWALL_UNAVAILABLE':
    case 'STORE_UNAVAILABLE':
    case 'POLICY_UNAVAILABLE':
      return 'nothing was opened; try again in a minute, and tell the broker operator if it persists';
    case 'IDP_UNAVAILABLE':
      return 'the identity provider did not answer; try again in a minute';
    default:
      return undefined;
  }
}
