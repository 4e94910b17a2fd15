// The grant as the API returns it, and the few facts about it the commands print.
import { connectEndpoint } from '../../connect/rdp.ts';

export type GrantState = 'requested' | 'pending' | 'approved' | 'opening' | 'active' | 'extending' | 'closing' | 'closed' | 'denied' | 'expired' | 'failed';

export interface GrantView {
  id: string;
  target: string;
  port: number;
  source: string;
  state: GrantState;
  closeReason: string | null;
  reason: string;
  requester: string;
  requesterEmail?: string | null;
  durationSeconds: number;
  channel?: string;
  createdAt?: string | null;
  activatedAt?: string | null;
  expiresAt: string | null;
  closedAt?: string | null;
  secondsLeft: number | null;
  /** host:port of the target as configured, or null. */
  connect: string | null;
  failure?: string | null;
}

export const FINAL: readonly GrantState[] = ['closed', 'denied', 'expired', 'failed'];
export const WAITING: readonly GrantState[] = ['requested', 'pending', 'approved', 'opening'];

/** host:port to connect to: the target's host with the grant's port (the web's .rdp file uses the same). */
export function endpoint(g: GrantView): { host: string; port: number; address: string } | undefined {
  return connectEndpoint(g.connect, g.port);
}

export function who(g: GrantView): string {
  return g.requesterEmail ? `${g.requesterEmail} (${g.requester})` : g.requester;
}
