// CLI profiles, one per broker: settings and tokens under $XDG_CONFIG_HOME/portcullis (0700), files 0600.
// Tokens live in their own file so that `logout` removes exactly the secret and keeps the broker's address.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { CliError, usage } from './client/cli-error.ts';

export const DEFAULT_PROFILE = 'default';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface ProfileSettings {
  /** The broker's base URL, e.g. https://portcullis.example.com (no trailing slash). */
  server: string;
  issuer: string;
  clientId: string;
  scope?: string | undefined;
}

export interface StoredTokens {
  idToken: string;
  refreshToken?: string | undefined;
  /** Epoch milliseconds when the ID token expires. */
  expiresAt: number;
}

/** $XDG_CONFIG_HOME/portcullis, or ~/.config/portcullis; the XDG spec says a relative XDG_CONFIG_HOME is ignored. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.config'), 'portcullis');
}

/** The profile in force: --profile, else PORTCULLIS_PROFILE, else "default". Names become file names, so they are checked. */
export function profileName(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const name = flag ?? (env.PORTCULLIS_PROFILE || DEFAULT_PROFILE);
  if (!NAME.test(name)) throw usage(`invalid profile name "${name.slice(0, 64)}"`, 'use letters, digits, ".", "_" or "-" (e.g. --profile acme)');
  return name;
}

export class ProfileStore {
  constructor(readonly dir: string = configDir()) {}

  settingsPath(name: string): string {
    return join(this.dir, 'profiles', `${name}.json`);
  }

  tokenPath(name: string): string {
    return join(this.dir, 'credentials', `${name}.json`);
  }

  readSettings(name: string): ProfileSettings | undefined {
    const v = this.readJson(this.settingsPath(name));
    if (v === undefined) return undefined;
    const s = v as Partial<ProfileSettings>;
    if (typeof s.server !== 'string' || typeof s.issuer !== 'string' || typeof s.clientId !== 'string') {
      throw usage(`profile file ${this.settingsPath(name)} is not valid`, `sign in again to rewrite it: portcullis login --profile ${name} --server URL`);
    }
    return { server: s.server, issuer: s.issuer, clientId: s.clientId, scope: typeof s.scope === 'string' ? s.scope : undefined };
  }

  writeSettings(name: string, s: ProfileSettings): void {
    this.writeSecret(this.settingsPath(name), s);
  }

  readTokens(name: string): StoredTokens | undefined {
    const path = this.tokenPath(name);
    const v = this.readJson(path) as Partial<StoredTokens> | undefined;
    if (v === undefined) return undefined;
    // A copy restored from a backup may have lost its mode; a token file readable by others is repaired, not trusted as is.
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    if (typeof v.idToken !== 'string' || typeof v.expiresAt !== 'number') return undefined;
    return { idToken: v.idToken, refreshToken: typeof v.refreshToken === 'string' ? v.refreshToken : undefined, expiresAt: v.expiresAt };
  }

  writeTokens(name: string, t: StoredTokens): void {
    this.writeSecret(this.tokenPath(name), { idToken: t.idToken, refreshToken: t.refreshToken, expiresAt: t.expiresAt });
  }

  /** True when there was a token file to remove. */
  deleteTokens(name: string): boolean {
    const p = this.tokenPath(name);
    const had = existsSync(p);
    rmSync(p, { force: true });
    return had;
  }

  deleteSettings(name: string): void {
    rmSync(this.settingsPath(name), { force: true });
  }

  list(): string[] {
    const dir = join(this.dir, 'profiles');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .filter((n) => NAME.test(n))
      .sort();
  }

  private readJson(path: string): unknown {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CliError('ERROR', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    try {
      return JSON.parse(text);
    } catch {
      // A half-written or hand-edited file: treat it as absent rather than echo its content (it may hold a token).
      return undefined;
    }
  }

  /**
   * Writes via a 0600 temporary file in the same directory and renames it into place, so the
   * secret is never readable by others, not even for a moment, and a crash leaves the old file.
   */
  private writeSecret(path: string, value: unknown): void {
    const parent = join(path, '..');
    for (const d of [this.dir, parent]) {
      mkdirSync(d, { recursive: true, mode: 0o700 });
      chmodSync(d, 0o700);
    }
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(value, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      chmodSync(tmp, 0o600);
      renameSync(tmp, path);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }
}
