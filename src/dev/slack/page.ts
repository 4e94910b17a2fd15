// The demo's Slack look-alike page (/dev/slack): type /rdp …, see the bot's replies and buttons. Labelled SIMULATED.
import { Eta } from 'eta';

const css = `
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1c1d;background:#fff;height:100vh;display:flex;flex-direction:column}
#sim{background:#b3261e;color:#fff;text-align:center;font-weight:700;letter-spacing:.04em;padding:.35rem}
#app{flex:1;display:flex;min-height:0}
nav{width:15rem;background:#3f0e40;color:#e8dfe8;padding:1rem .75rem;display:flex;flex-direction:column;gap:.3rem}
nav h2{font-size:1rem;color:#fff;margin:0 0 .6rem}nav label{font-size:.8rem}nav select{width:100%;margin:.2rem 0 1rem;padding:.3rem}
nav button{background:none;border:0;color:inherit;text-align:left;padding:.3rem .5rem;border-radius:6px;font:inherit;cursor:pointer}nav button[aria-current=true]{background:#1164a3;color:#fff}
main{flex:1;display:flex;flex-direction:column;min-width:0}
header{border-bottom:1px solid #ddd;padding:.6rem 1rem;font-weight:700}
#messages{flex:1;overflow:auto;padding:1rem;display:flex;flex-direction:column;gap:.8rem}
.msg{display:flex;gap:.6rem}.avatar{width:36px;height:36px;border-radius:6px;background:#2450d8;color:#fff;display:flex;align-items:center;justify-content:center;font-weight:700;flex:none}
.msg.user .avatar{background:#7a7a7a}.who{font-weight:700}.who small{font-weight:400;color:#616061;margin-left:.4rem}
.eph{font-size:.8rem;color:#616061}.msg.ephemeral .body{background:#f8f8f8;border-left:3px solid #c8c8c8;padding:.2rem .6rem}
.block{margin:.25rem 0;white-space:pre-wrap}.fields{display:grid;grid-template-columns:1fr 1fr;gap:.3rem 1rem}.context{font-size:.8rem;color:#616061}
.actions{display:flex;gap:.5rem;margin:.4rem 0}.actions button{border:1px solid #bbb;background:#fff;border-radius:4px;padding:.3rem .8rem;font:inherit;cursor:pointer}
.actions button.primary{background:#007a5a;color:#fff;border-color:#007a5a}.actions button.danger{background:#e01e5a;color:#fff;border-color:#e01e5a}
code{background:#f3f3f3;border:1px solid #e5e5e5;border-radius:3px;padding:0 .2rem;font-size:.85em;color:#c7254e}a{color:#1264a3}
form#composer{display:flex;gap:.5rem;padding:.8rem 1rem;border-top:1px solid #ddd}#composer input{flex:1;padding:.6rem;border:1px solid #bbb;border-radius:6px;font:inherit}
#composer button{background:#007a5a;color:#fff;border:0;border-radius:6px;padding:0 1rem;font:inherit}
#modal{position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;align-items:center;justify-content:center}#modal[hidden]{display:none}
#modal .card{background:#fff;border-radius:8px;width:30rem;padding:1.2rem}#modal h3{margin:0 0 .8rem}#modal textarea{width:100%;min-height:4rem;font:inherit}
#modal .row{display:flex;justify-content:flex-end;gap:.5rem;margin-top:.8rem}#modal button{padding:.4rem 1rem;border-radius:4px;border:1px solid #bbb;background:#fff;font:inherit}#modal button.primary{background:#e01e5a;border-color:#e01e5a;color:#fff}
`;

const js = `
'use strict';
const $ = (s) => document.querySelector(s);
let user = $('#user').value, channel = 'D' + user, state = { messages: [], views: [], users: [] }, openView = null;
function el(tag, attrs, ...kids) { const e = document.createElement(tag); for (const [k, v] of Object.entries(attrs || {})) { if (k === 'class') e.className = v; else e.setAttribute(k, v); } for (const k of kids) e.append(k); return e; }
const EMOJI = { large_green_circle: '\u{1F7E2}', hourglass_flowing_sand: '\u23F3', white_check_mark: '\u2705', no_entry: '\u26D4', warning: '\u26A0\uFE0F', lock: '\u{1F512}', link: '\u{1F517}', key: '\u{1F511}', alarm_clock: '\u23F0', closed_lock_with_key: '\u{1F510}', desktop_computer: '\u{1F5A5}\uFE0F', wave: '\u{1F44B}' };
function nameOf(id) { const u = state.users.find((x) => x.id === id); return u ? '@' + u.name : '@' + id; }
// Slack mrkdwn, just enough: <url|label>, <@U…>, <!date^…|fallback>, *bold*, \`code\`; all text stays text.
function mrkdwn(text) {
  const out = document.createDocumentFragment();
  const re = /<([^>]+)>|\\*([^*\\n]+)\\*|\`([^\`]+)\`/g; let last = 0, m;
  const plain = (s) => out.append(s.replace(/:([a-z_]+):/g, (m, n) => EMOJI[n] || m).replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
  while ((m = re.exec(text))) {
    plain(text.slice(last, m.index)); last = re.lastIndex;
    if (m[1] !== undefined) {
      const inner = m[1];
      if (inner.startsWith('@')) out.append(el('strong', {}, nameOf(inner.slice(1))));
      else if (inner.startsWith('!date^')) out.append(inner.split('|').slice(1).join('|') || inner);
      else { const [href, label] = inner.split('|'); if (/^https?:\\/\\//.test(href)) out.append(el('a', { href, target: '_blank', rel: 'noopener' }, label || href)); else plain('<' + inner + '>'); }
    } else if (m[2] !== undefined) out.append(el('strong', {}, m[2]));
    else out.append(el('code', {}, m[3]));
  }
  plain(text.slice(last)); return out;
}
function renderBlocks(msg) {
  const box = el('div', { class: 'body' });
  const blocks = msg.blocks && msg.blocks.length ? msg.blocks : [{ type: 'section', text: { text: msg.text } }];
  for (const b of blocks) {
    if (b.type === 'section') {
      if (b.text) box.append(el('div', { class: 'block' }, mrkdwn(b.text.text)));
      if (b.fields) box.append(el('div', { class: 'block fields' }, ...b.fields.map((f) => el('div', {}, mrkdwn(f.text)))));
    } else if (b.type === 'context') box.append(el('div', { class: 'block context' }, ...b.elements.map((e) => mrkdwn(e.text))));
    else if (b.type === 'actions') {
      const row = el('div', { class: 'actions' });
      for (const a of b.elements) {
        const btn = el('button', { class: a.style || '', 'data-action': a.action_id, type: 'button' }, a.text.text);
        btn.addEventListener('click', () => a.url ? window.open(a.url, '_blank') : click(msg.ts, a.action_id));
        row.append(btn);
      }
      box.append(row);
    }
  }
  return box;
}
function render() {
  for (const b of document.querySelectorAll('nav button[data-channel]')) b.setAttribute('aria-current', String(b.dataset.channel === channel));
  $('#title').textContent = channel.startsWith('D') ? 'Portcullis (app)' : '# ' + ($('nav button[data-channel="' + channel + '"]')?.dataset.name || channel);
  const list = $('#messages'); const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 20; list.replaceChildren();
  for (const m of state.messages.filter((x) => x.channel === channel)) {
    const who = m.user ? nameOf(m.user).slice(1) : 'Portcullis';
    const row = el('div', { class: 'msg' + (m.user ? ' user' : '') + (m.ephemeralTo ? ' ephemeral' : ''), 'data-ts': m.ts });
    const head = el('div', { class: 'who' }, who, el('small', {}, m.user ? '' : 'APP'));
    const col = el('div', {}, head);
    if (m.ephemeralTo) col.append(el('div', { class: 'eph' }, 'Only visible to you'));
    col.append(m.user ? el('div', { class: 'body' }, m.text) : renderBlocks(m));
    if (m.edits) col.append(el('div', { class: 'eph' }, '(edited)'));
    row.append(el('div', { class: 'avatar' }, who[0].toUpperCase()), col); list.append(row);
  }
  if (atBottom) list.scrollTop = list.scrollHeight;
  const v = state.views[0];
  if (v && (!openView || openView.id !== v.id || openView.view !== JSON.stringify(v.view))) showModal(v);
  if (!v) { $('#modal').hidden = true; openView = null; }
  document.body.dataset.ready = 'true';
}
function showModal(v) {
  openView = { id: v.id, view: JSON.stringify(v.view) };
  const card = $('#modal .card'); card.replaceChildren(el('h3', {}, v.view.title?.text || 'Slack'));
  const inputs = [];
  for (const b of v.view.blocks || []) {
    if (b.type === 'input') { const t = el('textarea', { id: 'modal-' + b.block_id, 'aria-label': b.label.text }); inputs.push([b.block_id, t]); card.append(el('label', {}, b.label.text), t); }
    else card.append(renderBlocks({ blocks: [b] }));
  }
  const row = el('div', { class: 'row' });
  const close = el('button', { type: 'button', id: 'modal-close' }, v.view.close?.text || 'Close');
  close.addEventListener('click', () => { $('#modal').hidden = true; state.views = []; });
  row.append(close);
  if (v.view.submit) { const s = el('button', { type: 'button', class: 'primary', id: 'modal-submit' }, v.view.submit.text); s.addEventListener('click', () => submit(v.id, Object.fromEntries(inputs.map(([k, t]) => [k, t.value])))); row.append(s); }
  card.append(row); $('#modal').hidden = false;
}
async function post(path, body) { await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }); await refresh(); }
const click = (ts, actionId) => post('ui/click', { user, ts, actionId });
const submit = (viewId, values) => post('ui/submit', { user, viewId, values });
async function refresh() { const r = await fetch('ui/state?user=' + encodeURIComponent(user)); state = await r.json(); render(); }
$('#composer').addEventListener('submit', async (e) => { e.preventDefault(); const t = $('#text').value.replace(/^\\/rdp\\s*/, ''); $('#text').value = ''; channel = 'D' + user; await post('ui/command', { user, text: t }); });
$('#user').addEventListener('change', () => { user = $('#user').value; if (channel.startsWith('D')) channel = 'D' + user; openView = null; refresh(); });
for (const b of document.querySelectorAll('nav button[data-channel]')) b.addEventListener('click', () => { channel = b.dataset.channel === 'DM' ? 'D' + user : b.dataset.channel; render(); });
setInterval(refresh, 800); refresh();
`;

const eta = new Eta({ views: import.meta.dirname, autoEscape: true, cache: true, useWith: false });

/** The page itself (page.eta, auto-escaped); its script and stylesheet are the two files below, so the one CSP holds. */
function html(users: { id: string; name: string; realName: string }[], channels: { id: string; name: string }[]): string {
  return eta.render('page', { users, channels });
}

export const demoPage = { html, js, css };
