// The notification port: a sink turns audit events into notifications and delivers one at a time.
import type { AuditEvent } from '../audit/chain.ts';

export interface Notification {
  /** Unique per notification: deriving the same event twice (after a crash, on two replicas) adds nothing. */
  key: string;
  /** Notifications of one grant are delivered in order; other grants do not wait for it. */
  grantId: string | null;
  payload: Record<string, unknown>;
}

export interface NotifySink {
  readonly name: string;
  /** What an event calls for; may read the store, never writes it. */
  derive(event: AuditEvent): Promise<Notification[]>;
  /** Notifications due because of time passing (e.g. "5 minutes left"); keys make repeats harmless. */
  scan?(now: number): Promise<Notification[]>;
  /** Sends one. A DeliveryError says whether and when to retry; anything else is retried with backoff. */
  deliver(payload: Record<string, unknown>, key: string): Promise<void>;
}

export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}
