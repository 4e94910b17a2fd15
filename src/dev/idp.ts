// The embedded development OpenID Provider (dev.embeddedIdp): demo users, password + real TOTP, device flow.
// Loopback only: the config schema refuses dev.embeddedIdp unless server.listen is a loopback address.
import { randomBytes } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import { devIdpStateFile } from './state.ts';
import { enrolPage, esc, loginPage, messagePage, otpPage, providerFormPage } from './pages.ts';

export interface DevUser {
  id: string;
  password: string;
  name: string;
  email: string;
  groups: string[];
  role: string;
  /** What this persona shows in the demo (the start banner says it). */
  shows?: string | undefined;
  /** Base32 TOTP secret; undefined until the user enrols. */
  totpSecret?: string | undefined;
}

export interface DevIdpOptions {
  /** e.g. http://127.0.0.1:8080/idp — the mount path is taken from it. */
  issuer: string;
  /** The broker's public URL, for the banner. */
  publicUrl: string;
  webClient: { id: string; secret: string; redirectUris: string[]; postLogoutRedirectUris?: string[] };
  cliClient: { id: string };
  users?: DevUser[];
  /** Where the signing key and enrolments persist (./data for `npm start`); undefined = fresh each start. */
  stateDir?: string | undefined;
}

export interface DevIdp {
  /** Mount with app.use(new URL(issuer).pathname, handler). */
  handler: express.Router;
  users: Map<string, DevUser>;
  bannerLines(): string[];
  close(): Promise<void>;
}

// Fixed so that a demo authenticator entry keeps working across restarts; these guard nothing real.
export const DEMO_USERS: DevUser[] = [
  { id: 'alice', password: 'alice-demo', name: 'Alice Requester', email: 'alice@example.test', groups: ['engineers'], role: 'requester', shows: 'opens demo-pc at once; asks for demo-dc01 (needs bob and carol)', totpSecret: 'JBSWY3DPEHPK3PXPALICEAAA' },
  { id: 'bob', password: 'bob-demo', name: 'Bob Approver', email: 'bob@example.test', groups: ['approvers', 'engineers'], role: 'approver', shows: 'approves or denies alice at /approvals', totpSecret: 'JBSWY3DPEHPK3PXPBOBAAAAA' },
  { id: 'carol', password: 'carol-demo', name: 'Carol Second Approver', email: 'carol@example.test', groups: ['approvers', 'engineers', 'msp-duty-managers'], role: 'approver, MSP duty manager', shows: "the second approval of demo-dc01; approves tess's acme requests", totpSecret: 'JBSWY3DPEHPK3PXPCAROLAAA' },
  { id: 'tess', password: 'tess-demo', name: 'Tess MSP Technician', email: 'tess@msp.example.test', groups: ['msp-technicians', 'msp-customer-acme'], role: 'MSP technician', shows: 'asks for acme-pc01 with a ticket (T-…); carol approves', totpSecret: 'JBSWY3DPEHPK3PXPTESSAAAA' },
  { id: 'nina', password: 'nina-demo', name: 'Nina NoMFA', email: 'nina@example.test', groups: ['engineers'], role: 'requester without MFA', shows: 'is refused without MFA, then enrols a TOTP app (QR code)' },
  { id: 'ada', password: 'ada-demo', name: 'Ada Admin', email: 'ada@example.test', groups: ['portcullis-admins', 'auditors'], role: 'admin and auditor', shows: "sees /audit (filters, chain check, export) and /admin (everyone's grants, revoke, health)", totpSecret: 'JBSWY3DPEHPK3PXPADAAAAAA' },
];

export function totpFor(user: DevUser): TOTP {
  return new TOTP({ issuer: 'Portcullis Dev ID', label: user.id, algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(user.totpSecret!) });
}

interface Pending {
  user: string;
  /** Set when the enrolment page was shown, until the code is confirmed. */
  enrolSecret?: string;
  /** False when the broker asked for a second factor (step-up after MFA_REQUIRED): skipping again would loop. */
  allowSkip?: boolean;
  attempts: number;
}

export async function createDevIdp(o: DevIdpOptions): Promise<DevIdp> {
  const users = new Map((o.users ?? DEMO_USERS).map((u) => [u.id, { ...u }]));
  const mountPath = new URL(o.issuer).pathname.replace(/\/$/, '');
  const pending = new Map<string, Pending>();
  // Last accepted TOTP time step per user: a code works once (RFC 6238 §5.2).
  const lastStep = new Map<string, number>();

  const store = o.stateDir ? devIdpStateFile(o.stateDir) : undefined;
  const saved = store?.load() ?? { enrolments: {} };
  for (const [id, secret] of Object.entries(saved.enrolments)) {
    const u = users.get(id);
    if (u && !u.totpSecret) u.totpSecret = secret;
  }
  let jwk = saved.signingKey;
  if (!jwk) {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    jwk = { ...(await exportJWK(privateKey)), kid: `dev-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  }
  const cookieKey = saved.cookieKey ?? randomBytes(32).toString('hex');
  const state = { signingKey: jwk, cookieKey, enrolments: saved.enrolments };
  store?.save(state);

  const config: Configuration = {
    clients: [
      {
        client_id: o.webClient.id,
        client_secret: o.webClient.secret,
        client_name: 'Portcullis',
        redirect_uris: o.webClient.redirectUris,
        post_logout_redirect_uris: o.webClient.postLogoutRedirectUris ?? [],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        require_auth_time: true,
      },
      {
        client_id: o.cliClient.id,
        client_name: 'Portcullis CLI',
        redirect_uris: [],
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        token_endpoint_auth_method: 'none',
        require_auth_time: true,
      },
    ],
    jwks: { keys: [jwk as never] },
    cookies: { keys: [cookieKey] },
    claims: {
      openid: ['sub', 'amr', 'acr', 'auth_time', 'sid'],
      email: ['email', 'email_verified'],
      profile: ['name', 'groups'],
    },
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = providerFormPage('Sign out', 'Sign out of the development identity provider too?', form, `<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Yes, sign me out</button><button class="link" type="submit" form="op.logoutForm">No, stay signed in</button>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = messagePage('Signed out', 'You are signed out.');
        },
      },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource: async (ctx, form, _out, err) => {
          const msg = err ? '<div class="error">That code is not valid or has expired. Check the code in your terminal.</div>' : '';
          ctx.body = providerFormPage('Connect a device', 'Enter the code shown by <code>portcullis login</code>.', msg + form, '<button type="submit" form="op.deviceInputForm">Continue</button>');
        },
        userCodeConfirmSource: async (ctx, form, client, _info, userCode) => {
          ctx.body = providerFormPage('Confirm the device', `<strong>${esc(String(client.clientName ?? client.clientId))}</strong> is asking to sign in as you. The code in your terminal must be <strong>${esc(userCode)}</strong>.`, form, '<button type="submit" form="op.deviceConfirmForm" autofocus>Yes, it is me</button><button class="link" type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Cancel</button>');
        },
        successSource: async (ctx) => {
          ctx.body = messagePage('Device connected', 'You can close this page and return to your terminal.');
        },
      },
      revocation: { enabled: true },
    },
    interactions: { url: (_ctx: KoaContextWithOIDC, interaction) => `${mountPath}/interaction/${interaction.uid}` },
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      // Portcullis is a first-party app of this IdP: consent is implied.
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      const grant = existing ?? new ctx.oidc.provider.Grant({ accountId: ctx.oidc.session!.accountId!, clientId: ctx.oidc.client!.clientId });
      grant.addOIDCScope('openid email profile offline_access');
      await grant.save();
      return grant;
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: { IdToken: 3600, AccessToken: 3600, AuthorizationCode: 60, DeviceCode: 600, RefreshToken: 8 * 3600, Interaction: 900, Session: 12 * 3600, Grant: 12 * 3600 },
    async findAccount(_ctx, sub) {
      const u = users.get(sub);
      if (!u) return undefined;
      return { accountId: sub, claims: async () => ({ sub, name: u.name, email: u.email, email_verified: true, groups: u.groups }) };
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = messagePage('Something went wrong', String(out.error_description ?? out.error ?? 'error'));
    },
  };

  const provider = new Provider(o.issuer, config);
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '4kb' });
  const noStore = (_req: Request, res: Response, next: () => void) => {
    res.set('Cache-Control', 'no-store');
    next();
  };

  const action = (uid: string, step: string) => `${mountPath}/interaction/${uid}/${step}`;
  const clientName = async (id: unknown) => {
    const c = typeof id === 'string' ? await provider.Client.find(id) : undefined;
    return String(c?.clientName ?? c?.clientId ?? 'Portcullis');
  };

  router.get('/interaction/:uid', noStore, async (req, res) => {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name !== 'login') {
      // Consent is implied by loadExistingGrant; any other prompt means the request cannot proceed.
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'unsupported interaction' });
      return;
    }
    res.type('html').send(loginPage(action(details.uid, 'login'), await clientName(details.params.client_id)));
  });

  router.post('/interaction/:uid/login', noStore, form, async (req, res) => {
    const details = await provider.interactionDetails(req, res);
    const login = String(req.body?.login ?? '');
    const u = users.get(login);
    if (!u || !equalStrings(u.password, String(req.body?.password ?? ''))) {
      res.status(401).type('html').send(loginPage(action(details.uid, 'login'), await clientName(details.params.client_id), 'Wrong username or password.', login));
      return;
    }
    if (u.totpSecret) {
      pending.set(details.uid, { user: u.id, attempts: 0 });
      res.type('html').send(otpPage(action(details.uid, 'otp'), u.id));
      return;
    }
    const secret = new Secret({ size: 20 }).base32;
    const prompt = String(details.params.prompt ?? '').split(' ');
    const allowSkip = !prompt.includes('login') && details.params.max_age === undefined && details.params.acr_values === undefined;
    pending.set(details.uid, { user: u.id, enrolSecret: secret, allowSkip, attempts: 0 });
    res.type('html').send(await enrolment(details.uid, u, secret, allowSkip));
  });

  async function enrolment(uid: string, u: DevUser, secret: string, allowSkip: boolean, error?: string): Promise<string> {
    const uri = totpFor({ ...u, totpSecret: secret }).toString();
    return enrolPage(action(uid, 'otp'), allowSkip ? action(uid, 'skip') : undefined, u.id, await QRCode.toDataURL(uri, { margin: 1, width: 180 }), secret, error);
  }

  router.post('/interaction/:uid/otp', noStore, form, async (req, res) => {
    const details = await provider.interactionDetails(req, res);
    const p = pending.get(details.uid);
    const u = p ? users.get(p.user) : undefined;
    if (!p || !u) {
      res.status(400).type('html').send(messagePage('Start again', 'This sign-in step has expired.'));
      return;
    }
    const secret = p.enrolSecret ?? u.totpSecret!;
    const totp = totpFor({ ...u, totpSecret: secret });
    const token = String(req.body?.otp ?? '').replace(/\s/g, '');
    const delta = /^\d{6}$/.test(token) ? totp.validate({ token, window: 1 }) : null;
    const step = Math.floor(Date.now() / 1000 / 30) + (delta ?? 0);
    if (delta === null || step <= (lastStep.get(u.id) ?? -1)) {
      p.attempts += 1;
      if (p.attempts >= 5) {
        pending.delete(details.uid);
        await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'too many wrong codes' });
        return;
      }
      const msg = 'That code is not valid. Wait for the next code and try again.';
      res.status(401).type('html').send(p.enrolSecret ? await enrolment(details.uid, u, secret, p.allowSkip ?? false, msg) : otpPage(action(details.uid, 'otp'), u.id, msg));
      return;
    }
    lastStep.set(u.id, step);
    if (p.enrolSecret) {
      u.totpSecret = p.enrolSecret;
      state.enrolments[u.id] = p.enrolSecret;
      store?.save(state);
    }
    pending.delete(details.uid);
    // amr "otp" only after a verified TOTP code (RFC 8176).
    await provider.interactionFinished(req, res, { login: { accountId: u.id, amr: ['pwd', 'otp'] } }, { mergeWithLastSubmission: false });
  });

  router.post('/interaction/:uid/skip', noStore, async (req, res) => {
    const details = await provider.interactionDetails(req, res);
    const p = pending.get(details.uid);
    if (!p?.enrolSecret || !p.allowSkip) {
      res.status(400).type('html').send(messagePage('Start again', 'This sign-in step has expired.'));
      return;
    }
    pending.delete(details.uid);
    await provider.interactionFinished(req, res, { login: { accountId: p.user, amr: ['pwd'] } }, { mergeWithLastSubmission: false });
  });

  router.use(provider.callback());

  return {
    handler: router,
    users,
    bannerLines() {
      const lines = [
        `Development identity provider (demo users; loopback only): ${o.issuer}`,
        `  Web: open ${o.publicUrl}/auth/login and sign in as one of:`,
      ];
      for (const u of users.values()) {
        lines.push(`    ${u.id.padEnd(6)} / ${u.password.padEnd(11)} ${u.role.padEnd(27)} ${u.totpSecret ? `TOTP secret ${u.totpSecret}` : 'no MFA yet: enrol at sign-in (QR code)'}`);
        if (u.shows) lines.push(`             shows: ${u.shows}`);
      }
      lines.push('  Add a TOTP secret to any authenticator app (SHA1, 6 digits, 30 s), or print the current code with:');
      lines.push(`    npx tsx -e "import('otpauth').then(o=>console.log(new o.TOTP({secret:o.Secret.fromBase32('<SECRET>')}).generate()))"`);
      lines.push(`  CLI: portcullis login --server ${o.publicUrl}   (device flow: open the printed URL, enter the code, sign in)`);
      lines.push(`  Token: the ID token from "portcullis login" is the API bearer: curl -H "Authorization: Bearer $TOKEN" ${o.publicUrl}/api/v1/me`);
      return lines;
    },
    async close() {
      pending.clear();
    },
  };
}

function equalStrings(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

