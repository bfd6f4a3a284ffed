import { join } from 'node:path';
import type { AsyncEntry, EntryOptions } from '@napi-rs/keyring';

type KeyringModule = typeof import('@napi-rs/keyring');
let keyringModule: Promise<KeyringModule> | undefined;
/** Loaded on first use: the native module's loader costs ~70 ms, which a file-store process (and
 * the proxy's start-up) should not pay. */
function keyring(): Promise<KeyringModule> {
  keyringModule ??= import('@napi-rs/keyring');
  return keyringModule;
}
import { McpOAuthError } from '../errors.ts';
import { redact } from '../secrets.ts';
import type { ClientRegistration, Credential, CredentialKey, CredentialStore } from '../types.ts';
import { credentialId, registrationAccount, registrationMatches } from './credential-id.ts';
import { withCredentialLock } from './lock.ts';
import { crypto } from '../builtins.ts';

export const KEYCHAIN_SERVICE = 'mcp-oauth';
const PROBE_PREFIX = 'probe|';
const REGISTRATION_PREFIX = 'registration|';
/** A locked keyring may wait for an unlock prompt nobody sees; do not hang a CLI forever. */
const OPERATION_TIMEOUT_MS = 15_000;

/**
 * On Linux, pin the Secret Service: keyring-rs otherwise falls back silently to the kernel
 * keyring, which is lost at logout/reboot, so tokens would vanish without an error.
 */
const ENTRY_OPTIONS: EntryOptions = { linux: { store: 'secret-service' } };

/**
 * Credentials in the OS keychain (macOS Keychain, Windows Credential Manager, Secret Service on
 * Linux): one entry per credential, service `mcp-oauth`, account = credentialId(key), password =
 * the credential as JSON. Client registrations: account `registration|ISSUER`. Lock files (no
 * secrets) live in HOME/locks.
 */
export class KeychainCredentialStore implements CredentialStore {
  readonly kind = 'keychain' as const;
  readonly service: string;
  readonly lockDir: string;

  constructor(opts: { home: string; service?: string }) {
    this.service = opts.service ?? KEYCHAIN_SERVICE;
    this.lockDir = join(opts.home, 'locks');
  }

  async get(key: CredentialKey): Promise<Credential | undefined> {
    return this.#readJson<Credential>(credentialId(key));
  }

  async put(credential: Credential): Promise<void> {
    await this.#write(credentialId(credential.key), JSON.stringify(credential), [credential.accessToken, credential.refreshToken]);
  }

  async delete(key: CredentialKey): Promise<void> {
    await this.#remove(credentialId(key));
  }

  async list(): Promise<Credential[]> {
    const { findCredentialsAsync } = await keyring();
    const found = await guard('list the keychain entries', [], (signal) => findCredentialsAsync(this.service, null, signal));
    const out: Credential[] = [];
    for (const { account, password } of found) {
      // The Redis store's encryption key (src/store/redis-key.ts) shares the service: never a credential.
      if (account.startsWith(REGISTRATION_PREFIX) || account.startsWith(PROBE_PREFIX) || account === 'redis-encryption-key') continue;
      try {
        out.push(JSON.parse(password) as Credential);
      } catch {
        // An entry some other program wrote under our service name: not ours to interpret.
      }
    }
    return out;
  }

  async getRegistration(issuer: string, redirectUri?: string): Promise<ClientRegistration | undefined> {
    const r = await this.#readJson<ClientRegistration>(registrationAccount(issuer));
    return r && registrationMatches(r.redirectUris, redirectUri) ? r : undefined;
  }

  async putRegistration(registration: ClientRegistration): Promise<void> {
    await this.#write(registrationAccount(registration.issuer), JSON.stringify(registration), [registration.clientSecret]);
  }

  async deleteRegistration(issuer: string): Promise<void> {
    await this.#remove(registrationAccount(issuer));
  }

  withLock<T>(key: CredentialKey, fn: () => Promise<T>): Promise<T> {
    return withCredentialLock(this.lockDir, key, fn);
  }

  async #entry(account: string): Promise<AsyncEntry> {
    const { AsyncEntry } = await keyring();
    return new AsyncEntry(this.service, account, ENTRY_OPTIONS);
  }

  async #readJson<T>(account: string): Promise<T | undefined> {
    const password = await guard(`read the keychain entry ${account}`, [], async (signal) => (await this.#entry(account)).getPassword(signal));
    if (password == null) return undefined;
    try {
      return JSON.parse(password) as T;
    } catch {
      throw new McpOAuthError('store_error', `the keychain entry ${this.service}/${account} is not valid JSON`, {
        hint: `delete it (e.g. secret-tool clear service ${this.service} username '${account}') and sign in again`,
      });
    }
  }

  async #write(account: string, password: string, secrets: Array<string | undefined>): Promise<void> {
    await guard(`write the keychain entry ${account}`, [password, ...secrets], async (signal) => (await this.#entry(account)).setPassword(password, signal));
  }

  async #remove(account: string): Promise<void> {
    await guard(`delete the keychain entry ${account}`, [], async (signal) => (await this.#entry(account)).deleteCredential(signal));
  }
}

/** Runs one keyring call with a deadline; failures become `keychain_unavailable` (no secrets). */
async function guard<T>(what: string, secrets: Array<string | undefined>, op: (signal: AbortSignal) => Promise<T>, timeoutMs = OPERATION_TIMEOUT_MS): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s (is the keyring locked?)`));
    }, timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([op(controller.signal), deadline]);
  } catch (e) {
    const reason = redact(e instanceof Error ? e.message : String(e), secrets);
    throw new McpOAuthError('keychain_unavailable', `cannot ${what}: ${reason}`, {
      hint: 'unlock the OS keychain, or use the file store: set MCP_OAUTH_STORE=file (or [settings] store = "file")',
      cause: e,
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Is a usable keychain there? Writes, reads back and deletes a probe entry. On Linux without a
 * session bus there is no Secret Service to talk to, so we do not even try (the D-Bus client may
 * block trying to autolaunch one).
 */
export async function probeKeychain(opts: { env?: NodeJS.ProcessEnv; service?: string; timeoutMs?: number } = {}): Promise<{ ok: true } | { ok: false; reason: string }> {
  const env = opts.env ?? process.env;
  if (process.platform === 'linux' && !env.DBUS_SESSION_BUS_ADDRESS) {
    return { ok: false, reason: 'no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset), so no Secret Service' };
  }
  const service = opts.service ?? KEYCHAIN_SERVICE;
  const value = crypto().randomBytes(8).toString('hex');
  const timeoutMs = opts.timeoutMs ?? 5_000;
  try {
    // The constructor itself throws when the pinned Secret Service is not on the bus.
    const { AsyncEntry } = await keyring();
    const entry = new AsyncEntry(service, `${PROBE_PREFIX}${process.pid}|${crypto().randomBytes(4).toString('hex')}`, ENTRY_OPTIONS);
    await guard('write a probe entry', [], (signal) => entry.setPassword(value, signal), timeoutMs);
    const back = await guard('read the probe entry', [], (signal) => entry.getPassword(signal), timeoutMs);
    await guard('delete the probe entry', [], (signal) => entry.deleteCredential(signal), timeoutMs);
    if (back !== value) return { ok: false, reason: 'the keychain did not return what was written' };
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}
