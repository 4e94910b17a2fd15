// The browser pages of the Slack journeys (link, confirm, step-up result): the web's Eta view `slack`, under its CSP.
import { render } from '../http/web/render.ts';
import { loadAssets, type Assets } from '../http/web/assets.ts';

/** One paragraph; `cls` is an alert style (ok, warn, error); `data` becomes data-* attributes for tests and scripts. */
export interface Para {
  text: string;
  cls?: 'ok' | 'warn' | 'error';
  id?: string;
  data?: Record<string, string>;
}

export interface SlackPage {
  title: string;
  paras: Para[];
  facts?: [string, string][];
  form?: { action: string; csrf: string; label: string };
}

let assets: Assets | undefined;

export function slackPage(p: SlackPage): string {
  assets ??= loadAssets();
  return render('slack', { assets, title: p.title, bodyClass: 'landing' }, { heading: p.title, paras: p.paras, facts: p.facts, form: p.form });
}

/** Beside the one helmet CSP: a page naming a one-time link is never cached. */
export const PAGE_HEADERS = { 'Cache-Control': 'no-store' };
