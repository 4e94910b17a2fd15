// Measures every backend call the broker makes (open, close, list): latency and errors per backend kind, for /metrics.
// A Proxy, so adapters keep their identity per backend, their optional capabilities and any method added later.
import type { Metrics } from '../metrics.ts';
import type { FirewallAdapter } from './port.ts';

const MEASURED = new Set(['open', 'close', 'list']);

export function instrumentFirewalls(firewalls: ReadonlyMap<string, FirewallAdapter>, metrics: Metrics): Map<string, FirewallAdapter> {
  const wrapped = new Map<FirewallAdapter, FirewallAdapter>();
  const out = new Map<string, FirewallAdapter>();
  for (const [target, fw] of firewalls) {
    let w = wrapped.get(fw);
    if (!w) {
      w = instrument(fw, metrics);
      wrapped.set(fw, w);
    }
    out.set(target, w);
  }
  return out;
}

function instrument(fw: FirewallAdapter, metrics: Metrics): FirewallAdapter {
  return new Proxy(fw, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (typeof prop !== 'string' || !MEASURED.has(prop)) return value.bind(target);
      return async (...args: unknown[]) => {
        const labels = { kind: target.kind, op: prop };
        const end = metrics.firewallSeconds.startTimer(labels);
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } catch (e) {
          const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'UNKNOWN';
          metrics.firewallErrors.inc({ ...labels, code });
          throw e;
        } finally {
          end();
        }
      };
    },
  });
}
