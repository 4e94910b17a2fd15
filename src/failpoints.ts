// Crash points for the crash-safety tests: with PORTCULLIS_FAILPOINTS=name[,name] set, the process
// kills itself with SIGKILL when it reaches a named point. Unset (always in production), a no-op.

const armed = new Set((process.env.PORTCULLIS_FAILPOINTS ?? '').split(',').map((s) => s.trim()).filter(Boolean));

export type Failpoint = 'after-open-intent' | 'after-firewall-open' | 'after-close-intent' | 'after-firewall-close' | 'after-extend-intent' | 'after-approval';

export function failpoint(name: Failpoint): void {
  if (armed.size > 0 && armed.has(name)) {
    process.stderr.write(`failpoint ${name}: SIGKILL\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
