// HTML of the development IdP: one small stylesheet inline, no external assets, every value escaped.

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS = `*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:linear-gradient(160deg,#eef1f8,#dfe5f2);color:#1d2330;min-height:100vh;display:flex;align-items:center;justify-content:center}
main{width:100%;max-width:25rem;background:#fff;border-radius:12px;box-shadow:0 10px 30px rgba(20,30,60,.12);padding:2rem 2.2rem;margin:1rem}
.brand{display:flex;align-items:center;gap:.6rem;font-weight:600;color:#2450d8;margin-bottom:1.4rem}.brand svg{width:28px;height:28px}
h1{font-size:1.35rem;margin:0 0 .4rem}p{margin:.3rem 0 1rem;color:#4a5368}label{display:block;font-size:.85rem;font-weight:600;margin:.8rem 0 .3rem}
input[type=text],input[type=password]{width:100%;padding:.6rem .75rem;border:1px solid #c8cfdc;border-radius:7px;font:inherit}input:focus{outline:2px solid #2450d8;border-color:transparent}
input.code{letter-spacing:.4em;text-align:center;font-size:1.3rem;font-variant-numeric:tabular-nums}
button{width:100%;margin-top:1.2rem;padding:.65rem;border:0;border-radius:7px;background:#2450d8;color:#fff;font:inherit;font-weight:600;cursor:pointer}button:hover{background:#1b3fb0}
button.link{background:none;color:#4a5368;font-weight:400;margin-top:.6rem}.error{background:#fdecec;color:#a4161a;padding:.55rem .75rem;border-radius:7px;font-size:.9rem}
.qr{display:block;margin:.6rem auto;width:180px;height:180px;image-rendering:pixelated}.secret{font-family:ui-monospace,monospace;background:#f4f5f7;padding:.4rem .6rem;border-radius:6px;word-break:break-all;font-size:.85rem}
.hint{font-size:.8rem;color:#6b7488;margin-top:1.2rem;border-top:1px solid #eceff4;padding-top:.8rem}`;

const LOGO = `<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2"><path d="M4 21V8l8-5 8 5v13"/><path d="M8 21v-8M12 21v-8M16 21v-8M4 13h16"/></svg>`;

export function layout(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)} · Portcullis Dev ID</title><style>${CSS}</style></head>
<body><main><div class="brand">${LOGO}<span>Portcullis Dev ID</span></div>${body}</main></body></html>`;
}

export function loginPage(action: string, client: string, error?: string, login = ''): string {
  return layout('Sign in', `<h1>Sign in</h1><p>to continue to <strong>${esc(client)}</strong></p>${error ? `<div class="error">${esc(error)}</div>` : ''}
<form method="post" action="${esc(action)}" autocomplete="off"><label for="login">Username</label><input id="login" type="text" name="login" value="${esc(login)}" autofocus required>
<label for="password">Password</label><input id="password" type="password" name="password" required><button type="submit">Continue</button></form>
<div class="hint">Development identity provider. Demo users are listed in the broker's start banner.</div>`);
}

export function otpPage(action: string, user: string, error?: string): string {
  return layout('Two-step verification', `<h1>Two-step verification</h1><p>Enter the 6-digit code from your authenticator app for <strong>${esc(user)}</strong>.</p>${error ? `<div class="error">${esc(error)}</div>` : ''}
<form method="post" action="${esc(action)}" autocomplete="off"><label for="otp">Code</label><input id="otp" class="code" type="text" name="otp" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autofocus required><button type="submit">Verify</button></form>`);
}

export function enrolPage(action: string, skipAction: string | undefined, user: string, qrDataUrl: string, secret: string, error?: string): string {
  return layout('Set up two-step verification', `<h1>Set up two-step verification</h1><p><strong>${esc(user)}</strong> has no second factor yet. Scan this code with an authenticator app, then enter the code it shows.</p>${error ? `<div class="error">${esc(error)}</div>` : ''}
<img class="qr" alt="QR code of the TOTP secret" src="${esc(qrDataUrl)}"><p>Or enter this key by hand:</p><div class="secret">${esc(secret)}</div>
<form method="post" action="${esc(action)}" autocomplete="off"><label for="otp">Code</label><input id="otp" class="code" type="text" name="otp" inputmode="numeric" maxlength="6" required><button type="submit">Turn on and continue</button></form>
${skipAction ? `<form method="post" action="${esc(skipAction)}"><button class="link" type="submit">Skip for now (sign in with password only)</button></form>` : '<p class="hint">Portcullis asked for a second factor, so this step cannot be skipped.</p>'}`);
}

export function messagePage(title: string, text: string): string {
  return layout(title, `<h1>${esc(title)}</h1><p>${esc(text)}</p>`);
}

/** Wraps an oidc-provider form (already HTML it built and escaped) with our look. */
export function providerFormPage(title: string, intro: string, form: string, buttons: string): string {
  return layout(title, `<h1>${esc(title)}</h1><p>${intro}</p>${form}${buttons}`);
}
