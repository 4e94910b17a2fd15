// A small structured logger (JSON lines on stderr). Callers pass codes and ids, never tokens or secrets.
import { AsyncLocalStorage } from 'node:async_hooks';

/** Fields every line logged within a context carries (the HTTP request id), without threading them through calls. */
export const logContext = new AsyncLocalStorage<Record<string, unknown>>();

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(level: string = process.env.PORTCULLIS_LOG ?? 'info', write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = ORDER[(level as Level) in ORDER ? (level as Level) : 'info'];
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...logContext.getStore(), ...fields })}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/** Error facts that are safe to log: code and message of our errors, the class name otherwise. */
export function errorFields(e: unknown): Record<string, unknown> {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return { code: (e as { code: string }).code, error: (e as unknown as Error).message };
  }
  return { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
}
