// Broker and issuer URLs given on the command line: normalised, and plain http only on loopback.
import { isIP } from 'node:net';
import { usage } from './cli-error.ts';

/** True for http(s)://localhost, 127.0.0.0/8 and [::1]: the only places plain http is accepted. */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  if (host === 'localhost' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * The base URL without a trailing slash. Plain http anywhere but loopback would send ID tokens in
 * clear text, so it is refused rather than offered behind a flag.
 */
export function normaliseBaseUrl(text: string, what: '--server' | '--issuer'): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw usage(`${what} must be a URL such as https://portcullis.example.com, not "${text.slice(0, 100)}"`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw usage(`${what} must be an https:// URL`);
  if (u.username || u.password || u.search || u.hash) throw usage(`${what} must not carry credentials, a query or a fragment`);
  if (u.protocol === 'http:' && !isLoopbackUrl(u.href)) {
    throw usage(`${what} ${u.origin} uses plain http; tokens would cross the network unencrypted`, `use https:// (plain http is accepted only for 127.0.0.1, [::1] and localhost)`);
  }
  return u.href.replace(/\/+$/, '');
}
