// Turns SDK and socket errors into PortcullisErrors with stable codes; never carries credentials or raw SDK objects.
import { PortcullisError } from '../errors.ts';
import { errorCode, isRetryable, isThrottle } from './aws-retry.ts';

const AUTH_CODES = new Set([
  'AuthFailure',
  'UnauthorizedOperation',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'ExpiredToken',
  'RequestExpired',
  'OptInRequired',
  'Blocked',
]);

/** Codes EC2 uses when a rule to revoke is already gone. */
export const NOT_FOUND_CODES = new Set(['InvalidSecurityGroupRuleId.NotFound', 'InvalidPermission.NotFound']);

// AWS access key ids have a fixed shape; redact any that an error text might echo.
const ACCESS_KEY = /\b(AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b/g;

export interface AwsErrorSummary {
  code: string | undefined;
  httpStatus: number | undefined;
  requestId: string | undefined;
}

/** The only facts about an SDK error that are kept: the SDK object also holds the HTTP exchange. */
export function summarize(e: unknown): AwsErrorSummary {
  const meta = (e as { $metadata?: { httpStatusCode?: number; requestId?: string } } | null)?.$metadata;
  return { code: errorCode(e) ?? (e instanceof Error ? e.name : undefined), httpStatus: meta?.httpStatusCode, requestId: meta?.requestId };
}

export function toPortcullisError(e: unknown, ctx: { action: string; scope: string; groupId: string; region: string }): PortcullisError {
  if (e instanceof PortcullisError) return e;
  const summary = summarize(e);
  const code = summary.code;
  const where = `${ctx.action} on ${ctx.scope}`;
  const opts = { cause: summary, details: { ...summary, action: ctx.action, scope: ctx.scope } };
  if (code === 'CredentialsProviderError' || (e instanceof Error && e.name === 'CredentialsProviderError')) {
    return new PortcullisError('FIREWALL_UNAVAILABLE', `no AWS credentials found by the SDK default provider chain for ${where}`, opts);
  }
  if (isThrottle(e)) return new PortcullisError('FIREWALL_UNAVAILABLE', `EC2 kept throttling ${where} (${code}); retries exhausted`, opts);
  if (isRetryable(e)) return new PortcullisError('FIREWALL_UNAVAILABLE', `EC2 endpoint unavailable for ${where} (${code ?? 'network error'})`, opts);
  if (code !== undefined && AUTH_CODES.has(code)) {
    return new PortcullisError('FIREWALL_ERROR', `EC2 refused ${where}: the credentials or their permissions do not allow it (${code})`, opts);
  }
  if (code === 'InvalidGroup.NotFound') {
    return new PortcullisError('FIREWALL_ERROR', `security group ${ctx.groupId} does not exist in ${ctx.region} (${where})`, opts);
  }
  if (code === 'RulesPerSecurityGroupLimitExceeded') {
    return new PortcullisError(
      'RULE_LIMIT_EXCEEDED',
      `security group ${ctx.groupId} in ${ctx.region} already holds the most inbound rules AWS allows (60 by default); nothing was opened — close other grants or raise the quota`,
      opts,
    );
  }
  // A parameter complaint is the one AWS message worth showing; it names the bad value, never a secret.
  const said = code?.startsWith('InvalidParameter') && e instanceof Error ? `: ${e.message.slice(0, 200).replace(ACCESS_KEY, '[redacted]')}` : '';
  // No HTTP answer at all: the endpoint could not be reached.
  if (summary.httpStatus === undefined) {
    return new PortcullisError('FIREWALL_UNAVAILABLE', `EC2 endpoint unavailable for ${where} (${code ?? 'network error'})`, opts);
  }
  return new PortcullisError('FIREWALL_ERROR', `EC2 ${where} failed (${code ?? 'unknown error'})${said}`, opts);
}
