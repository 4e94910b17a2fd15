// Exit codes of the client commands (login, open, ls, …): a script branches on these, so they never change meaning.
// docs/cli.md and `portcullis --help` print this table; add codes, never renumber.

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

/** One line per code, in the order of the table in docs/cli.md. */
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

/** Exit code for an error code of the broker (src/errors.ts) or of the CLI itself. */
export function exitCodeFor(code: string): ExitCode {
  switch (code) {
    case 'INVALID_REQUEST':
    case 'INVALID_DURATION':
    case 'DURATION_TOO_SHORT':
    case 'DURATION_TOO_LONG':
    case 'INVALID_REASON':
    case 'INVALID_SOURCE_IP':
    case 'SOURCE_TOO_WIDE':
    case 'INVALID_PORT':
    case 'USAGE':
      return EXIT.USAGE;
    case 'AUTH_REQUIRED':
    case 'TOKEN_MALFORMED':
    case 'TOKEN_BAD_SIGNATURE':
    case 'TOKEN_WRONG_ISSUER':
    case 'TOKEN_WRONG_AUDIENCE':
    case 'TOKEN_EXPIRED':
    case 'TOKEN_INVALID':
    case 'LOGIN_FAILED':
    case 'MFA_REQUIRED':
    case 'MFA_TOO_OLD':
    case 'NOT_SIGNED_IN':
      return EXIT.AUTH;
    case 'POLICY_DENIED':
    case 'FORBIDDEN':
    case 'SELF_APPROVAL':
    case 'CSRF_FAILED':
    case 'GRANT_DENIED':
      return EXIT.DENIED;
    case 'APPROVAL_PENDING':
      return EXIT.PENDING;
    case 'WAIT_TIMEOUT':
    case 'GRANT_EXPIRED':
      return EXIT.TIMEOUT;
    // The broker answers 400 INVALID_TARGET for an unknown target id; to a person that is "no such target".
    case 'INVALID_TARGET':
    case 'TARGET_NOT_FOUND':
    case 'GRANT_NOT_FOUND':
    case 'NOT_FOUND':
      return EXIT.NOT_FOUND;
    case 'FIREWALL_UNAVAILABLE':
    case 'STORE_UNAVAILABLE':
    case 'SCHEMA_TOO_NEW':
    case 'POLICY_UNAVAILABLE':
    case 'IDP_UNAVAILABLE':
    case 'BROKER_UNAVAILABLE':
      return EXIT.UNAVAILABLE;
    case 'INVALID_STATE':
    case 'CONFLICT':
    case 'QUOTA_EXCEEDED':
    case 'RULE_LIMIT_EXCEEDED':
    case 'GRANT_CLOSED':
      return EXIT.CONFLICT;
    case 'CANCELLED':
      return EXIT.CANCELLED;
    default:
      return EXIT.ERROR;
  }
}
