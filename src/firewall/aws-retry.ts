// Retries EC2 calls that AWS throttled or could not serve, with capped exponential backoff and full jitter.

/** Error codes EC2 (and the SDK) use for throttling and transient server trouble. */
const RETRYABLE_CODES = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'Unavailable',
]);

/** Node socket errors after which the request may or may not have reached EC2; safe because open/close are idempotent. */
const RETRYABLE_NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED']);

export interface RetryOptions {
  /** Total tries, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Injected so tests can count waits without waiting. */
  sleep: (ms: number) => Promise<void>;
  /** Uniform in [0, 1); injected so tests can pin the jitter. */
  random: () => number;
}

export const DEFAULT_RETRY: RetryOptions = {
  maxAttempts: 6,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

export function isThrottle(e: unknown): boolean {
  const code = errorCode(e);
  return code !== undefined && (code === 'RequestLimitExceeded' || /throttl/i.test(code));
}

export function isRetryable(e: unknown): boolean {
  const code = errorCode(e);
  if (code !== undefined && RETRYABLE_CODES.has(code)) return true;
  if (code !== undefined && RETRYABLE_NETWORK.has(code)) return true;
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return true;
  const status = (e as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 500;
}

/** The EC2 error code (SDK errors carry it as `name`), or a Node socket code. */
export function errorCode(e: unknown): string | undefined {
  if (e === null || typeof e !== 'object') return undefined;
  const o = e as { Code?: unknown; code?: unknown; name?: unknown; $metadata?: unknown };
  if (typeof o.code === 'string' && /^E[A-Z]+$/.test(o.code)) return o.code;
  if (o.$metadata !== undefined && typeof o.name === 'string') return o.name;
  if (typeof o.Code === 'string') return o.Code;
  return undefined;
}

/**
 * Delay before retry number `attempt` (1 = the first retry): "full jitter",
 * uniform in [0, min(cap, base·2^(attempt-1))), so many brokers hitting one throttled account spread out.
 */
export function backoffDelay(attempt: number, opts: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs' | 'random'>): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(opts.random() * ceiling);
}

export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= opts.maxAttempts || !isRetryable(e)) throw e;
      await opts.sleep(backoffDelay(attempt, opts));
    }
  }
}
