// The web UI's static files (one script, one stylesheet), read once and served by content hash.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Asset {
  /** Path that changes with the content, so browsers may cache it for good. */
  path: string;
  type: string;
  body: Buffer;
}

const DIR = join(import.meta.dirname, 'static');

function load(name: string, type: string): Asset {
  const body = readFileSync(join(DIR, name));
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  const dot = name.lastIndexOf('.');
  return { path: `/ui/${name.slice(0, dot)}.${hash}${name.slice(dot)}`, type, body };
}

export interface Assets {
  script: Asset;
  style: Asset;
  byPath: Map<string, Asset>;
}

export function loadAssets(): Assets {
  const script = load('app.js', 'text/javascript; charset=utf-8');
  const style = load('app.css', 'text/css; charset=utf-8');
  return { script, style, byPath: new Map([script, style].map((a) => [a.path, a])) };
}
