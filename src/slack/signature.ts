// Slack's v0 request signature: HMAC-SHA256 over "v0:<timestamp>:<raw body>", compared in constant time.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Slack's own tolerance: a request older (or newer) than five minutes is a replay. */
export const MAX_SKEW_SECONDS = 5 * 60;

export type SignatureProblem = 'missing' | 'malformed' | 'stale' | 'mismatch';

export function slackSignature(secret: string, timestamp: string, rawBody: Buffer | string): string {
  const mac = createHmac('sha256', secret);
  mac.update(`v0:${timestamp}:`);
  mac.update(rawBody);
  return `v0=${mac.digest('hex')}`;
}

/** undefined when the request is Slack's; otherwise why not. `nowSeconds` is injected for tests. */
export function checkSlackSignature(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  rawBody: Buffer,
  nowSeconds: number,
): SignatureProblem | undefined {
  const { timestamp, signature } = headers;
  if (timestamp === undefined || signature === undefined) return 'missing';
  if (!/^\d{1,12}$/.test(timestamp) || !/^v0=[0-9a-f]{64}$/.test(signature)) return 'malformed';
  if (Math.abs(nowSeconds - Number(timestamp)) > MAX_SKEW_SECONDS) return 'stale';
  const want = Buffer.from(slackSignature(secret, timestamp, rawBody));
  const got = Buffer.from(signature);
  return want.length === got.length && timingSafeEqual(want, got) ? undefined : 'mismatch';
}
