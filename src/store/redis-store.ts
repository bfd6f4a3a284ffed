/**
 * Credentials and client registrations in Redis (or Valkey), shared by every host that points at
 * the same database: one sign-in and one refresh per expiry for a fleet, where per-host stores
 * would each rotate (and, with reuse detection, revoke) the same refresh token.
 *
 * - Values are sealed with AES-256-GCM under a key held on each host (src/store/redis-crypto.ts;
 *   the key from the environment, a file or the OS keychain: src/store/redis-key.ts).
 * - `withLock` is an in-process chain plus a Redis lease with a fencing token
 *   (src/store/redis-lease.ts); `put`/`delete` of the locked credential inside it are fenced writes.
 * - Redis unreachable: every operation fails fast with `network_error` (exit 6, transient), so the
 *   caller keeps what it has and nothing is overwritten; the next operation connects again.
 *
 * Layout (database of the URL): hash `mcp-oauth:credentials` (field: credential id),
 * hash `mcp-oauth:registrations` (field: issuer), `mcp-oauth:lock:<h>` / `mcp-oauth:fence:<h>`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Redis as RedisClient } from 'ioredis';
import { McpOAuthError } from '../errors.ts';
import { silentLogger, type ClientRegistration, type Credential, type CredentialKey, type CredentialStore, type Logger } from '../types.ts';
import { crypto } from '../builtins.ts';
import { credentialId, registrationMatches } from './credential-id.ts';
import { seal, unseal, type RedisKey } from './redis-crypto.ts';
import { acquireLease, fencedWrite } from './redis-lease.ts';

const CREDENTIALS = 'mcp-oauth:credentials';
const REGISTRATIONS = 'mcp-oauth:registrations';
/** Lease TTL: long enough for a slow token request (the HTTP timeout is 30 s by default, but the lease is renewed every TTL/3). */
export const DEFAULT_LEASE_MS = 15_000;
/** How long a waiter waits for a lease held (and renewed) by someone else: as the file lock (~60 s). */
const DEFAULT_WAIT_MS = 90_000;

export interface RedisStoreOptions {
  url: string;
  key: RedisKey;
  leaseMs?: number;
  waitMs?: number;
  logger?: Logger;
}

/** `host:port/db` of a redis:// URL, for messages: never the user name or password. */
export function redisWhere(url: string): string {
  try {
    const u = new URL(url);
    const db = u.pathname.replace(/^\//, '') || '0';
    return `${u.protocol}//${u.hostname}:${u.port || '6379'}/${db}`;
  } catch {
    return '(an invalid redis URL)';
  }
}

export class RedisCredentialStore implements CredentialStore {
  readonly kind = 'redis' as const;
  readonly where: string;
  readonly #client: RedisClient;
  readonly #key: RedisKey;
  readonly #leaseMs: number;
  readonly #waitMs: number;
  readonly #logger: Logger;
  readonly #chains = new Map<string, Promise<void>>();
  /** The lease this async context holds: credential id → fencing token. */
  readonly #held = new AsyncLocalStorage<{ id: string; token: string }>();
  #connecting: Promise<void> | undefined;
  /** The last connection error ioredis emitted: says why ("ECONNREFUSED") where a command only says "Connection is closed". */
  #lastError: (Error & { code?: string }) | undefined;

  constructor(client: RedisClient, opts: RedisStoreOptions) {
    this.#client = client;
    this.#key = opts.key;
    this.where = redisWhere(opts.url);
    this.#leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    this.#waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
    this.#logger = opts.logger ?? silentLogger;
    client.on('error', (e: Error) => (this.#lastError = e));
    client.on('ready', () => (this.#lastError = undefined));
    client.on('error', (e: Error) => this.#logger.debug('redis store: connection error', { where: this.where, error: e.message }));
    // An idle connection must not keep a CLI process alive: the socket is unreferenced; a command
    // in flight still holds the process through its timeout timer.
    client.on('connect', () => (client as unknown as { stream?: { unref?: () => void } }).stream?.unref?.());
  }

  async get(key: CredentialKey): Promise<Credential | undefined> {
    const id = credentialId(key);
    const sealed = await this.#run(() => this.#client.hget(CREDENTIALS, id));
    return sealed == null ? undefined : unseal<Credential>(this.#key, `credential|${id}`, sealed, this.where);
  }

  async put(credential: Credential): Promise<void> {
    const id = credentialId(credential.key);
    await this.#write(CREDENTIALS, id, seal(this.#key, `credential|${id}`, credential));
  }

  async delete(key: CredentialKey): Promise<void> {
    await this.#write(CREDENTIALS, credentialId(key), undefined);
  }

  async list(): Promise<Credential[]> {
    const all = await this.#run(() => this.#client.hgetall(CREDENTIALS));
    return Object.entries(all).map(([id, sealed]) => unseal<Credential>(this.#key, `credential|${id}`, sealed, this.where));
  }

  async getRegistration(issuer: string, redirectUri?: string): Promise<ClientRegistration | undefined> {
    const sealed = await this.#run(() => this.#client.hget(REGISTRATIONS, issuer));
    if (sealed == null) return undefined;
    const r = unseal<ClientRegistration>(this.#key, `registration|${issuer}`, sealed, this.where);
    return registrationMatches(r.redirectUris, redirectUri) ? r : undefined;
  }

  async putRegistration(registration: ClientRegistration): Promise<void> {
    const sealed = seal(this.#key, `registration|${registration.issuer}`, registration);
    await this.#run(() => this.#client.hset(REGISTRATIONS, registration.issuer, sealed));
  }

  async deleteRegistration(issuer: string): Promise<void> {
    await this.#run(() => this.#client.hdel(REGISTRATIONS, issuer));
  }

  /** In-process chain first (one process never contends with itself), then the Redis lease. */
  async withLock<T>(key: CredentialKey, fn: () => Promise<T>): Promise<T> {
    const id = credentialId(key);
    const previous = this.#chains.get(id) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = previous.then(() => mine);
    this.#chains.set(id, tail);
    try {
      await previous;
      const h = crypto().createHash('sha256').update(id).digest('hex').slice(0, 32);
      const lease = await this.#run(() =>
        acquireLease(this.#client, { lock: `mcp-oauth:lock:${h}`, fence: `mcp-oauth:fence:${h}` }, {
          ttlMs: this.#leaseMs,
          waitMs: this.#waitMs,
          what: `the credential of ${key.serverName}`,
          onRenewError: (e) => this.#logger.debug('redis store: lease renewal failed', { where: this.where, error: (e as Error).message }),
        }),
      );
      try {
        return await this.#held.run({ id, token: lease.token }, fn);
      } finally {
        await lease.release();
      }
    } finally {
      done();
      if (this.#chains.get(id) === tail) this.#chains.delete(id);
    }
  }

  /** Closes the connection (tests, long-running hosts shutting down). */
  async close(): Promise<void> {
    this.#client.disconnect();
  }

  async #write(hash: string, id: string, value: string | undefined): Promise<void> {
    const held = this.#held.getStore();
    if (held?.id === id) {
      const h = crypto().createHash('sha256').update(id).digest('hex').slice(0, 32);
      const ok = await this.#run(() => fencedWrite(this.#client, `mcp-oauth:fence:${h}`, held.token, hash, id, value));
      if (!ok) {
        throw new McpOAuthError('store_error', `lost the lease on this credential before writing it to ${this.where}: another process took over and its newer token was kept`, {
          hint: 'nothing to do: the next call uses the token the other process stored',
        });
      }
      return;
    }
    await this.#run(() => (value === undefined ? this.#client.hdel(hash, id) : this.#client.hset(hash, id, value)));
  }

  /** Connects on demand, and maps every Redis failure to a typed error naming the host (never the password). */
  async #run<T>(op: () => Promise<T>): Promise<T> {
    try {
      if (this.#client.status !== 'ready') {
        this.#connecting ??= this.#client.connect().finally(() => (this.#connecting = undefined));
        await this.#connecting;
      }
      return await op();
    } catch (e) {
      if (e instanceof McpOAuthError) throw e;
      throw this.#toError(e);
    }
  }

  #toError(e: unknown): McpOAuthError {
    const err = e as Error & { code?: string };
    // A reply from the server (NOAUTH, WRONGPASS, READONLY, OOM…) is a setup problem, not an outage.
    if (err?.name === 'ReplyError') {
      return new McpOAuthError('store_error', `the Redis credential store at ${this.where} refused the request: ${err.message.split('\n')[0]}`, {
        hint: 'check the password in MCP_OAUTH_REDIS_URL and that the database is writable',
        cause: e,
      });
    }
    return new McpOAuthError('network_error', `the Redis credential store at ${this.where} is not reachable (${err?.code ?? this.#lastError?.code ?? err?.message ?? 'error'}); stored credentials are unchanged`, {
      hint: `start Redis at ${this.where} (or fix redis_url / MCP_OAUTH_REDIS_URL) and retry`,
      // Says whose outage it is: the TokenManager must not blame the authorization server.
      details: { store: 'redis', where: this.where },
      cause: e,
    });
  }
}

/** Opens the store; ioredis is imported here only, so no other store pays for loading it. */
export async function openRedisStore(opts: RedisStoreOptions): Promise<RedisCredentialStore> {
  const mod = await import('ioredis');
  // ioredis is CommonJS: Node's ESM loader exposes `Redis` as a named export, esbuild's bundle only under `default`.
  const Redis = mod.Redis ?? (mod.default as unknown as { Redis?: typeof mod.Redis }).Redis ?? (mod.default as unknown as typeof mod.Redis);
  const client = new Redis(opts.url, {
    lazyConnect: true,
    // Fail fast instead of queueing or retrying: a caller waiting on a dead Redis must get exit 6
    // in seconds, not hang. Reconnection is on demand (the next operation), so no timer keeps a
    // finished CLI process alive.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2_000,
    commandTimeout: 5_000,
  });
  return new RedisCredentialStore(client, opts);
}
