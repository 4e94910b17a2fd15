// Test wiring for the AWS adapter: dummy credentials for the SDK's default chain, a stand-in endpoint, fast retries.
import { AwsSecurityGroupAdapter, type AwsAdapterOptions } from '../../src/firewall/aws-sg.ts';
import { startEc2Endpoint, type Ec2Endpoint, type Ec2EndpointOptions } from './server.ts';

/** Shaped like a real key id so the redaction check means something; never valid anywhere. */
export const DUMMY_KEY_ID = 'AKIAPORTCULLISTEST01';
export const DUMMY_SECRET = 'portcullis/test+secret/never-valid-0123456789';

/** The SDK's default provider chain reads these first; the rest keeps it off the network and off the user's files. */
export function useDummyAwsCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = DUMMY_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = DUMMY_SECRET;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_CONFIG_FILE = '/nonexistent/portcullis-test/config';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/portcullis-test/credentials';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
}

export const GROUP = 'sg-0aaaa1111bbbb2222';
export const OTHER_GROUP = 'sg-0cccc3333dddd4444';
export const REGION = 'eu-west-1';

export interface Harness {
  ep: Ec2Endpoint;
  adapter: AwsSecurityGroupAdapter;
  /** Waits asked for by the retry logic, in order; nothing really sleeps. */
  sleeps: number[];
  make(groupId?: string, opts?: AwsAdapterOptions): AwsSecurityGroupAdapter;
  close(): Promise<void>;
}

export async function harness(opts: Ec2EndpointOptions & { adapter?: AwsAdapterOptions } = {}): Promise<Harness> {
  useDummyAwsCredentials();
  const ep = await startEc2Endpoint({ groups: [GROUP, OTHER_GROUP], ...opts });
  const sleeps: number[] = [];
  const made: AwsSecurityGroupAdapter[] = [];
  const make = (groupId = GROUP, extra: AwsAdapterOptions = {}) => {
    const a = new AwsSecurityGroupAdapter(
      { kind: 'aws-security-group', region: REGION, securityGroupId: groupId, endpoint: ep.url },
      {
        ...opts.adapter,
        ...extra,
        retry: {
          sleep: async (ms) => {
            sleeps.push(ms);
          },
          ...opts.adapter?.retry,
          ...extra.retry,
        },
      },
    );
    made.push(a);
    return a;
  };
  const adapter = make();
  return {
    ep,
    adapter,
    sleeps,
    make,
    async close() {
      for (const a of made) await a.shutdown();
      await ep.close();
    },
  };
}
