// An EC2-compatible endpoint on 127.0.0.1 for tests and benches: Query protocol in, EC2 XML out, calls counted.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ACTIONS } from './actions.ts';
import { Ec2Error } from './errors.ts';
import { Ec2Model } from './model.ts';
import { QueryParams } from './query.ts';
import { escapeXml } from './xml.ts';

const XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
const VERSION = '2016-11-15';

export interface RecordedCall {
  action: string;
  /** HTTP status answered; 200 or an error's. */
  status: number;
  errorCode?: string | undefined;
  params: QueryParams;
}

interface Injection {
  remaining: number;
  action: string | undefined;
  code: string;
  status: number;
  message: string;
}

export interface Ec2Endpoint {
  url: string;
  model: Ec2Model;
  /** Every request that named an action, in arrival order (throttled and failed ones too). */
  log: RecordedCall[];
  /** Access key ids seen in Authorization headers: proves which credentials the client signed with. */
  accessKeyIds: Set<string>;
  /** Regions seen in the SigV4 credential scope. */
  regions: Set<string>;
  /** Requests for `action` (all actions when omitted), counting refused ones. */
  calls(action?: string): number;
  /** The next `n` requests (for `action`, or any) are answered RequestLimitExceeded, as EC2 throttles. */
  throttle(n: number, action?: string): void;
  /** The next `n` requests (for `action`, or any) fail with the given EC2 error. */
  failNext(n: number, error: { code: string; status: number; message?: string }, action?: string): void;
  resetLog(): void;
  /** Drops throttles and failures not yet used up. */
  resetInjections(): void;
  close(): Promise<void>;
}

export interface Ec2EndpointOptions {
  /** Security groups that exist from the start. */
  groups?: string[];
  /** Inbound rules per group and address family; EC2's default quota is 60. */
  ruleLimit?: number;
}

export async function startEc2Endpoint(options: Ec2EndpointOptions = {}): Promise<Ec2Endpoint> {
  const model = new Ec2Model();
  if (options.ruleLimit !== undefined) model.ruleLimit = options.ruleLimit;
  for (const g of options.groups ?? []) model.addGroup(g);
  const log: RecordedCall[] = [];
  const accessKeyIds = new Set<string>();
  const regions = new Set<string>();
  const injections: Injection[] = [];

  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((e: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`stand-in failure: ${String(e)}`);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const requestId = randomUUID();
    const query = new QueryParams(req.method === 'GET' ? (req.url ?? '').replace(/^[^?]*\??/, '') : body);
    const action = query.get('Action') ?? '';
    const call: RecordedCall = { action, status: 200, params: query };
    if (action) log.push(call);
    const fail = (e: Ec2Error) => {
      call.status = e.status;
      call.errorCode = e.code;
      sendError(res, e, requestId);
    };
    // EC2 refuses unsigned requests; the signature itself is not checked here.
    const auth = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request,/.exec(req.headers.authorization ?? '');
    if (!auth) return fail(new Ec2Error('AuthFailure', 'AWS was not able to validate the provided access credentials', 401));
    if (auth[3] !== 'ec2') return fail(new Ec2Error('AuthFailure', `Credential should be scoped to correct service: 'ec2'.`, 401));
    accessKeyIds.add(auth[1]!);
    regions.add(auth[2]!);
    if (req.method !== 'POST' && req.method !== 'GET') return fail(new Ec2Error('InvalidAction', 'Only GET and POST are supported'));
    if (!action) return fail(new Ec2Error('MissingAction', 'The request must contain the parameter Action'));
    if (query.get('Version') !== VERSION) return fail(new Ec2Error('InvalidParameterValue', `Version ${query.get('Version') ?? '(none)'} is not supported by this stand-in`));
    const handler = ACTIONS[action];
    if (!handler) return fail(new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`));
    const injected = injections.find((i) => i.remaining > 0 && (i.action === undefined || i.action === action));
    if (injected) {
      injected.remaining--;
      return fail(new Ec2Error(injected.code, injected.message, injected.status));
    }
    let members;
    try {
      members = handler(model, query);
    } catch (e) {
      if (e instanceof Ec2Error) return fail(e);
      throw e;
    }
    const name = `${action}Response`;
    const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<${name} xmlns="${XMLNS}"><requestId>${requestId}</requestId>${members.map((m) => m.markup).join('')}</${name}>`;
    res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId });
    res.end(xml);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    model,
    log,
    accessKeyIds,
    regions,
    calls: (action) => log.filter((c) => action === undefined || c.action === action).length,
    throttle(n, action) {
      injections.push({ remaining: n, action, code: 'RequestLimitExceeded', status: 503, message: 'Request limit exceeded.' });
    },
    failNext(n, error, action) {
      injections.push({ remaining: n, action, code: error.code, status: error.status, message: error.message ?? error.code });
    },
    resetLog() {
      log.length = 0;
    },
    resetInjections() {
      injections.length = 0;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** EC2's error document: Response/Errors/Error with Code and Message, and RequestID. */
function sendError(res: ServerResponse, e: Ec2Error, requestId: string): void {
  res.writeHead(e.status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escapeXml(e.code)}</Code><Message>${escapeXml(e.message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
  );
}
