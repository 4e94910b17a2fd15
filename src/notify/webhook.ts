// The generic webhook sink: each grant and rule event as JSON, signed with HMAC-SHA256 so the receiver knows it is ours.
import { createHmac } from 'node:crypto';
import type { AuditEvent } from '../audit/chain.ts';
import { DeliveryError, type Notification, type NotifySink } from './port.ts';

/** Header names: `X-Portcullis-Signature: v1=<hex hmac-sha256(secret, "<timestamp>.<body>")>`. */
export const SIGNATURE_HEADER = 'x-portcullis-signature';
export const TIMESTAMP_HEADER = 'x-portcullis-timestamp';

export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export function webhookSink(index: number, cfg: { url: string; secret: string }, clock: () => number = Date.now): NotifySink {
  return {
    name: `webhook:${index}`,
    async derive(e: AuditEvent): Promise<Notification[]> {
      // Watch alerts (gate.alert, exposure.detected) concern no grant but are what a webhook is for.
      const watch = e.type === 'gate.alert' || e.type === 'exposure.detected';
      if (!watch && (!e.grant || !/^(grant|rule)\./.test(e.type))) return [];
      // The fields another tool needs; the chain's own fields stay in the audit export.
      const event = { seq: e.seq, time: e.time, type: e.type, actor: e.actor, grant: e.grant, target: e.target, sourceIp: e.sourceIp, port: e.port, reason: e.reason, policyIds: e.policyIds, detail: e.detail };
      return [{ key: String(e.seq), grantId: e.grant ?? null, payload: { event } }];
    },
    async deliver(payload, key): Promise<void> {
      const body = JSON.stringify(payload.event);
      const ts = String(Math.floor(clock() / 1000));
      let res: Response;
      try {
        res = await fetch(cfg.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: webhookSignature(cfg.secret, ts, body), 'x-portcullis-delivery': key },
          body,
          signal: AbortSignal.timeout(10_000),
          redirect: 'error',
        });
      } catch (e) {
        throw new DeliveryError(`webhook did not answer (${(e as Error).name})`, false);
      }
      if (res.ok) return;
      if (res.status === 429) {
        const s = Number(res.headers.get('retry-after'));
        throw new DeliveryError('webhook rate limit (429)', false, Number.isFinite(s) && s >= 0 ? Math.min(s, 3600) * 1000 : undefined);
      }
      throw new DeliveryError(`webhook answered ${res.status}`, res.status < 500 && res.status !== 408);
    },
  };
}
