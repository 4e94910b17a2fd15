// The browser pages of the Slack journeys (link, confirm, step-up result). Every value is escaped.

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}main{max-width:32rem;margin:8vh auto;background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:2rem}h1{font-size:1.3rem;margin:0 0 1rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}dt{color:#5b6475}dd{margin:0;word-break:break-word}.error{color:#a4161a}.ok{color:#176b32}.warn{background:#fff6e0;border-radius:6px;padding:.6rem .8rem}button{background:#2450d8;color:#fff;border:0;border-radius:6px;padding:.6rem 1.2rem;font:inherit;cursor:pointer}code{background:#f4f5f7;padding:.1rem .3rem;border-radius:4px}`;

/** `body` is markup built only from `html` tagged pieces below. */
export function slackPage(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)} · Portcullis</title><style>${STYLE}</style></head><body><main><h1>${esc(title)}</h1>${body}</main></body></html>`;
}

export function facts(rows: [string, string][]): string {
  return `<dl>${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd data-fact="${esc(k.toLowerCase())}">${esc(v)}</dd>`).join('')}</dl>`;
}

export function confirmForm(action: string, csrf: string, label: string): string {
  return `<form method="post" action="${esc(action)}"><input type="hidden" name="_csrf" value="${esc(csrf)}"><button type="submit" id="confirm">${esc(label)}</button></form>`;
}

export function para(text: string, cls?: string, attrs = ''): string {
  return `<p${cls ? ` class="${esc(cls)}"` : ''}${attrs}>${esc(text)}</p>`;
}

/** The strict headers of every Slack page: no script at all, inline style only, no framing, never cached. */
export const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};
