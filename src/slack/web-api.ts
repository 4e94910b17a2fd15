// A small Slack Web API client over fetch: JSON bodies, the bot token, and errors sorted into retry or give up.
import { PortcullisError } from '../errors.ts';
import { DeliveryError } from '../notify/port.ts';

/** A failed call: `retryAfterMs` set when Slack said when to come back (429), `permanent` when retrying cannot help. */
export class SlackCallError extends DeliveryError {
  constructor(message: string, permanent: boolean, retryAfterMs?: number) {
    super(message, permanent, retryAfterMs);
    this.name = 'SlackCallError';
  }
}

// Errors that a later attempt may not see again; any other `ok: false` is the request's own fault.
const TRANSIENT = new Set(['ratelimited', 'service_unavailable', 'fatal_error', 'internal_error', 'request_timeout']);

export interface SlackApi {
  call(method: string, body: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Posts to a response_url (no token: the URL is the credential). */
  respond(url: string, body: Record<string, unknown>): Promise<void>;
}

export function slackApi(o: { apiUrl: () => string; botToken: () => string; timeoutMs?: number }): SlackApi {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const post = async (url: string, body: Record<string, unknown>, token?: string): Promise<Response> => {
    try {
      return await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      });
    } catch (e) {
      // Never the token or the URL's secret path in the message: only what kind of failure it was.
      throw new SlackCallError(`Slack did not answer (${(e as Error).name})`, false);
    }
  };
  const status = (res: Response): void => {
    if (res.status === 429) {
      const s = Number(res.headers.get('retry-after'));
      throw new SlackCallError('Slack rate limit (429)', false, Number.isFinite(s) && s >= 0 ? Math.min(s, 3600) * 1000 : 30_000);
    }
    if (res.status >= 500) throw new SlackCallError(`Slack answered ${res.status}`, false);
    if (res.status >= 400) throw new SlackCallError(`Slack answered ${res.status}`, true);
  };
  return {
    async call(method, body) {
      if (!/^[a-z]+(\.[a-zA-Z]+)+$/.test(method)) throw new PortcullisError('INTERNAL', `not a Slack method: ${method}`);
      const res = await post(new URL(method, o.apiUrl()).href, body, o.botToken());
      status(res);
      let json: Record<string, unknown>;
      try {
        json = (await res.json()) as Record<string, unknown>;
      } catch {
        throw new SlackCallError(`Slack answered ${method} with something other than JSON`, false);
      }
      if (json.ok !== true) {
        const err = typeof json.error === 'string' ? json.error : 'unknown_error';
        throw new SlackCallError(`Slack refused ${method}: ${err}`, !TRANSIENT.has(err));
      }
      return json;
    },
    async respond(url, body) {
      const res = await post(url, body);
      status(res);
    },
  };
}
