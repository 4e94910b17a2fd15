// Portcullis web UI behaviour: loads targets and grants from the JSON API, submits requests, counts down, closes.
// A plain ES module with no build step. Every value reaches the page through textContent or
// setAttribute, never parsed as HTML, so nothing the API returns can become markup.

const $ = (id) => document.getElementById(id);
const LIVE = ['requested', 'pending', 'approved', 'opening', 'active', 'extending', 'closing'];
const FIELDS = ['target', 'duration', 'reason', 'port', 'sourceIp'];
const SIMULATED_KINDS = ['simulated', 'memory'];
const CANDIDATES = [60, 300, 900, 1800, 3600, 7200, 14400, 28800];
const DRAFT_KEY = 'portcullis.draft';

const state = {
  csrf: null,
  targets: [],
  grants: [],
  /** grant id → performance.now() deadline; from secondsLeft so a wrong laptop clock does not matter. */
  deadlines: new Map(),
  renderedSig: '',
  pollTimer: 0,
  limits: { min: Number(document.body.dataset.minSeconds) || 60, max: Number(document.body.dataset.maxSeconds) || 28800 },
};

/** Builds an element: attrs (`class`, `text`, `on*` handlers, booleans, others as attributes) and children. */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = String(v);
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

// ---- time and durations -------------------------------------------------------------------

function parseDuration(text) {
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text) ?? /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(text);
  if (!m || m.slice(1).every((g) => g === undefined)) return undefined;
  const [d, h, min, s] = m.slice(1).map((g) => Number(g ?? 0));
  return d * 86400 + h * 3600 + min * 60 + s || undefined;
}
function durationValue(seconds) {
  let rest = seconds;
  let out = '';
  for (const [u, n] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
    if (rest >= n) {
      out += `${Math.floor(rest / n)}${u}`;
      rest %= n;
    }
  }
  return out;
}
function durationLabel(seconds) {
  const part = (n, unit) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (seconds % 86400 === 0) return part(seconds / 86400, 'day');
  if (seconds % 3600 === 0) return part(seconds / 3600, 'hour');
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  if (seconds % 60 === 0) return part(seconds / 60, 'minute');
  return part(seconds, 'second');
}
function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
/** Always a date and a zone ("2 Dec 2026, 08:15 CET"): a time alone is ambiguous in a screenshot or across zones. */
function timeOf(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short' });
}

/**
 * The longest duration this user may ask for on a target. The API gives `maxDuration` ("2h", or
 * null when nothing is permitted), `needsApproval` and `maxImmediateDuration`; older brokers give
 * none of them, and a few other shapes (seconds, `{ minutes, approval }`) are read too.
 */
function limitOf(t) {
  const out = { maxSeconds: undefined, immediateSeconds: undefined, needsApproval: typeof t.needsApproval === 'boolean' ? t.needsApproval : undefined };
  const m = t.maxDuration;
  if (typeof m === 'string') out.maxSeconds = parseDuration(m);
  else if (typeof m === 'number') out.maxSeconds = m;
  else if (m && typeof m === 'object') {
    if (typeof m.minutes === 'number') out.maxSeconds = m.minutes * 60;
    if (typeof m.seconds === 'number') out.maxSeconds = m.seconds;
    if (typeof m.immediateMinutes === 'number') out.immediateSeconds = m.immediateMinutes * 60;
    if (typeof m.approval === 'boolean' && out.needsApproval === undefined) out.needsApproval = m.approval;
  }
  // null means the policies permit no duration at all (nothing to ask for on this target).
  if ('maxDuration' in t && m === null) out.maxSeconds = 0;
  if (typeof t.maxImmediateDuration === 'string') out.immediateSeconds = parseDuration(t.maxImmediateDuration);
  else if ('maxImmediateDuration' in t && t.maxImmediateDuration === null && out.maxSeconds) out.immediateSeconds = 0;
  if (typeof t.maxDurationSeconds === 'number') out.maxSeconds = t.maxDurationSeconds;
  if (typeof t.maxDurationMinutes === 'number') out.maxSeconds = t.maxDurationMinutes * 60;
  return out;
}
/** What approval the policies ask for on a target, short (table) and long (form help); undefined when unknown. */
function approvalText(l) {
  if (!l.maxSeconds) return undefined;
  if (l.immediateSeconds === 0 || (l.immediateSeconds === undefined && l.needsApproval === true)) {
    return { short: 'needs approval', long: 'An approver must agree before the port opens.', kind: 'pending' };
  }
  if (l.immediateSeconds !== undefined && l.immediateSeconds < l.maxSeconds) {
    return { short: `at once up to ${durationLabel(l.immediateSeconds)}`, long: `Opens at once for up to ${durationLabel(l.immediateSeconds)}; longer needs an approver.`, kind: 'warn' };
  }
  if (l.needsApproval === false || l.immediateSeconds !== undefined) return { short: 'opens at once', long: 'Opens at once, no approval needed.', kind: 'ok' };
  return undefined;
}
const isSimulated = (t) => Boolean(t && SIMULATED_KINDS.includes(t.firewall));
const targetById = (id) => state.targets.find((t) => t.id === id);

// ---- API ----------------------------------------------------------------------------------

async function loadSession() {
  const res = await fetch('/auth/session', { headers: { accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' });
  if (res.status === 401) {
    signedOut();
    throw new Error('signed out');
  }
  const s = await res.json();
  state.csrf = s.csrf;
  return s;
}

function signedOut() {
  notice('Your session has ended. Sign in again to continue.', { href: '/auth/login?returnTo=%2F', label: 'Sign in' }, 'error');
}

/** One JSON API call; resolves to { status, data } or { status, error } and never throws. */
async function api(method, path, body, retried = false) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') {
    if (!state.csrf) await loadSession().catch(() => {});
    headers['x-csrf-token'] = state.csrf ?? '';
    headers['content-type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'same-origin' });
  } catch {
    return { status: 0, error: { code: 'NETWORK', message: 'Portcullis did not answer. Check your connection and try again.' } };
  }
  let json = null;
  try {
    json = await res.json();
  } catch {
    // not JSON (a proxy error page): described below by status
  }
  if (res.ok) return { status: res.status, data: json };
  const error = json && json.error ? json.error : { code: `HTTP_${res.status}`, message: `Portcullis answered ${res.status}; try again in a moment.` };
  // The session rotates at every sign-in (another tab): fetch the new token once and retry.
  if (error.code === 'CSRF_FAILED' && !retried) {
    state.csrf = null;
    return api(method, path, body, true);
  }
  if (error.code === 'AUTH_REQUIRED') signedOut();
  return { status: res.status, error };
}

// ---- notices and errors -------------------------------------------------------------------

/** API messages are written lower-case to be embeddable; on their own they start a sentence. */
const sentence = (m) => (m ? m.charAt(0).toUpperCase() + m.slice(1) : '');

function notice(text, link, kind = 'info') {
  const n = $('notice');
  n.className = `alert ${kind}`;
  n.replaceChildren(text, link ? ' ' : '', link ? el('a', { href: link.href, text: link.label }) : '');
  n.hidden = false;
}

function clearErrors() {
  for (const f of FIELDS) {
    const msg = $(`${f}-error`);
    if (msg) {
      msg.hidden = true;
      msg.textContent = '';
    }
    $(f)?.removeAttribute('aria-invalid');
  }
  $('form-error').hidden = true;
  $('form-error').replaceChildren();
}

function showError(error) {
  if (error.stepUp) {
    // A fresh sign-in at the IdP, then back here with the form as it was; the user presses Request again.
    const box = $('form-error');
    const mode = error.code === 'MFA_REQUIRED' ? 'mfa' : 'fresh';
    box.replaceChildren(
      el('strong', { text: 'Please confirm it is you. ' }),
      sentence(error.message) || 'Sign in again to continue.',
      el('div', {}, el('button', { type: 'button', class: 'primary', id: 'step-up', onclick: () => stepUp(mode), text: 'Sign in again to continue' })),
    );
    box.hidden = false;
    $('step-up').focus();
    return;
  }
  const field = FIELDS.includes(error.field) ? error.field : undefined;
  const msg = field ? $(`${field}-error`) : null;
  if (msg && !$(field).closest('[hidden]')) {
    msg.textContent = sentence(error.message);
    msg.dataset.code = error.code;
    msg.hidden = false;
    $(field).setAttribute('aria-invalid', 'true');
    $(field).focus();
    return;
  }
  const box = $('form-error');
  box.replaceChildren(sentence(error.message), ' ', el('span', { class: 'muted', text: `(${error.code})` }));
  box.dataset.code = error.code;
  box.hidden = false;
  if (error.code === 'POLICY_DENIED') void explainRefusal(box, error);
}

/** Which policy refused, in its own words, and what would be allowed instead. */
async function explainRefusal(box, error) {
  const draft = readForm();
  const ids = /denied by policy (.+)$/.exec(error.message)?.[1]?.split(', ') ?? [];
  const q = new URLSearchParams({ target: draft.target, policies: ids.join(',') });
  if (draft.sourceIp) q.set('sourceIp', draft.sourceIp);
  let x;
  try {
    const res = await fetch(`/ui/explain?${q}`, { headers: { accept: 'application/json' }, cache: 'no-store' });
    if (!res.ok) return;
    x = await res.json();
  } catch {
    return;
  }
  const list = el('ul', { class: 'explain', id: 'refusal-explain' });
  for (const p of x.policies) if (p.why) list.append(el('li', {}, el('strong', { text: `${p.id}: ` }), p.why));
  const asked = parseDuration(draft.duration) ?? 0;
  const a = x.fromAsked;
  if (a.maxMinutes > 0) {
    if (a.immediateMinutes > 0 && a.immediateMinutes * 60 < asked) list.append(el('li', { text: `Allowed instead: up to ${durationLabel(a.immediateMinutes * 60)} at once${a.maxMinutes > a.immediateMinutes ? `, or up to ${durationLabel(a.maxMinutes * 60)} with an approver` : ''}.` }));
    else if (a.maxMinutes * 60 < asked) list.append(el('li', { text: `Allowed instead: up to ${durationLabel(a.maxMinutes * 60)}${a.approval ? ' with an approver' : ''}.` }));
    else if (a.approval) list.append(el('li', { text: 'This needs an approver: ask again and it goes to the approvals inbox.' }));
  }
  if (x.fromHere && x.fromHere.maxMinutes > 0 && a.maxMinutes === 0) list.append(el('li', { text: `From this computer (${x.fromHere.address}) up to ${durationLabel(x.fromHere.maxMinutes * 60)} would be allowed: choose “This computer”.` }));
  if (!list.children.length) list.append(el('li', { text: 'Nothing on this target is allowed for you with this source. Ask your administrator which group or address you need.' }));
  box.append(list);
}

function stepUp(mode) {
  sessionStorage.setItem(DRAFT_KEY, JSON.stringify(readForm()));
  location.assign(`/auth/login?${mode}=1&returnTo=${encodeURIComponent('/?resume=1')}`);
}

// ---- the request form ---------------------------------------------------------------------

function readForm() {
  const draft = { target: $('target').value, duration: $('duration').value, reason: $('reason').value };
  if (!$('port-field').hidden && $('port').value) draft.port = Number($('port').value);
  if (document.querySelector('input[name=source][value=other]').checked) draft.sourceIp = $('sourceIp').value.trim();
  return draft;
}

function fillTargets() {
  const select = $('target');
  const keep = select.value;
  const options = [el('option', { value: '', text: state.targets.length ? 'Choose a target…' : 'No targets available to you' })];
  for (const t of state.targets) {
    const lim = limitOf(t);
    // The broker previews before a reason exists: its limits hold for a reason the policies accept, and
    // reasonDependent says a policy asks something of the reason (a ticket number). Nothing permitted is
    // still offered, so the refusal can explain itself.
    const note = lim.maxSeconds === 0 ? ' (not permitted)' : t.reasonDependent ? ' (the reason must satisfy a policy)' : '';
    const simulatedNote = isSimulated(t) && !/simulated/i.test(t.description ?? '') ? ' (simulated firewall)' : '';
    const label = `${t.id}${t.description ? ` — ${t.description}` : ''}${simulatedNote}${note}`;
    options.push(el('option', { value: t.id, text: label }));
  }
  select.replaceChildren(...options);
  if (keep && targetById(keep)) select.value = keep;
  else if (state.targets.length === 1) select.value = state.targets[0].id;
  onTargetChange();
}

function onTargetChange() {
  const t = targetById($('target').value);
  const help = $('target-help');
  help.replaceChildren();
  if (t) {
    const bits = [];
    if (t.connect) bits.push(el('span', {}, 'Connect: ', el('code', { text: t.connect })));
    const tags = Object.entries(t.tags || {});
    if (tags.length) bits.push(el('span', { text: tags.map(([k, v]) => `${k}=${v}`).join(' · ') }));
    help.append(...bits.flatMap((b, i) => (i ? [' · ', b] : [b])));
    if (isSimulated(t)) help.append(el('div', { class: 'sim-note', role: 'note' }, el('strong', { text: 'SIMULATED firewall: ' }), 'no real port is opened for this target; the rule is only recorded.'));
  }
  // Ports: a choice only when the target offers more than one.
  const ports = t ? t.ports || [] : [];
  $('port-field').hidden = ports.length < 2;
  $('port').replaceChildren(...ports.map((p) => el('option', { value: String(p), text: String(p) })));
  fillDurations(t);
}

function fillDurations(t) {
  const select = $('duration');
  const keep = select.value;
  const lim = t ? limitOf(t) : {};
  const cap = Math.min(state.limits.max, lim.maxSeconds || Infinity);
  const set = new Set(CANDIDATES.filter((s) => s >= state.limits.min && s <= cap));
  if (Number.isFinite(cap) && cap >= state.limits.min) set.add(cap);
  const list = [...set].sort((a, b) => a - b);
  select.replaceChildren(
    ...list.map((s) => {
      const approval = lim.immediateSeconds !== undefined && s > lim.immediateSeconds ? ' — needs approval' : '';
      return el('option', { value: durationValue(s), text: durationLabel(s) + approval });
    }),
  );
  const preferred = list.includes(3600) ? 3600 : list.filter((s) => s <= 3600).pop() ?? list[0];
  select.value = keep && list.some((s) => durationValue(s) === keep) ? keep : preferred ? durationValue(preferred) : '';
  const help = $('duration-help');
  const parts = [];
  if (lim.maxSeconds) parts.push(`Up to ${durationLabel(Math.min(cap, lim.maxSeconds))} for you on this target.`);
  const approval = approvalText(lim);
  if (approval) parts.push(approval.long);
  help.textContent = parts.join(' ');
}

async function onSubmit(ev) {
  ev.preventDefault();
  clearErrors();
  $('notice').hidden = true;
  const button = $('submit');
  button.disabled = true;
  button.textContent = 'Requesting…';
  const draft = readForm();
  const r = await api('POST', '/grants', draft);
  button.disabled = false;
  button.textContent = 'Request access';
  if (r.error) {
    showError(r.error);
    return;
  }
  const g = r.data.grant;
  $('reason').value = '';
  upsertGrant(g);
  if (g.state === 'active') notice(`Access to ${g.target} is open until ${timeOf(g.expiresAt)}.`);
  else if (g.state === 'pending') notice(`Your request for ${g.target} is waiting for an approver.`);
  else notice(`Your request for ${g.target} is ${g.state}.`);
  $(`grant-${g.id}`)?.focus();
  schedulePoll();
}

function restoreDraft() {
  const params = new URLSearchParams(location.search);
  if (!params.has('resume')) return;
  history.replaceState(null, '', '/');
  const raw = sessionStorage.getItem(DRAFT_KEY);
  sessionStorage.removeItem(DRAFT_KEY);
  if (!raw) return;
  let d;
  try {
    d = JSON.parse(raw);
  } catch {
    return;
  }
  if (typeof d.target === 'string' && targetById(d.target)) {
    $('target').value = d.target;
    onTargetChange();
  }
  if (typeof d.duration === 'string' && [...$('duration').options].some((o) => o.value === d.duration)) $('duration').value = d.duration;
  if (typeof d.port === 'number') $('port').value = String(d.port);
  if (typeof d.reason === 'string') $('reason').value = d.reason;
  if (typeof d.sourceIp === 'string') {
    document.querySelector('input[name=source][value=other]').checked = true;
    onSourceChange();
    $('sourceIp').value = d.sourceIp;
  }
  notice('You signed in again. Check your request below and press “Request access” to send it.');
  $('submit').focus();
}

function onSourceChange() {
  const other = document.querySelector('input[name=source][value=other]').checked;
  $('sourceIp').disabled = !other;
  if (other) $('sourceIp').focus();
}

// ---- grants -------------------------------------------------------------------------------

function upsertGrant(g) {
  const i = state.grants.findIndex((x) => x.id === g.id);
  if (i >= 0) state.grants[i] = g;
  else state.grants.unshift(g);
  trackDeadline(g, true);
  renderGrants(true);
}

function trackDeadline(g, fresh) {
  if (g.state !== 'active' || typeof g.secondsLeft !== 'number') {
    state.deadlines.delete(g.id);
    return;
  }
  const at = performance.now() + g.secondsLeft * 1000;
  const known = state.deadlines.get(g.id);
  // Keep a running countdown steady across polls (secondsLeft is rounded); follow an extension.
  if (fresh || known === undefined || Math.abs(known.at - at) > 2000) state.deadlines.set(g.id, { at, total: g.durationSeconds, expiresAt: g.expiresAt });
}

async function refreshGrants() {
  const r = await api('GET', '/grants?limit=50');
  if (r.error) return;
  const before = new Map(state.grants.map((g) => [g.id, g]));
  const grants = r.data.grants;
  // Approvals (who, comment) come with one grant at a time: fetched for pending ones and just-decided ones.
  await Promise.all(
    grants.map(async (g, i) => {
      const was = before.get(g.id);
      if (g.state !== 'pending' && !(was && was.state === 'pending')) {
        if (was?.approvals) grants[i] = { ...g, approvals: was.approvals };
        return;
      }
      const one = await api('GET', `/grants/${encodeURIComponent(g.id)}`);
      if (!one.error) grants[i] = one.data.grant;
    }),
  );
  for (const g of grants) {
    const was = before.get(g.id);
    if (was && was.state === 'pending' && g.state !== 'pending') announceDecision(g);
    else if (was && was.state === 'pending' && (was.approvals ?? []).length !== (g.approvals ?? []).length) announceDecision(g);
  }
  state.grants = grants;
  for (const g of state.grants) trackDeadline(g, false);
  renderGrants(false);
  schedulePoll();
}

function announceDecision(g) {
  const ds = g.approvals ?? [];
  const last = ds[ds.length - 1];
  const said = last?.comment ? `: “${last.comment}”` : '';
  if (g.state === 'denied') notice(last ? `${last.approver} denied your request for ${g.target}${said}` : `Your request for ${g.target} was refused.`, undefined, 'error');
  else if (g.state === 'active') notice(`${ds.filter((a) => a.decision === 'approve').map((a) => a.approver).join(' and ') || 'An approver'} approved: access to ${g.target} is open until ${timeOf(g.expiresAt)}${said}.`);
  else if (g.state === 'pending' && last) notice(`${last.approver} approved your request for ${g.target}${said}. It needs ${g.requiredApprovals - ds.filter((a) => a.decision === 'approve').length} more approval(s).`);
  else if (g.state === 'expired') notice(`Nobody decided your request for ${g.target} in time.`, undefined, 'error');
}

function schedulePoll() {
  clearTimeout(state.pollTimer);
  const live = state.grants.filter((g) => LIVE.includes(g.state));
  if (!live.length) return;
  // Transitions (opening, extending, closing) settle in a moment; an approval may take minutes.
  const busy = live.some((g) => ['requested', 'approved', 'opening', 'extending', 'closing'].includes(g.state));
  state.pollTimer = setTimeout(refreshGrants, busy ? 1500 : live.some((g) => g.state === 'pending') ? 2000 : 15000);
}

function renderGrants(force) {
  const live = state.grants.filter((g) => LIVE.includes(g.state));
  const done = state.grants.filter((g) => !LIVE.includes(g.state)).slice(0, 8);
  const sig = state.grants.map((g) => `${g.id}:${g.state}:${g.expiresAt}:${(g.approvals ?? []).length}`).join('|') + `#${state.targets.length}`;
  // Re-render only on change, so a poll never steals focus from a button the user is on.
  if (!force && sig === state.renderedSig) return;
  state.renderedSig = sig;
  $('grants').replaceChildren(...(live.length ? live.map(grantCard) : [el('p', { class: 'empty', text: 'You have no open access. Request it above; it closes by itself when the time is up.' })]));
  $('history-section').hidden = done.length === 0;
  $('history').replaceChildren(done.length ? historyTable(done) : '');
  tick();
}

function stateBadge(g) {
  const labels = { requested: 'Requested', pending: 'Waiting for approval', approved: 'Approved', opening: 'Opening…', active: 'Active', extending: 'Extending…', closing: 'Closing…', closed: 'Closed', denied: 'Denied', expired: 'Expired', failed: 'Failed' };
  const reason = g.state === 'closed' && g.closeReason ? ` (${g.closeReason})` : '';
  return el('span', { class: `badge ${g.state}`, 'data-state': g.state, text: (labels[g.state] || g.state) + reason });
}

function grantCard(g) {
  const t = targetById(g.target);
  const rows = [];
  if (g.state === 'active' || g.state === 'opening' || g.state === 'extending') rows.push(['Connect', connectCell(g)]);
  rows.push(['From', el('span', {}, el('code', { text: g.source }), ` to port ${g.port}`)]);
  rows.push(['Reason', g.reason]);
  if (g.state === 'active') rows.push(['Until', `${timeOf(g.expiresAt)} (${durationLabel(g.durationSeconds)})`]);
  else rows.push(['Asked for', `${durationLabel(g.durationSeconds)} at ${timeOf(g.createdAt)}`]);
  if (g.state === 'pending') {
    const approved = (g.approvals ?? []).filter((a) => a.decision === 'approve');
    rows.push(['Approvals', el('span', { 'data-progress': g.id, text: `${approved.length} of ${g.requiredApprovals}${approved.length ? ` — approved by ${approved.map((a) => a.approver).join(', ')}` : ''}` })]);
  }
  if (g.approvals?.some((a) => a.comment)) rows.push(['Comments', el('ul', { class: 'decisions' }, g.approvals.filter((a) => a.comment).map((a) => el('li', {}, el('strong', { text: a.approver }), `: “${a.comment}”`)))]);
  const side = el('div', { class: 'side' });
  if (g.state === 'active') {
    side.append(el('div', { class: 'countdown', role: 'timer', 'aria-label': 'Time left', 'data-countdown': g.id, text: clock(g.secondsLeft ?? 0) }), el('div', { class: 'countdown-label', text: 'left' }));
  } else if (['pending', 'requested', 'approved', 'opening', 'extending', 'closing'].includes(g.state)) {
    const text = g.state === 'pending' ? 'Checking for a decision…' : g.state === 'closing' ? 'Closing…' : g.state === 'extending' ? 'Extending…' : 'Opening…';
    side.append(el('div', { class: 'waiting' }, el('span', { class: 'spinner', 'aria-hidden': 'true' }), text));
  }
  if (g.state === 'active' || g.state === 'pending' || g.state === 'approved') {
    const label = g.state === 'active' ? 'Close now' : 'Cancel request';
    side.append(el('button', { type: 'button', class: 'danger', 'data-close': g.id, 'aria-label': `${label}: ${g.target}`, onclick: (e) => closeGrant(g, e.currentTarget), text: label }));
  }
  side.append(el('a', { class: 'button ghost small', href: `/grants/${encodeURIComponent(g.id)}`, 'aria-label': `Details of ${g.target}`, text: 'Details' }));
  const card = el(
    'article',
    { class: `grant ${g.state}`, id: `grant-${g.id}`, tabindex: '-1', 'data-grant': g.id, 'aria-labelledby': `grant-${g.id}-h` },
    el(
      'div',
      {},
      el('div', { class: 'grant-head' }, el('h3', { id: `grant-${g.id}-h`, text: g.target }), stateBadge(g), isSimulated(t) ? el('span', { class: 'badge sim', text: 'SIMULATED firewall' }) : null),
      el('dl', {}, rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)])),
      el('div', { class: 'alert error card-error', role: 'alert', hidden: true }),
    ),
    side,
  );
  if (g.state === 'active') card.append(el('div', { class: 'bar', 'aria-hidden': 'true' }, el('span', { 'data-bar': g.id })));
  return card;
}

function connectCell(g) {
  if (!g.connect) return el('span', { class: 'muted', text: `No address is configured for ${g.target}; connect to it on port ${g.port}.` });
  const copy = el('button', {
    type: 'button',
    class: 'ghost small',
    text: 'Copy',
    'aria-label': `Copy ${g.connect}`,
    onclick: async (e) => {
      const b = e.currentTarget;
      try {
        await navigator.clipboard.writeText(g.connect);
        b.textContent = 'Copied';
      } catch {
        b.textContent = 'Select and copy';
      }
      setTimeout(() => (b.textContent = 'Copy'), 2000);
    },
  });
  const rdp = el('a', { class: 'button ghost small', href: `/ui/grants/${encodeURIComponent(g.id)}/connect.rdp`, download: `${g.target}.rdp`, text: 'Download .rdp' });
  return el('div', { class: 'connect' }, el('code', { 'data-connect': g.id, text: g.connect }), copy, rdp);
}

async function closeGrant(g, button) {
  button.disabled = true;
  const label = button.textContent;
  button.textContent = g.state === 'active' ? 'Closing…' : 'Cancelling…';
  const r = await api('POST', `/grants/${encodeURIComponent(g.id)}/revoke`, {});
  if (r.error) {
    button.disabled = false;
    button.textContent = label;
    const box = $(`grant-${g.id}`)?.querySelector('.card-error');
    if (box) {
      box.textContent = sentence(r.error.message);
      box.hidden = false;
    }
    if (r.error.stepUp) showError(r.error);
    return;
  }
  upsertGrant(r.data.grant);
  notice(g.state === 'active' ? `Closed: the port of ${g.target} is shut again.` : `Cancelled your request for ${g.target}.`);
  $('grants-h').setAttribute('tabindex', '-1');
  $('grants-h').focus();
  schedulePoll();
}

function historyTable(grants) {
  const head = el('tr', {}, ['Target', 'State', 'From', 'Reason', 'When', ''].map((h) => el('th', { scope: 'col' }, h || el('span', { class: 'sr-only', text: 'Details' }))));
  const rows = grants.map((g) =>
    el('tr', { 'data-grant': g.id }, el('td', {}, el('strong', { text: g.target })), el('td', {}, stateBadge(g)), el('td', {}, el('code', { text: g.source })), el('td', { text: g.reason }), el('td', { text: timeOf(g.closedAt || g.createdAt) }), el('td', {}, el('a', { href: `/grants/${encodeURIComponent(g.id)}`, 'aria-label': `Details of ${g.target}`, text: 'Details' }))),
  );
  return el('div', { class: 'table-wrap' }, el('table', {}, el('thead', {}, head), el('tbody', {}, rows)));
}

/** Once a second: countdowns and bars; at zero, ask the server (the reaper closes it). */
function tick() {
  const now = performance.now();
  let expired = false;
  for (const [id, d] of state.deadlines) {
    const left = (d.at - now) / 1000;
    const c = document.querySelector(`[data-countdown="${CSS.escape(id)}"]`);
    if (c) {
      c.textContent = clock(left);
      c.classList.toggle('low', left < 60 && d.total > 120);
    }
    const bar = document.querySelector(`[data-bar="${CSS.escape(id)}"]`);
    if (bar) bar.style.width = `${Math.max(0, Math.min(100, (left / d.total) * 100))}%`;
    if (left <= 0) expired = true;
  }
  if (expired && !state.expiryCheck) {
    state.expiryCheck = setTimeout(async () => {
      await refreshGrants();
      state.expiryCheck = 0;
    }, 1000);
  }
}

// ---- targets table ------------------------------------------------------------------------

function renderTargets() {
  const box = $('targets');
  if (!state.targets.length) {
    box.replaceChildren(el('p', { class: 'empty', text: 'No targets are available to you. Ask your administrator if you need one.' }));
    return;
  }
  const limits = state.targets.map(limitOf);
  const showMax = limits.some((l) => l.maxSeconds !== undefined);
  const showApproval = limits.some((l) => approvalText(l) !== undefined);
  const cols = ['Target', 'Connect', 'Firewall', showMax && 'Longest', showApproval && 'Approval', ''].filter((c) => c !== false);
  const rows = state.targets.map((t, i) => {
    const l = limits[i];
    const cells = [
      el(
        'td',
        {},
        el('strong', { text: t.id }),
        t.description ? el('div', { class: 'desc', text: t.description }) : null,
        el('ul', { class: 'chips', 'aria-label': 'Tags' }, Object.entries(t.tags || {}).map(([k, v]) => el('li', { text: `${k}=${v}` }))),
      ),
      el('td', {}, t.connect ? el('code', { text: t.connect }) : el('span', { class: 'muted', text: '—' })),
      el('td', {}, el('span', { text: t.firewall }), isSimulated(t) ? [' ', el('span', { class: 'badge sim', text: 'SIMULATED firewall' })] : null),
    ];
    if (showMax) cells.push(el('td', { text: l.maxSeconds === undefined ? '—' : l.maxSeconds === 0 ? 'not permitted' : `${durationLabel(l.maxSeconds)}${t.reasonDependent ? ' (with a suitable reason)' : ''}` }));
    if (showApproval) {
      const a = approvalText(l);
      cells.push(el('td', {}, a ? el('span', { class: `badge ${a.kind}`, text: a.short }) : '—'));
    }
    cells.push(
      el('td', {}, el('button', {
        type: 'button',
        class: 'ghost small',
        'aria-label': `Request access to ${t.id}`,
        text: 'Request',
        onclick: () => {
          $('target').value = t.id;
          onTargetChange();
          $('request-h').scrollIntoView({ behavior: 'smooth', block: 'start' });
          $('reason').focus();
        },
      })),
    );
    return el('tr', { 'data-target': t.id }, cells);
  });
  box.replaceChildren(el('div', { class: 'table-wrap' }, el('table', {}, el('thead', {}, el('tr', {}, cols.map((c) => el('th', { scope: 'col', text: c })))), el('tbody', {}, rows))));
}

// ---- start --------------------------------------------------------------------------------

function formatTimes() {
  for (const t of document.querySelectorAll('time[datetime]')) {
    const v = t.getAttribute('datetime');
    if (v) t.textContent = timeOf(v);
  }
}

function wireSignOut() {
  $('sign-out')?.addEventListener('submit', async (ev) => {
    // The CSRF token lives only in script memory until this moment; the post then follows the IdP's logout redirect.
    const form = ev.currentTarget;
    ev.preventDefault();
    try {
      form.elements._csrf.value = state.csrf ?? (await loadSession()).csrf;
    } catch {
      return;
    }
    form.submit();
  });
}

async function requestPage() {
  $('request').addEventListener('submit', onSubmit);
  $('target').addEventListener('change', onTargetChange);
  for (const r of document.querySelectorAll('input[name=source]')) r.addEventListener('change', onSourceChange);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') void refreshGrants();
  });

  const [session, targets] = await Promise.all([loadSession().catch(() => null), api('GET', '/targets')]);
  if (session && session.mfa && session.mfaFresh === false) {
    $('me-mfa').append(el('div', { class: 'help', text: 'Your second-factor sign-in is older than allowed; you will be asked to sign in again when you request access.' }));
  }
  if (targets.error) {
    $('targets').replaceChildren(el('p', { class: 'alert error', text: sentence(targets.error.message) }));
  } else {
    state.targets = targets.data.targets;
    renderTargets();
  }
  fillTargets();
  restoreDraft();
  await refreshGrants();
  setInterval(tick, 500);
}

/** Approve or deny with a comment; the request leaves the inbox once this approver has decided. */
function approvalsPage() {
  for (const form of document.querySelectorAll('form.decide')) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const id = form.dataset.grant;
      const decision = ev.submitter?.value === 'deny' ? 'deny' : 'approve';
      const box = form.querySelector('.card-error');
      box.hidden = true;
      for (const b of form.querySelectorAll('button')) b.disabled = true;
      const comment = form.elements.comment.value.trim();
      const r = await api('POST', `/grants/${encodeURIComponent(id)}/${decision}`, comment ? { comment } : {});
      for (const b of form.querySelectorAll('button')) b.disabled = false;
      if (r.error) {
        box.textContent = sentence(r.error.message);
        box.hidden = false;
        if (r.error.stepUp) box.append(' ', el('a', { href: r.error.stepUp, text: 'Sign in again to continue' }));
        return;
      }
      const g = r.data.grant;
      const article = $(`req-${id}`);
      const next = article.nextElementSibling ?? article.previousElementSibling;
      article.remove();
      const left = g.requiredApprovals - 1;
      notice(
        decision === 'deny'
          ? `Denied ${g.requester}'s request for ${g.target}. They see your comment.`
          : g.state === 'active'
            ? `Approved: ${g.requester} can connect to ${g.target} until ${timeOf(g.expiresAt)}.`
            : g.state === 'pending'
              ? `Your approval is recorded; ${g.target} waits for ${left > 0 ? 'another approver' : 'the others'}.`
              : `Approved; the request is now ${g.state}.`,
      );
      if (!document.querySelector('article.request')) $('inbox').replaceChildren(el('p', { class: 'empty', id: 'inbox-empty', text: 'Nothing is waiting for your decision.' }));
      const count = document.querySelector('[id^=nav-count-approvals]');
      if (count) count.remove();
      (next?.querySelector('input') ?? $('notice')).focus?.();
    });
  }
}

/** The grant page: countdown, a notice before expiry, Close now, Extend, and a reload when its state changes. */
function grantPage() {
  const card = $('grant');
  const id = card.dataset.grant;
  const left = Number(card.dataset.secondsLeft);
  const start = performance.now();
  let warned = false;
  if (card.dataset.state === 'active' && Number.isFinite(left)) {
    const update = () => {
      const rest = left - (performance.now() - start) / 1000;
      const c = $('countdown');
      if (c) c.textContent = clock(rest);
      // A few minutes' warning (or a fifth of a short grant) so nobody is cut off mid-task.
      if (!warned && rest <= Math.min(300, Math.max(30, left / 5)) && rest > 0) {
        warned = true;
        const n = $('expiry-notice');
        n.replaceChildren(`Access to ${card.querySelector('h1').textContent} closes in ${Math.max(1, Math.round(rest / 60))} minute(s), at ${timeOf(card.dataset.expires)}. `, $('extend') ? 'Extend it below if you need more time.' : '');
        n.hidden = false;
      }
      if (rest <= 0) {
        clearInterval(timer);
        void watch(true);
      }
    };
    const timer = setInterval(update, 500);
    update();
  }
  for (const b of document.querySelectorAll('[data-copy]')) {
    b.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(b.dataset.copy);
        b.textContent = 'Copied';
      } catch {
        b.textContent = 'Select and copy';
      }
    });
  }
  const fail = (e) => {
    const box = $('action-error');
    box.textContent = sentence(e.message);
    box.hidden = false;
    box.focus?.();
  };
  $('close-now')?.addEventListener('click', async (ev) => {
    ev.currentTarget.disabled = true;
    const r = await api('POST', `/grants/${encodeURIComponent(id)}/revoke`, {});
    if (r.error) {
      ev.currentTarget.disabled = false;
      return fail(r.error);
    }
    location.reload();
  });
  $('extend')?.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('extend-submit').disabled = true;
    const r = await api('POST', `/grants/${encodeURIComponent(id)}/extend`, { duration: $('extend-duration').value });
    $('extend-submit').disabled = false;
    if (r.error) return fail(r.error);
    sessionStorage.setItem('portcullis.notice', `Extended: open until ${timeOf(r.data.grant.expiresAt)}.`);
    location.reload();
  });
  const saved = sessionStorage.getItem('portcullis.notice');
  if (saved) {
    sessionStorage.removeItem('portcullis.notice');
    notice(saved);
  }
  // While something can still happen to it, look for a change and show it.
  async function watch(now) {
    const r = await api('GET', `/grants/${encodeURIComponent(id)}`);
    if (!r.error && (r.data.grant.state !== card.dataset.state || (r.data.grant.approvals ?? []).length !== document.querySelectorAll('#decisions li').length)) {
      location.reload();
      return;
    }
    if (!now) setTimeout(() => void watch(false), 2000);
  }
  if (['pending', 'approved', 'opening', 'active', 'extending', 'closing'].includes(card.dataset.state)) setTimeout(() => void watch(false), 2000);
}

function adminPage() {
  for (const b of document.querySelectorAll('[data-revoke]')) {
    b.addEventListener('click', async () => {
      b.disabled = true;
      const r = await api('POST', `/grants/${encodeURIComponent(b.dataset.revoke)}/revoke`, {});
      if (r.error) {
        b.disabled = false;
        notice(sentence(r.error.message), undefined, 'error');
        return;
      }
      const row = b.closest('tr');
      const badge = row.querySelector('.badge');
      badge.textContent = r.data.grant.state;
      badge.dataset.state = r.data.grant.state;
      badge.className = `badge ${r.data.grant.state}`;
      b.remove();
      notice(`Revoked ${r.data.grant.requester}'s access to ${r.data.grant.target}.`);
    });
  }
}

async function main() {
  formatTimes();
  wireSignOut();
  const cls = document.body.classList;
  if (cls.contains('page-app')) await requestPage();
  else if (cls.contains('page-approvals')) approvalsPage();
  else if (cls.contains('page-grant')) grantPage();
  else if (cls.contains('page-admin')) adminPage();
  document.body.dataset.ready = 'true';
}

if (document.body.classList.contains('app')) void main();
else document.body.dataset.ready = 'true';
