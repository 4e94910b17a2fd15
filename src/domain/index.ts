// The domain module: ids, principal, grant and its states. Every layer may import it; it imports nothing.
export type { GrantId, TargetId, UserId } from './ids.ts';
export type { Channel, Principal } from './principal.ts';
export { FINAL_STATES, GRANT_STATES, LIVE_STATES, type Approval, type CloseReason, type Grant, type GrantState } from './grant.ts';
