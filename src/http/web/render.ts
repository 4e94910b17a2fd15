// Server-side HTML: Eta templates in views/, auto-escaped (<%= %>), plus the date formatting every page shares.
import { join } from 'node:path';
import { Eta } from 'eta';
import type { Assets } from './assets.ts';

const eta = new Eta({ views: join(import.meta.dirname, 'views'), autoEscape: true, cache: true, useWith: false });

export interface NavItem {
  href: string;
  label: string;
  current: boolean;
  count?: number | undefined;
}

/** What the page shell shows around every page. */
export interface Shell {
  assets: Assets;
  title: string;
  bodyClass: string;
  /** data-* attributes on <body> for app.js (names without the data- prefix). */
  data?: Record<string, string | number> | undefined;
  user?: { name: string } | undefined;
  nav?: NavItem[] | undefined;
}

export function render(view: string, shell: Shell, data: Record<string, unknown> = {}): string {
  return eta.render(view, { ...data, shell, fmt: formatter(data.timeZone as string | undefined) });
}

export interface Fmt {
  /** "2 Dec 2026, 07:12 CET": always a date and a zone, so a screenshot or a forwarded link is unambiguous. */
  when(ms: number | string | null | undefined): string;
  iso(ms: number | string | null | undefined): string;
  duration(seconds: number): string;
}

export function formatter(timeZone = 'UTC'): Fmt {
  let f: Intl.DateTimeFormat;
  try {
    f = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZone, timeZoneName: 'short' });
  } catch {
    f = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC', timeZoneName: 'short' });
  }
  const date = (v: number | string | null | undefined) => (v === null || v === undefined || v === '' ? undefined : new Date(v));
  return {
    when: (v) => {
      const d = date(v);
      return d && !Number.isNaN(d.getTime()) ? f.format(d) : '—';
    },
    iso: (v) => {
      const d = date(v);
      return d && !Number.isNaN(d.getTime()) ? d.toISOString() : '';
    },
    duration: durationLabel,
  };
}

/** "90 minutes" → "1 h 30 min"; whole units spelled out ("2 hours"). */
export function durationLabel(seconds: number): string {
  const part = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (seconds > 0 && seconds % 86400 === 0) return part(seconds / 86400, 'day');
  if (seconds > 0 && seconds % 3600 === 0) return part(seconds / 3600, 'hour');
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  if (seconds % 60 === 0) return part(seconds / 60, 'minute');
  return part(seconds, 'second');
}
