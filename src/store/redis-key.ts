/**
 * Where the Redis store's encryption key comes from. Never from Redis (whoever reads Redis, its
 * dumps or a replica must see only ciphertext): from this host, in this order —
 *
 * 1. `MCP_OAUTH_REDIS_KEY` (base64 of 32 bytes): containers and CI inject secrets this way, and an
 *    explicit per-process setting beats anything stored;
 * 2. `[settings] redis_key_file` (base64 text, or 32 raw bytes): configured explicitly, so a missing
 *    or unreadable file is an error, never a silent fall-through to the keychain;
 * 3. the OS keychain (service `mcp-oauth`, account `redis-encryption-key`): the default place on a
 *    workstation, where `mcp-oauth store-key create` puts a new key.
 */
import type { AsyncEntry, EntryOptions } from '@napi-rs/keyring';
import { McpOAuthError } from '../errors.ts';
import { crypto, fsPromises } from '../builtins.ts';
import { redact } from '../secrets.ts';
import { redisKeyFromBytes, type RedisKey } from './redis-crypto.ts';

export const REDIS_KEY_ENV = 'MCP_OAUTH_REDIS_KEY';
export const REDIS_KEY_KEYCHAIN_SERVICE = 'mcp-oauth';
export const REDIS_KEY_KEYCHAIN_ACCOUNT = 'redis-encryption-key';
const KEYCHAIN_TIMEOUT_MS = 15_000;
/** As keychain-store.ts: pin the Secret Service on Linux (the kernel keyring is lost at logout). */
const ENTRY_OPTIONS: EntryOptions = { linux: { store: 'secret-service' } };

export type RedisKeySource =
  | { kind: 'env'; variable: string }
  | { kind: 'file'; path: string }
  | { kind: 'keychain'; service: string; account: string };

export type LoadedRedisKey = RedisKey & { source: RedisKeySource };

export const KEYCHAIN_SOURCE: RedisKeySource = { kind: 'keychain', service: REDIS_KEY_KEYCHAIN_SERVICE, account: REDIS_KEY_KEYCHAIN_ACCOUNT };

export function describeKeySource(s: RedisKeySource): string {
  if (s.kind === 'env') return `the environment variable ${s.variable}`;
  if (s.kind === 'file') return `the file ${s.path}`;
  return `the OS keychain (service ${s.service}, account ${s.account})`;
}

const CREATE_HINT =
  'create one with `mcp-oauth store-key create` (OS keychain) or `mcp-oauth store-key create --file PATH` (then set [settings] redis_key_file = PATH); ' +
  'every host that shares the store needs the same key: `mcp-oauth store-key export` there, `mcp-oauth store-key import` here';

/** A new 256-bit key (AES-256 needs exactly that), as the base64 text every source holds. */
export function generateRedisKeyText(): string {
  return crypto().randomBytes(32).toString('base64');
}

/** Base64 of 32 bytes (or, from a file, the 32 raw bytes) → the key; `config_invalid` naming `where`, never the value. */
export function parseRedisKey(data: Buffer | string, where: string): RedisKey {
  if (Buffer.isBuffer(data) && data.length === 32) return redisKeyFromBytes(data);
  const text = (Buffer.isBuffer(data) ? data.toString('utf8') : data).trim();
  const key = Buffer.from(text, 'base64');
  if (key.length !== 32 || !/^[A-Za-z0-9+/=_-]+$/.test(text)) {
    throw new McpOAuthError('config_invalid', `the Redis store key in ${where} is not 32 bytes of base64 (AES-256 needs a 256-bit key)`, { hint: CREATE_HINT });
  }
  return redisKeyFromBytes(key);
}

/**
 * The key, from the first source that is set (see the module comment). `keychain: false` skips the
 * keychain (callers that must not touch it); by default it is the OS keychain.
 */
export async function loadRedisKey(opts: { env: NodeJS.ProcessEnv; keyFile?: string; keychain?: KeychainSlot | false }): Promise<LoadedRedisKey> {
  const fromEnv = opts.env[REDIS_KEY_ENV];
  if (fromEnv) return { ...parseRedisKey(fromEnv, REDIS_KEY_ENV), source: { kind: 'env', variable: REDIS_KEY_ENV } };
  if (opts.keyFile) return { ...(await readKeyFile(opts.keyFile)), source: { kind: 'file', path: opts.keyFile } };
  const slot = opts.keychain === false ? undefined : (opts.keychain ?? osKeychainSlot(opts.env));
  const found = slot ? await slot.read() : { absent: 'not consulted' };
  if ('value' in found) return { ...parseRedisKey(found.value, describeKeySource(KEYCHAIN_SOURCE)), source: KEYCHAIN_SOURCE };
  throw new McpOAuthError(
    'config_invalid',
    `the Redis store has no encryption key: ${REDIS_KEY_ENV} is not set, [settings] redis_key_file is not set, and ${describeKeySource(KEYCHAIN_SOURCE)} has none (${found.absent})`,
    { hint: CREATE_HINT },
  );
}

/** Reads a key file; a missing or unreadable file is `config_invalid` naming it (and how to make it). */
export async function readKeyFile(path: string): Promise<RedisKey> {
  let raw: Buffer;
  try {
    raw = await fsPromises().readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new McpOAuthError(
      'config_invalid',
      `cannot read the Redis store key file ${path} (${code === 'ENOENT' ? 'it does not exist' : code}); it is [settings] redis_key_file, which wins over the OS keychain`,
      { hint: `create it with \`mcp-oauth store-key create --file ${path}\`, copy it from a host that has it, or remove redis_key_file to use ${REDIS_KEY_ENV} or the OS keychain`, cause: e },
    );
  }
  return parseRedisKey(raw, path);
}

/** Where a key lives in the keychain. `read` answers `absent` when there is no usable keychain at all. */
export interface KeychainSlot {
  read(): Promise<{ value: string } | { absent: string }>;
  write(value: string): Promise<void>;
}

/**
 * The key's entry in the OS keychain. No keychain on this host (Linux without a session bus, or a
 * bus without a Secret Service) is `absent`, not an error: the other sources may still be set. A
 * keychain that is there but fails (locked, no answer) is `keychain_unavailable`: saying "no key"
 * then would invite creating a second one.
 */
export function osKeychainSlot(env: NodeJS.ProcessEnv, account = REDIS_KEY_KEYCHAIN_ACCOUNT): KeychainSlot {
  const entry = async (): Promise<AsyncEntry | { absent: string }> => {
    if (process.platform === 'linux' && !env.DBUS_SESSION_BUS_ADDRESS) {
      return { absent: 'no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset), so no Secret Service' };
    }
    const { AsyncEntry } = await import('@napi-rs/keyring');
    try {
      // The constructor throws when the pinned Secret Service is not on the bus.
      return new AsyncEntry(REDIS_KEY_KEYCHAIN_SERVICE, account, ENTRY_OPTIONS);
    } catch (e) {
      return { absent: `no OS keychain: ${e instanceof Error ? e.message : String(e)}` };
    }
  };
  return {
    async read() {
      const e = await entry();
      if (!('getPassword' in e)) return e;
      const value = await deadline('read', account, (signal) => e.getPassword(signal));
      return value == null ? { absent: 'no such entry' } : { value };
    },
    async write(value) {
      const e = await entry();
      if (!('setPassword' in e)) {
        throw new McpOAuthError('keychain_unavailable', `the OS keychain is not usable: ${e.absent}`, {
          hint: 'start or unlock the keychain (Secret Service on Linux), or keep the key in a file: mcp-oauth store-key create --file PATH',
        });
      }
      await deadline('write', account, (signal) => e.setPassword(value, signal), [value]);
    },
  };
}

/** One keyring call with a deadline (a locked keyring may wait on a prompt nobody sees); the error never holds the key. */
async function deadline<T>(what: 'read' | 'write', account: string, op: (signal: AbortSignal) => Promise<T>, secrets: string[] = []): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`no answer within ${KEYCHAIN_TIMEOUT_MS / 1000} s (is the keyring locked?)`));
    }, KEYCHAIN_TIMEOUT_MS);
    timer.unref();
  });
  try {
    return await Promise.race([op(controller.signal), expired]);
  } catch (e) {
    throw new McpOAuthError('keychain_unavailable', `cannot ${what} the Redis store key in the OS keychain (service ${REDIS_KEY_KEYCHAIN_SERVICE}, account ${account}): ${redact(e instanceof Error ? e.message : String(e), secrets)}`, {
      hint: `unlock the OS keychain, or give the key another way: ${REDIS_KEY_ENV} or [settings] redis_key_file`,
      cause: e,
    });
  } finally {
    clearTimeout(timer);
  }
}
