// AWS adapter bench: open/close latency through the real SDK against the EC2 stand-in, and API calls to expire 1,000 grants on one group.
import type { GrantId } from '../src/domain/index.ts';
import { AwsSecurityGroupAdapter } from '../src/firewall/aws-sg.ts';
import type { RuleSpec } from '../src/firewall/port.ts';
import { GROUP, REGION, useDummyAwsCredentials } from '../test/ec2-endpoint/harness.ts';
import { startEc2Endpoint } from '../test/ec2-endpoint/server.ts';
import { stats, type BenchRow } from './stats.ts';

const LATENCY_SAMPLES = 300;
const EXPIRING = 1_000;

function spec(i: number): RuleSpec {
  return {
    grantId: `bench-${i}` as GrantId,
    targetId: 'bench',
    source: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`,
    port: 3389,
    protocol: 'tcp',
    expiresAt: Date.now() + 3_600_000,
  };
}

export async function run(): Promise<BenchRow[]> {
  useDummyAwsCredentials();
  // EC2 allows 60 inbound rules per group by default; 1,000 live rules on one group needs the stand-in's limit raised
  // (as a quota increase would, AWS allowing up to 1,000 rules per group when fewer groups per interface are used).
  const ep = await startEc2Endpoint({ groups: [GROUP], ruleLimit: EXPIRING + LATENCY_SAMPLES });
  const adapter = new AwsSecurityGroupAdapter({ kind: 'aws-security-group', region: REGION, securityGroupId: GROUP, endpoint: ep.url });
  try {
    // Warm the SDK (credential resolution, endpoint, keep-alive socket) so the first sample is not an outlier of setup.
    await adapter.close([await adapter.open(spec(999_999))]);

    const openMs: number[] = [];
    const closeMs: number[] = [];
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      let t = performance.now();
      const ref = await adapter.open(spec(i));
      openMs.push(performance.now() - t);
      t = performance.now();
      await adapter.close([ref]);
      closeMs.push(performance.now() - t);
    }

    const refs: string[] = [];
    for (let i = 0; i < EXPIRING; i++) refs.push(await adapter.open(spec(10_000 + i)));
    ep.resetLog();
    const t = performance.now();
    // The core hands one close() per backend with every ref due in a sweep (Broker.finishClosing).
    await adapter.close(refs);
    const expireMs = performance.now() - t;
    const revokes = ep.calls('RevokeSecurityGroupIngress');
    const total = ep.calls();
    const left = ep.model.ingressRules(GROUP).length;
    if (left !== 0) throw new Error(`bench: ${left} rules survived the batched close`);

    const o = stats(openMs);
    const c = stats(closeMs);
    const note = 'real @aws-sdk/client-ec2 over loopback HTTP to the in-process EC2 stand-in; excludes AWS network and service time';
    return [
      { bench: 'aws', metric: 'open latency median', value: round(o.median), unit: 'ms', note: `${LATENCY_SAMPLES} opens, 1 AuthorizeSecurityGroupIngress each; ${note}` },
      { bench: 'aws', metric: 'open latency p99', value: round(o.p99), unit: 'ms', note },
      { bench: 'aws', metric: 'close latency median', value: round(c.median), unit: 'ms', note: `single-rule close, 1 RevokeSecurityGroupIngress each; ${note}` },
      { bench: 'aws', metric: 'close latency p99', value: round(c.p99), unit: 'ms', note },
      {
        bench: 'aws',
        metric: 'API calls to expire 1000 grants (one group)',
        value: total,
        unit: 'calls',
        note: `${revokes} RevokeSecurityGroupIngress of up to 100 rule ids (unbatched: ${EXPIRING}); all due in one sweep; stand-in rule limit raised from 60 to ${EXPIRING + LATENCY_SAMPLES} to hold 1000 live rules on one group`,
      },
      { bench: 'aws', metric: 'time to revoke 1000 rules (batched)', value: round(expireMs), unit: 'ms', note },
    ];
  } finally {
    await adapter.shutdown();
    await ep.close();
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
