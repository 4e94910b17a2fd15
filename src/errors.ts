// The one error family of Portcullis: a stable string code, an optional field, a cause.
// Codes cross process boundaries (HTTP, Slack, CLI), so callers test `code`, never `instanceof`.

export type ErrorCode =
  // request validation (400)
  | 'INVALID_REQUEST'
  | 'INVALID_TARGET'
  | 'INVALID_DURATION'
  | 'DURATION_TOO_SHORT'
  | 'DURATION_TOO_LONG'
  | 'INVALID_REASON'
  | 'INVALID_SOURCE_IP'
  | 'SOURCE_TOO_WIDE'
  | 'INVALID_PORT'
  | 'INVALID_ENCODING'
  // malformed transport (413, 415, 431)
  | 'BODY_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'HEADER_TOO_LARGE'
  // authentication (401)
  | 'AUTH_REQUIRED'
  | 'TOKEN_MALFORMED'
  | 'TOKEN_BAD_SIGNATURE'
  | 'TOKEN_WRONG_ISSUER'
  | 'TOKEN_WRONG_AUDIENCE'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_INVALID'
  | 'TOKEN_NOT_ID_TOKEN'
  | 'TOKEN_BAD_SUBJECT'
  | 'TOKEN_WRONG_AZP'
  | 'TOKEN_ISSUED_IN_FUTURE'
  | 'TOKEN_LIFETIME_TOO_LONG'
  | 'TOKEN_TOO_OLD'
  | 'TOKEN_AUTH_TIME_IN_FUTURE'
  | 'LOGIN_FAILED'
  // authorization (403)
  | 'MFA_REQUIRED'
  | 'MFA_TOO_OLD'
  | 'POLICY_DENIED'
  | 'FORBIDDEN'
  | 'SELF_APPROVAL'
  | 'CSRF_FAILED'
  // not found / conflict (404, 409, 429)
  | 'TARGET_NOT_FOUND'
  | 'GRANT_NOT_FOUND'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'INVALID_STATE'
  | 'CONFLICT'
  | 'QUOTA_EXCEEDED'
  | 'RULE_LIMIT_EXCEEDED'
  | 'RATE_LIMITED'
  | 'SIGN_IN_BUSY'
  // unavailable (503) and internal (500)
  | 'FIREWALL_UNAVAILABLE'
  | 'FIREWALL_ERROR'
  | 'STORE_UNAVAILABLE'
  | 'POLICY_UNAVAILABLE'
  | 'IDP_UNAVAILABLE'
  | 'CONFIG_INVALID'
  | 'POLICY_INVALID'
  | 'SCHEMA_TOO_NEW'
  | 'INTERNAL';

export class PortcullisError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { field?: string; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PortcullisError';
    this.code = code;
    this.field = options.field;
    this.details = options.details;
  }
}

export function isPortcullisError(e: unknown, code?: ErrorCode): e is PortcullisError {
  return e instanceof PortcullisError && (code === undefined || e.code === code);
}

/** Exit codes of the client commands (login, open, ls, …): a script branches on these, so they never change meaning. */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  AUTH: 3,
  DENIED: 4,
  PENDING: 5,
  TIMEOUT: 6,
  NOT_FOUND: 7,
  UNAVAILABLE: 8,
  CONFLICT: 9,
  CANCELLED: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** One line per exit code, in the order of the table in docs/cli.md (which a test compares); add codes, never renumber. */
export const EXIT_CODE_HELP: readonly (readonly [ExitCode, string])[] = [
  [EXIT.OK, 'done (for open: access is active)'],
  [EXIT.ERROR, 'other failure (the broker failed internally, the rule could not be placed)'],
  [EXIT.USAGE, 'usage: a bad option or argument, or the broker refused the input (duration, reason, port, address)'],
  [EXIT.AUTH, 'sign-in needed: not signed in, sign-in expired, MFA missing or too old (run portcullis login)'],
  [EXIT.DENIED, 'denied: by policy, by an approver, or not allowed (e.g. approving your own request)'],
  [EXIT.PENDING, 'the request waits for an approver (open without --wait); the grant id is printed'],
  [EXIT.TIMEOUT, 'gave up waiting: --timeout passed, or the broker expired the unapproved request'],
  [EXIT.NOT_FOUND, 'no such target or grant (or the broker does not offer this command yet)'],
  [EXIT.UNAVAILABLE, 'the broker, its firewall backend or the identity provider is unreachable or unavailable'],
  [EXIT.CONFLICT, 'not possible now: the grant is in another state, or a quota or rule limit is reached'],
  [EXIT.CANCELLED, 'interrupted (Ctrl-C); a pending request was cancelled'],
];

export function exitCodeHelpText(): string {
  return ['Exit codes (client commands):', ...EXIT_CODE_HELP.map(([code, text]) => `  ${String(code).padStart(3)}  ${text}`)].join('\n');
}

/** What to tell a person next; `p` is the CLI's profile flag (` --profile X`, or empty), added to suggested commands. */
type Hint = (p: string) => string;

const signInAgain: Hint = (p) => `sign in again: portcullis login${p}`;
const tryLater: Hint = () => 'nothing was opened; try again in a minute, and tell the broker operator if it persists';
const targetsHint: Hint = (p) => `'portcullis targets${p}' lists the targets you can ask for`;
const durationHint: Hint = (p) => `'portcullis targets${p}' shows the longest duration you may ask for`;

/**
 * The one table of error codes: HTTP status, CLI exit code and CLI hint all derive from here.
 * `satisfies` makes a code added to ErrorCode without a row here a type error, so it cannot
 * silently answer 500 or exit 1.
 */
export const ERRORS = {
  INVALID_REQUEST: { status: 400, exit: EXIT.USAGE },
  // The broker answers 400 for an unknown target id; to a person that is "no such target".
  INVALID_TARGET: { status: 400, exit: EXIT.NOT_FOUND, hint: targetsHint },
  INVALID_DURATION: { status: 400, exit: EXIT.USAGE },
  DURATION_TOO_SHORT: { status: 400, exit: EXIT.USAGE, hint: durationHint },
  DURATION_TOO_LONG: { status: 400, exit: EXIT.USAGE, hint: durationHint },
  INVALID_REASON: { status: 400, exit: EXIT.USAGE },
  INVALID_SOURCE_IP: { status: 400, exit: EXIT.USAGE },
  SOURCE_TOO_WIDE: { status: 400, exit: EXIT.USAGE },
  INVALID_PORT: { status: 400, exit: EXIT.USAGE },
  INVALID_ENCODING: { status: 400, exit: EXIT.USAGE },
  BODY_TOO_LARGE: { status: 413, exit: EXIT.USAGE },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, exit: EXIT.USAGE },
  HEADER_TOO_LARGE: { status: 431, exit: EXIT.USAGE },

  AUTH_REQUIRED: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_MALFORMED: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_BAD_SIGNATURE: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_WRONG_ISSUER: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_WRONG_AUDIENCE: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_EXPIRED: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_INVALID: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_NOT_ID_TOKEN: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_BAD_SUBJECT: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_WRONG_AZP: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_ISSUED_IN_FUTURE: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_LIFETIME_TOO_LONG: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_TOO_OLD: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  TOKEN_AUTH_TIME_IN_FUTURE: { status: 401, exit: EXIT.AUTH, hint: signInAgain },
  LOGIN_FAILED: { status: 401, exit: EXIT.AUTH, hint: signInAgain },

  MFA_REQUIRED: { status: 403, exit: EXIT.AUTH, hint: (p) => `sign in again and complete the second factor (MFA) at the identity provider: portcullis login${p}` },
  MFA_TOO_OLD: { status: 403, exit: EXIT.AUTH, hint: (p) => `your MFA sign-in is too old for this; sign in again: portcullis login${p}` },
  POLICY_DENIED: { status: 403, exit: EXIT.DENIED, hint: (p) => `ask for less (a shorter --for, the target's own port) or ask an administrator; 'portcullis targets${p}' shows how long you may ask for` },
  FORBIDDEN: { status: 403, exit: EXIT.DENIED, hint: () => 'you are not allowed to do this; ask an administrator if you should be' },
  SELF_APPROVAL: { status: 403, exit: EXIT.DENIED, hint: () => 'someone else with approval rights must approve it' },
  CSRF_FAILED: { status: 403, exit: EXIT.DENIED },

  TARGET_NOT_FOUND: { status: 404, exit: EXIT.NOT_FOUND, hint: targetsHint },
  GRANT_NOT_FOUND: { status: 404, exit: EXIT.NOT_FOUND, hint: (p) => `'portcullis ls --all${p}' lists your grants` },
  NOT_FOUND: { status: 404, exit: EXIT.NOT_FOUND },
  METHOD_NOT_ALLOWED: { status: 405, exit: EXIT.USAGE },
  INVALID_STATE: { status: 409, exit: EXIT.CONFLICT, hint: (p) => `'portcullis ls --all${p}' shows the grant's state` },
  CONFLICT: { status: 409, exit: EXIT.CONFLICT },
  QUOTA_EXCEEDED: { status: 429, exit: EXIT.CONFLICT, hint: (p) => `close a grant you no longer need: 'portcullis ls${p}', then 'portcullis close ID${p}'` },
  RULE_LIMIT_EXCEEDED: { status: 409, exit: EXIT.CONFLICT },
  RATE_LIMITED: { status: 429, exit: EXIT.CONFLICT, hint: () => 'too many requests; wait as the broker says (Retry-After) and try again' },
  SIGN_IN_BUSY: { status: 429, exit: EXIT.CONFLICT, hint: () => 'too many sign-ins are in progress from your network; finish or wait for one and try again' },

  FIREWALL_UNAVAILABLE: { status: 503, exit: EXIT.UNAVAILABLE, hint: tryLater },
  STORE_UNAVAILABLE: { status: 503, exit: EXIT.UNAVAILABLE, hint: tryLater },
  POLICY_UNAVAILABLE: { status: 503, exit: EXIT.UNAVAILABLE, hint: tryLater },
  IDP_UNAVAILABLE: { status: 503, exit: EXIT.UNAVAILABLE, hint: () => 'the identity provider did not answer; try again in a minute' },
  FIREWALL_ERROR: { status: 500, exit: EXIT.ERROR },
  CONFIG_INVALID: { status: 500, exit: EXIT.ERROR },
  POLICY_INVALID: { status: 500, exit: EXIT.ERROR },
  SCHEMA_TOO_NEW: { status: 503, exit: EXIT.UNAVAILABLE },
  INTERNAL: { status: 500, exit: EXIT.ERROR },
} satisfies Record<ErrorCode, { status: number; exit: ExitCode; hint?: Hint }>;

/** Codes the CLI raises itself, beside the broker's; same table shape, without an HTTP status. */
export const CLI_ERRORS = {
  USAGE: { exit: EXIT.USAGE },
  NOT_SIGNED_IN: { exit: EXIT.AUTH, hint: signInAgain },
  BROKER_UNAVAILABLE: { exit: EXIT.UNAVAILABLE },
  BAD_RESPONSE: { exit: EXIT.ERROR },
  APPROVAL_PENDING: { exit: EXIT.PENDING },
  GRANT_DENIED: { exit: EXIT.DENIED },
  GRANT_EXPIRED: { exit: EXIT.TIMEOUT },
  GRANT_FAILED: { exit: EXIT.ERROR },
  GRANT_CLOSED: { exit: EXIT.CONFLICT },
  WAIT_TIMEOUT: { exit: EXIT.TIMEOUT },
  CANCELLED: { exit: EXIT.CANCELLED },
} satisfies Record<string, { exit: ExitCode; hint?: Hint }>;
export type CliOnlyCode = keyof typeof CLI_ERRORS;

type Row = { status?: number; exit: ExitCode; hint?: Hint };
function row(code: string): Row | undefined {
  return Object.hasOwn(ERRORS, code) ? (ERRORS as Record<string, Row>)[code] : Object.hasOwn(CLI_ERRORS, code) ? (CLI_ERRORS as Record<string, Row>)[code] : undefined;
}

/** HTTP status of a code. */
export function httpStatus(code: ErrorCode): number {
  return ERRORS[code].status;
}

/** Exit code for a code of the broker or of the CLI; a code this CLI does not know (a newer broker's) is exit 1. */
export function exitCodeFor(code: string): ExitCode {
  return row(code)?.exit ?? EXIT.ERROR;
}

/** What to do next after an error code; `profileFlag` is added to suggested commands. */
export function hintFor(code: string, profileFlag: string): string | undefined {
  return row(code)?.hint?.(profileFlag);
}
