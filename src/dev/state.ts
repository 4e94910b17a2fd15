// What the development IdP keeps across restarts of `npm start`: its signing key, cookie key and demo enrolments.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { JWK } from 'jose';

export interface DevIdpState {
  /** The private RS256 signing key (with kid): a CLI token from before a restart still verifies. */
  signingKey?: (JWK & { kid: string }) | undefined;
  cookieKey?: string | undefined;
  /** user id → base32 TOTP secret of users who enrolled at sign-in (nina). */
  enrolments: Record<string, string>;
}

/** `dir/dev-idp.json`, readable by its owner only. Demo secrets, but still secrets: never in logs. */
export function devIdpStateFile(dir: string): { load(): DevIdpState; save(s: DevIdpState): void } {
  const path = join(dir, 'dev-idp.json');
  return {
    load() {
      if (!existsSync(path)) return { enrolments: {} };
      const raw = JSON.parse(readFileSync(path, 'utf8')) as Partial<DevIdpState>;
      return { signingKey: raw.signingKey, cookieKey: raw.cookieKey, enrolments: raw.enrolments ?? {} };
    },
    save(s) {
      mkdirSync(dirname(path), { recursive: true });
      // Written aside and renamed, so a crash mid-write never leaves half a key.
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(s)}\n`, { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, path);
    },
  };
}
