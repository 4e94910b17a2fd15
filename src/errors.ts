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
  // authentication (401)
  | 'AUTH_REQUIRED'
  | 'TOKEN_MALFORMED'
  | 'TOKEN_BAD_SIGNATURE'
  | 'TOKEN_WRONG_ISSUER'
  | 'TOKEN_WRONG_AUDIENCE'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_INVALID'
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
  | 'INVALID_STATE'
  | 'CONFLICT'
  | 'QUOTA_EXCEEDED'
  | 'RULE_LIMIT_EXCEEDED'
  // unavailable (503) and internal (500)
  | 'FIREWALL_UNAVAILABLE'
  | 'FIREWALL_ERROR'
  | 'STORE_UNAVAILABLE'
  | 'SCHEMA_TOO_NEW'
  | 'POLICY_UNAVAILABLE'
  | 'IDP_UNAVAILABLE'
  | 'CONFIG_INVALID'
  | 'POLICY_INVALID'
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

/** HTTP status for each code; the edge (HTTP, CLI exit codes) maps from here and nowhere else. */
export function httpStatus(code: ErrorCode): number {
  switch (code) {
    case 'INVALID_REQUEST':
    case 'INVALID_TARGET':
    case 'INVALID_DURATION':
    case 'DURATION_TOO_SHORT':
    case 'DURATION_TOO_LONG':
    case 'INVALID_REASON':
    case 'INVALID_SOURCE_IP':
    case 'SOURCE_TOO_WIDE':
    case 'INVALID_PORT':
      return 400;
    case 'AUTH_REQUIRED':
    case 'TOKEN_MALFORMED':
    case 'TOKEN_BAD_SIGNATURE':
    case 'TOKEN_WRONG_ISSUER':
    case 'TOKEN_WRONG_AUDIENCE':
    case 'TOKEN_EXPIRED':
    case 'TOKEN_INVALID':
    case 'LOGIN_FAILED':
      return 401;
    case 'MFA_REQUIRED':
    case 'MFA_TOO_OLD':
    case 'POLICY_DENIED':
    case 'FORBIDDEN':
    case 'SELF_APPROVAL':
    case 'CSRF_FAILED':
      return 403;
    case 'TARGET_NOT_FOUND':
    case 'GRANT_NOT_FOUND':
    case 'NOT_FOUND':
      return 404;
    case 'INVALID_STATE':
    case 'CONFLICT':
    case 'RULE_LIMIT_EXCEEDED':
      return 409;
    case 'QUOTA_EXCEEDED':
      return 429;
    case 'FIREWALL_UNAVAILABLE':
    case 'STORE_UNAVAILABLE':
    case 'SCHEMA_TOO_NEW':
    case 'POLICY_UNAVAILABLE':
    case 'IDP_UNAVAILABLE':
      return 503;
    case 'FIREWALL_ERROR':
    case 'CONFIG_INVALID':
    case 'POLICY_INVALID':
    case 'INTERNAL':
      return 500;
  }
}
