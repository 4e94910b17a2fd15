// Terminal output of the client commands: aligned tables, times left, JSON, and the one error format.
import { EXIT, type ExitCode } from '../../errors.ts';
import { CliError } from './cli-error.ts';
import { redact } from './secrets.ts';

export function out(line = ''): void {
  process.stdout.write(`${redact(line)}\n`);
}

/** Progress and notes go to stderr so that stdout stays the result (and pure JSON with --json). */
export function note(line: string): void {
  process.stderr.write(`${redact(line)}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${redact(JSON.stringify(value, null, 2))}\n`);
}

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** 3725 → "1h 2m 5s"; people read the biggest unit first. */
export function humanSeconds(total: number): string {
  const s = Math.max(0, Math.round(total));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

export function localTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '-' : d.toLocaleString();
}

/** Prints the error (and with --json a JSON error object on stdout) and returns the exit code. */
export function reportError(e: unknown, json: boolean): ExitCode {
  const err = toCliError(e);
  if (json) process.stdout.write(`${redact(JSON.stringify({ error: { code: err.code, message: err.message, exit: err.exit, ...(err.field ? { field: err.field } : {}), ...(err.hint ? { hint: err.hint } : {}), ...err.details } }))}\n`);
  process.stderr.write(redact(`portcullis: ${err.message} [${err.code}]\n${err.hint ? `  next: ${err.hint}\n` : ''}`));
  return err.exit;
}

export function toCliError(e: unknown): CliError {
  if (e instanceof CliError) return e;
  const code = (e as { code?: unknown })?.code;
  // PortcullisErrors from shared code (the device flow) carry the broker's codes and safe messages.
  if (e instanceof Error && e.name === 'PortcullisError' && typeof code === 'string') return new CliError(code, e.message);
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new CliError('ERROR', `unexpected error: ${msg.slice(0, 300)}`, { hint: 'run again; if it repeats, report it with the command you ran' });
}

export { EXIT };
