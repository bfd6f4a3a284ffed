import { fs } from '../builtins.ts';
import { join } from 'node:path';
import { McpOAuthError } from '../errors.ts';
import type { ClientRegistration, Credential, CredentialKey, CredentialStore } from '../types.ts';
import { writeFileAtomic } from './atomic-write.ts';
import { credentialId, registrationMatches } from './credential-id.ts';
import { withCredentialLock, withFileLock } from './lock.ts';

/** On-disk format of credentials.json. `version` lets a future format refuse to be misread. */
export interface CredentialFile {
  version: 1;
  /** by credentialId(key) */
  credentials: Record<string, Credential>;
  /** by issuer */
  registrations: Record<string, ClientRegistration>;
}

/**
 * Credentials in `DIR/credentials.json`, owner-only (0600 in a 0700 dir), for machines without an
 * OS keychain (servers, containers, CI).
 *
 * Every read goes to disk, because another process (a proxy, another CLI run) may have rotated a
 * refresh token since. Every write is read-modify-write under a store-wide cross-process lock, so
 * two processes updating different credentials never drop each other's entries, and replaces the
 * file atomically, so a crash never leaves a half-written file with the only copy of a token.
 */
export class FileCredentialStore implements CredentialStore {
  readonly kind = 'file' as const;
  readonly dir: string;
  readonly file: string;
  readonly lockDir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.file = join(dir, 'credentials.json');
    this.lockDir = join(dir, 'locks');
  }

  async get(key: CredentialKey): Promise<Credential | undefined> {
    return (await this.#read()).credentials[credentialId(key)];
  }

  async put(credential: Credential): Promise<void> {
    await this.#update((data) => {
      data.credentials[credentialId(credential.key)] = credential;
    });
  }

  async delete(key: CredentialKey): Promise<void> {
    await this.#update((data) => {
      delete data.credentials[credentialId(key)];
    });
  }

  async list(): Promise<Credential[]> {
    return Object.values((await this.#read()).credentials);
  }

  async getRegistration(issuer: string, redirectUri?: string): Promise<ClientRegistration | undefined> {
    const r = (await this.#read()).registrations[issuer];
    return r && registrationMatches(r.redirectUris, redirectUri) ? r : undefined;
  }

  async putRegistration(registration: ClientRegistration): Promise<void> {
    await this.#update((data) => {
      data.registrations[registration.issuer] = registration;
    });
  }

  async deleteRegistration(issuer: string): Promise<void> {
    await this.#update((data) => {
      delete data.registrations[issuer];
    });
  }

  withLock<T>(key: CredentialKey, fn: () => Promise<T>): Promise<T> {
    return withCredentialLock(this.lockDir, key, fn);
  }

  async #update(mutate: (data: CredentialFile) => void): Promise<void> {
    await withFileLock(this.lockDir, `file-store\0${this.file}`, async () => {
      const data = await this.#read();
      mutate(data);
      try {
        await writeFileAtomic(this.file, JSON.stringify(data, null, 2) + '\n');
      } catch (e) {
        throw new McpOAuthError('store_error', `cannot write ${this.file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
          hint: `check that ${this.dir} is writable and the disk is not full`,
          cause: e,
        });
      }
    });
  }

  async #read(): Promise<CredentialFile> {
    let text: string;
    try {
      text = fs().readFileSync(this.file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { version: 1, credentials: {}, registrations: {} };
      throw new McpOAuthError('store_error', `cannot read ${this.file} (${code ?? 'error'})`, {
        hint: `check the permissions of ${this.file}`,
        cause: e,
      });
    }
    await this.#tightenMode();
    return parseCredentialFile(text, this.file);
  }

  /** A credentials file someone made group/world-readable is put back to owner-only. */
  async #tightenMode(): Promise<void> {
    if (process.platform === 'win32') return;
    try {
      const st = fs().statSync(this.file);
      if ((st.mode & 0o077) !== 0) fs().chmodSync(this.file, 0o600);
    } catch {
      // Best effort: the read itself succeeded.
    }
  }
}

export function parseCredentialFile(text: string, file: string): CredentialFile {
  const broken = (why: string) =>
    new McpOAuthError('store_error', `${file} is not a valid credentials file (${why})`, {
      hint: `move it aside (mv ${file} ${file}.broken) and sign in again with \`mcp-oauth login NAME\``,
    });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // Not the JSON.parse message: it quotes file content, which is tokens.
    throw broken('not JSON');
  }
  if (!data || typeof data !== 'object') throw broken('not an object');
  const d = data as Partial<CredentialFile> & { version?: unknown };
  if (typeof d.version === 'number' && d.version > 1) {
    throw new McpOAuthError('store_error', `${file} was written by a newer mcp-oauth (format version ${d.version})`, {
      hint: 'upgrade mcp-oauth',
    });
  }
  if (d.version !== 1) throw broken('unknown format version');
  const isRecord = (v: unknown) => !!v && typeof v === 'object' && !Array.isArray(v);
  if (!isRecord(d.credentials) || !isRecord(d.registrations)) throw broken('missing credentials or registrations');
  return { version: 1, credentials: d.credentials!, registrations: d.registrations! };
}
