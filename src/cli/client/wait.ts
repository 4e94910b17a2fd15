// Waits for a requested grant to become active: polls the broker, shows progress, and turns every end into an exit code.
// Ctrl-C (or --timeout) while the request is still waiting withdraws it: a port nobody waits for must not open later.
import type { BrokerApi } from './api.ts';
import { CliError } from './cli-error.ts';
import { FINAL, type GrantView } from './grant-view.ts';
import { humanSeconds, note, reportError } from './output.ts';
import { Progress } from './progress.ts';

export interface WaitOptions {
  pollMs: number;
  /** Client-side deadline in ms from now; undefined waits until the broker decides. */
  timeoutMs?: number | undefined;
  flag: string;
  /** Holds the loop once the person pressed Ctrl-C, and lets it stop its spinner first. */
  interrupts: Pick<Interrupts, 'gate' | 'onCancel'>;
}

/** Cancels `grant` (if it is still cancellable) and exits 130; a second Ctrl-C exits at once. */
export class Interrupts {
  private grant: GrantView | undefined;
  private pending = false;
  private readonly cleanups: (() => void)[] = [];
  private readonly handler = () => void this.onSignal();

  constructor(private readonly api: BrokerApi, private readonly flag: string) {
    process.on('SIGINT', this.handler);
  }

  /** The request now exists; an interrupt that came before it is acted on now (and this never resolves). */
  async track(grant: GrantView): Promise<void> {
    this.grant = grant;
    if (this.pending) await this.cancelAndExit();
  }

  /**
   * Callers await this between steps: once Ctrl-C was pressed it never resolves, so the command
   * cannot print success and exit 0 while the withdrawal is still on its way.
   */
  /** Runs before the withdrawal is printed (e.g. to stop a spinner). */
  onCancel(fn: () => void): void {
    this.cleanups.push(fn);
  }

  gate(): Promise<void> {
    return this.pending ? new Promise<void>(() => {}) : Promise.resolve();
  }

  dispose(): void {
    process.off('SIGINT', this.handler);
  }

  private onSignal(): void {
    if (this.pending) process.exit(130);
    this.pending = true;
    if (this.grant) void this.cancelAndExit();
    // Before the broker answered there is no id to cancel; track() does it when the answer arrives.
  }

  private async cancelAndExit(): Promise<never> {
    const g = this.grant!;
    for (const fn of this.cleanups) fn();
    await cancel(this.api, g, this.flag, 'interrupted');
    process.exit(reportError(new CliError('CANCELLED', `interrupted; request ${g.id} for ${g.target} was withdrawn`, { details: { grant: g.id } }), false));
  }
}

/** Withdraws a waiting request; if it opened meanwhile it is closed again, since nobody is there to use it. */
export async function cancel(api: BrokerApi, g: GrantView, flag: string, why: string): Promise<void> {
  try {
    const { body } = await api.post<{ grant: GrantView }>(`/grants/${encodeURIComponent(g.id)}/revoke`, {});
    note(`${why}: request ${g.id} is now ${body.grant.state}${body.grant.closeReason ? ` (${body.grant.closeReason})` : ''}.`);
  } catch (e) {
    note(`${why}, but request ${g.id} could not be withdrawn (${(e as Error).message}); check it with 'portcullis ls ${g.id}${flag}' and close it with 'portcullis close ${g.id}${flag}'.`);
  }
}

export async function waitForActive(api: BrokerApi, first: GrantView, o: WaitOptions): Promise<GrantView> {
  const progress = new Progress();
  o.interrupts.onCancel(() => progress.stop());
  const started = Date.now();
  const deadline = o.timeoutMs === undefined ? undefined : started + o.timeoutMs;
  let g = first;
  try {
    for (;;) {
      if (g.state === 'active') return g;
      if (FINAL.includes(g.state) || g.state === 'closing') throw ended(g, o.flag);
      const elapsed = humanSeconds((Date.now() - started) / 1000);
      if (g.state === 'pending' || g.state === 'requested') progress.update(`waiting for an approver (request ${g.id}; Ctrl-C withdraws it)`, elapsed);
      else progress.update(`approved; placing the firewall rule for ${g.target}`, elapsed);
      if (deadline !== undefined && Date.now() >= deadline) {
        progress.stop();
        await cancel(api, g, o.flag, 'timed out');
        throw new CliError('WAIT_TIMEOUT', `gave up after ${humanSeconds(o.timeoutMs! / 1000)}: request ${g.id} was still ${g.state}`, {
          hint: 'ask an approver to look sooner, or wait longer with --timeout',
          details: { grant: g.id },
        });
      }
      await new Promise((r) => setTimeout(r, deadline === undefined ? o.pollMs : Math.max(0, Math.min(o.pollMs, deadline - Date.now()))));
      await o.interrupts.gate();
      g = (await api.get<{ grant: GrantView }>(`/grants/${encodeURIComponent(g.id)}`)).grant;
      await o.interrupts.gate();
    }
  } finally {
    progress.stop();
  }
}

function ended(g: GrantView, flag: string): CliError {
  const details = { grant: g.id, state: g.state };
  switch (g.state) {
    case 'denied':
      return new CliError('GRANT_DENIED', `request ${g.id} for ${g.target} was denied${g.failure ? `: ${g.failure}` : ''}`, {
        hint: 'ask the approver why, or ask again with a clearer --reason',
        details,
      });
    case 'expired':
      return new CliError('GRANT_EXPIRED', `request ${g.id} for ${g.target} expired before anyone approved it`, { hint: 'ask an approver directly, then ask again', details });
    case 'failed':
      return new CliError('GRANT_FAILED', `the firewall rule for ${g.target} could not be placed${g.failure ? `: ${g.failure}` : ''}`, {
        hint: 'nothing is open; try again, and tell the broker operator if it fails again',
        details,
      });
    default:
      return new CliError('GRANT_CLOSED', `request ${g.id} for ${g.target} was closed (${g.closeReason ?? g.state}) before it opened`, {
        hint: `'portcullis ls ${g.id}${flag}' shows what happened`,
        details,
      });
  }
}
