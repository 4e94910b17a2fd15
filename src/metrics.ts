// Prometheus metrics of the broker, one registry per instance (tests run several in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'portcullis_grant_requests_total', help: 'Access requests by outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly decisionSeconds = new Histogram({ name: 'portcullis_request_seconds', help: 'Time to answer an access request', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry] });
  readonly expiryLagSeconds = new Histogram({ name: 'portcullis_expiry_lag_seconds', help: 'Delay between a grant\'s expiry and its rule being removed', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 30], registers: [this.registry] });
  readonly auditEvents = new Counter({ name: 'portcullis_audit_events_total', help: 'Audit events written, by type', labelNames: ['type'], registers: [this.registry] });
  readonly authFailures = new Counter({ name: 'portcullis_auth_failures_total', help: 'Refused credentials, by code', labelNames: ['code'], registers: [this.registry] });
  readonly auditSinkFailures = new Counter({ name: 'portcullis_audit_sink_failures_total', help: 'Audit listener or JSONL sink writes that failed (the store has the events; the sink catches up)', registers: [this.registry] });
  readonly gateRestored = new Counter({ name: 'portcullis_gate_restored_total', help: 'Firewall baselines found missing or altered and restored, by backend', labelNames: ['backend'], registers: [this.registry] });
  readonly gateUp = new Gauge({ name: 'portcullis_gate_up', help: '1 while the backend\'s baseline was in place at the last check, else 0', labelNames: ['backend'], registers: [this.registry] });
  readonly refusalsUnaudited = new Counter({ name: 'portcullis_refusals_unaudited_total', help: 'Anonymous refusals past the audit budget: counted here and summarised once per window', labelNames: ['kind'], registers: [this.registry] });
  readonly rateLimited = new Counter({ name: 'portcullis_rate_limited_total', help: 'Requests answered 429 by a rate limit, by limit', labelNames: ['limit'], registers: [this.registry] });
  readonly firewallSeconds = new Histogram({ name: 'portcullis_firewall_operation_seconds', help: 'Time of firewall backend calls (open, close, list), by backend kind', labelNames: ['kind', 'op'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 100], registers: [this.registry] });
  readonly firewallErrors = new Counter({ name: 'portcullis_firewall_errors_total', help: 'Failed firewall backend calls, by backend kind, call and error code', labelNames: ['kind', 'op', 'code'], registers: [this.registry] });
  readonly gateBlockedAttempts = new Counter({ name: 'portcullis_gate_blocked_attempts_total', help: 'Packets the gate dropped (attempts), by target, port and protocol, as the kernel counted them', labelNames: ['target', 'port', 'protocol'], registers: [this.registry] });
  readonly gateAttemptSources = new Gauge({ name: 'portcullis_gate_attempt_sources', help: 'Distinct sources (per destination, protocol and port) in the attempt sets at the last sweep, by target', labelNames: ['target'], registers: [this.registry] });
  readonly gateAttemptsBySource = new Gauge({ name: 'portcullis_gate_attempts_by_source', help: 'Attempts of the busiest sources still in the attempt sets at the last sweep (watch.attempts.top of them)', labelNames: ['source', 'target', 'port', 'protocol'], registers: [this.registry] });
  readonly gateAttemptsOverflow = new Counter({ name: 'portcullis_gate_attempts_overflow_total', help: 'Attempts dropped while the attempt set was full (counted, their sources not recorded), by backend', labelNames: ['backend'], registers: [this.registry] });
  readonly grantsByState: Gauge;

  constructor(stateCounts: () => Promise<Record<string, number>>) {
    collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_' });
    this.grantsByState = new Gauge({
      name: 'portcullis_grants',
      help: 'Grants by state',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        const counts = await stateCounts();
        this.reset();
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
  }
}
