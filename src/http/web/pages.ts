// HTML of the engineer's web journey: the signed-out landing page and the signed-in shell that app.js fills.
import type { Principal } from '../../domain/index.ts';
import { esc } from '../web-auth.ts';
import type { Assets } from './assets.ts';

const LOGO = `<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"><path d="M4 21V8l8-5 8 5v13"/><path d="M8 21v-8M12 21v-8M16 21v-8M4 13h16"/></svg>`;

function layout(assets: Assets, title: string, bodyAttrs: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${esc(title)}</title>
<link rel="stylesheet" href="${esc(assets.style.path)}">
<script type="module" src="${esc(assets.script.path)}"></script>
</head><body${bodyAttrs}>${body}</body></html>`;
}

export function landingPage(assets: Assets): string {
  return layout(
    assets,
    'Portcullis',
    ' class="landing"',
    `<main class="hero">
<div class="brand">${LOGO}<span>Portcullis</span></div>
<h1>Remote desktop stays closed until you need it.</h1>
<p class="lead">Sign in with your company account and second factor, pick a machine, say why, and Portcullis opens its port for your address only, for as long as you asked. It closes by itself.</p>
<p><a class="button primary" id="sign-in" href="/auth/login?returnTo=%2F">Sign in</a></p>
<ol class="steps"><li><strong>Sign in</strong> with single sign-on and MFA</li><li><strong>Ask</strong> for one target, a duration and a reason</li><li><strong>Connect</strong> while the countdown runs, or close it early</li></ol>
</main>`,
  );
}

export interface AppPageOptions {
  principal: Principal;
  /** The address this request came from as the broker sees it (after trustProxy). */
  callerIp: string;
  minDurationSeconds: number;
  maxDurationSeconds: number;
}

export function appPage(assets: Assets, o: AppPageOptions): string {
  const p = o.principal;
  const name = p.name ?? p.email ?? p.sub;
  const groups = p.groups.length
    ? `<ul class="chips" aria-label="Groups">${p.groups.map((g) => `<li>${esc(g)}</li>`).join('')}</ul>`
    : '<span class="muted">none</span>';
  const factors = p.amr.length ? ` <span class="muted">(${esc(p.amr.join(', '))})</span>` : '';
  const mfa = p.mfa
    ? `<span class="badge ok" id="mfa-status">Verified</span>${factors}`
    : `<span class="badge warn" id="mfa-status">Not used</span> <a href="/auth/login?mfa=1&amp;returnTo=%2F">Sign in with your second factor</a>`;
  const signedIn = p.authTime !== undefined ? `<time datetime="${new Date(p.authTime * 1000).toISOString()}" data-format="datetime">${new Date(p.authTime * 1000).toISOString()}</time>` : '<span class="muted">unknown</span>';
  const attrs = ` class="app" data-min-seconds="${o.minDurationSeconds}" data-max-seconds="${o.maxDurationSeconds}"`;
  return layout(
    assets,
    'Portcullis',
    attrs,
    `<a class="skip" href="#request-h">Skip to the request form</a>
<header class="top"><div class="brand">${LOGO}<span>Portcullis</span></div>
<div class="who"><span class="who-name">${esc(name)}</span>
<form method="post" action="/auth/logout" id="sign-out"><input type="hidden" name="_csrf" value=""><button type="submit" class="ghost">Sign out</button></form></div></header>
<main class="page">
<div id="notice" class="alert info" role="status" hidden></div>
<div class="grid">
<section class="card" aria-labelledby="request-h">
<h2 id="request-h" tabindex="-1">Request access</h2>
<form id="request" novalidate>
<div class="field"><label for="target">Target</label>
<select id="target" name="target" required aria-describedby="target-help target-error"><option value="">Loading targets…</option></select>
<div id="target-help" class="help"></div><p id="target-error" class="field-error" hidden></p></div>
<div class="row">
<div class="field"><label for="duration">Duration</label>
<select id="duration" name="duration" required aria-describedby="duration-help duration-error"></select>
<div id="duration-help" class="help"></div><p id="duration-error" class="field-error" hidden></p></div>
<div class="field" id="port-field" hidden><label for="port">Port</label>
<select id="port" name="port" aria-describedby="port-error"></select><p id="port-error" class="field-error" hidden></p></div>
</div>
<div class="field"><label for="reason">Reason</label>
<input id="reason" name="reason" type="text" maxlength="500" autocomplete="off" required placeholder="Ticket or purpose, e.g. T-4411 patch the domain controller" aria-describedby="reason-error">
<p id="reason-error" class="field-error" hidden></p></div>
<fieldset class="field"><legend>Connect from</legend>
<label class="radio"><input type="radio" name="source" value="here" checked> This computer <span class="muted">(<span id="caller-ip">${esc(o.callerIp)}</span> as Portcullis sees it)</span></label>
<label class="radio"><input type="radio" name="source" value="other"> Another address</label>
<input id="sourceIp" name="sourceIp" type="text" inputmode="decimal" autocomplete="off" disabled placeholder="198.51.100.7" aria-label="Source IP address" aria-describedby="sourceIp-error">
<p id="sourceIp-error" class="field-error" hidden></p></fieldset>
<div id="form-error" class="alert error" role="alert" hidden></div>
<div class="actions"><button type="submit" class="primary" id="submit">Request access</button></div>
</form>
</section>
<aside class="card me" aria-labelledby="me-h">
<h2 id="me-h">Signed in as</h2>
<dl>
<dt>Name</dt><dd id="me-name">${esc(p.name ?? '—')}</dd>
<dt>Email</dt><dd id="me-email">${esc(p.email ?? '—')}</dd>
<dt>User id</dt><dd><code>${esc(p.sub)}</code></dd>
<dt>Groups</dt><dd id="me-groups">${groups}</dd>
<dt>Multi-factor</dt><dd id="me-mfa">${mfa}</dd>
<dt>Signed in</dt><dd>${signedIn}</dd>
</dl>
</aside>
</div>
<section aria-labelledby="grants-h" class="section">
<h2 id="grants-h">Your access</h2>
<div id="grants" aria-live="polite"><p class="muted">Loading…</p></div>
</section>
<section aria-labelledby="history-h" class="section" id="history-section" hidden>
<h2 id="history-h">Recent</h2>
<div id="history"></div>
</section>
<section aria-labelledby="targets-h" class="section">
<h2 id="targets-h">Targets you can see</h2>
<div id="targets"><p class="muted">Loading…</p></div>
</section>
<noscript><p class="alert error">This page needs JavaScript to request and close access. The <code>portcullis</code> command line works without it.</p></noscript>
</main>`,
  );
}
