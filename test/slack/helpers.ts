// A broker wired to a Slack stand-in (the simulated workspace on its own loopback port), and browserless sign-in.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { SlackWorkspace, type Message } from '../../src/dev/slack/workspace.ts';
import type { PortcullisOptions } from '../../src/app.ts';
import { startBroker, tempDir, testConfig, type RunningBroker } from '../helpers/broker.ts';
import type { CookieJar, LoginChoice, TestIdp } from '../helpers/idp.ts';

export const TEAM = 'T0TEST0001';
export const SIGNING_SECRET = 'test-signing-secret-0123456789abcdef';
export const BOT_TOKEN = 'xoxb-test-0000-bot-token';
export const APPROVALS = 'CAPPROVALS';
export const ALERTS = 'CALERTS01';

export const TARGETS = [
  { id: 'lab-pc', description: 'Lab PC', connect: 'lab-pc.example.test:3389', tags: { env: 'dev', customer: 'internal' }, firewall: { kind: 'memory' } },
  { id: 'prod-app', description: 'Production app server', connect: 'prod-app.example.test:3389', tags: { env: 'prod', customer: 'internal' }, firewall: { kind: 'memory' } },
  { id: 'prod-dc', description: 'Domain controller', connect: 'dc.example.test:3389', tags: { env: 'prod', customer: 'internal', role: 'domain-controller' }, firewall: { kind: 'memory' } },
];

export interface SlackWorld {
  broker: RunningBroker;
  ws: SlackWorkspace;
  standinUrl: string;
  stop(): Promise<void>;
}

export async function startStandin(users = [
  { id: 'UALICE', name: 'alice', realName: 'Alice' },
  { id: 'UBOB', name: 'bob', realName: 'Bob' },
  { id: 'UCAROL', name: 'carol', realName: 'Carol' },
  { id: 'UMALLORY', name: 'mallory', realName: 'Mallory' },
]): Promise<{ ws: SlackWorkspace; url: string; server: Server }> {
  const app = express();
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ws = new SlackWorkspace({ teamId: TEAM, botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET, brokerUrl: '', hookBase: url, users, channels: [{ id: APPROVALS, name: 'approvals' }, { id: ALERTS, name: 'security-alerts' }] });
  app.use(ws.router);
  return { ws, url, server };
}

export async function slackWorld(overrides: Record<string, unknown> = {}, opts: PortcullisOptions = {}): Promise<SlackWorld> {
  const tmp = tempDir('portcullis-slack-');
  const standin = await startStandin();
  const slack = { signingSecret: SIGNING_SECRET, botToken: BOT_TOKEN, approvalsChannel: APPROVALS, teamIds: [TEAM], apiUrl: `${standin.url}/api/`, ...((overrides.slack as object) ?? {}) };
  const broker = await startBroker(testConfig(tmp.dir, { dev: { embeddedIdp: true }, targets: TARGETS, ...overrides, slack }), { slack: { retry: { baseMs: 50, maxMs: 400 } }, ...opts });
  standin.ws.o.brokerUrl = broker.url;
  return {
    broker,
    ws: standin.ws,
    standinUrl: standin.url,
    async stop() {
      await broker.stop();
      standin.server.closeAllConnections();
      await new Promise<void>((r) => standin.server.close(() => r()));
      tmp.cleanup();
    },
  };
}

/** The text of a message including its blocks, for assertions. */
export function textOf(m: Message | undefined): string {
  if (!m) return '';
  const parts: string[] = [m.text];
  for (const b of (m.blocks ?? []) as any[]) {
    if (b.text?.text) parts.push(b.text.text);
    for (const f of b.fields ?? []) parts.push(f.text);
    for (const e of b.elements ?? []) parts.push(e.text?.text ?? e.text ?? '', e.url ?? '');
  }
  return parts.join('\n');
}

/** The URL of the first link button of a message. */
export function linkOf(m: Message | { blocks?: unknown[] } | undefined): string | undefined {
  for (const b of ((m?.blocks ?? []) as any[])) for (const e of b.elements ?? []) if (e.url) return e.url as string;
  return undefined;
}

/** A free loopback port: the external IdP must know the broker's callback before the broker starts. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Follows a broker page through sign-in at the test IdP like a browser; returns the final page. */
export async function browse(jar: CookieJar, idp: TestIdp, url: string, choice: LoginChoice, init: RequestInit = {}): Promise<{ url: string; status: number; html: string }> {
  let next = url;
  let req: RequestInit = init;
  for (let hop = 0; hop < 20; hop++) {
    if (new URL(next).origin === new URL(idp.issuer).origin) {
      next = (await idp.authorize(next, jar, choice)).href;
      req = {};
      continue;
    }
    const res = await jar.fetch(next, req);
    req = {};
    if (res.status >= 300 && res.status < 400) {
      next = new URL(res.headers.get('location')!, next).href;
      continue;
    }
    return { url: next, status: res.status, html: await res.text() };
  }
  throw new Error('too many redirects');
}

/** Submits the page's confirm form (its CSRF field included). */
export async function submitConfirm(jar: CookieJar, idp: TestIdp, page: { url: string; html: string }, choice: LoginChoice): Promise<{ url: string; status: number; html: string }> {
  const csrf = /name="_csrf" value="([^"]*)"/.exec(page.html)?.[1] ?? '';
  const action = /<form method="post" action="([^"]*)"/.exec(page.html)?.[1] ?? '';
  return browse(jar, idp, new URL(action, page.url).href, choice, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrf }) });
}
