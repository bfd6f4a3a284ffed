import { McpOAuthError } from '../errors.ts';
import { silentLogger, type CredentialStore, type Logger } from '../types.ts';
import { FileCredentialStore } from './file-store.ts';
import { KeychainCredentialStore, probeKeychain } from './keychain-store.ts';
import { MemoryCredentialStore } from './memory-store.ts';

export type StoreMode = 'auto' | 'keychain' | 'file' | 'memory' | 'redis';

/**
 * Picks where credentials live. 'auto': the OS keychain when a quick probe (write/read/delete)
 * works, else HOME/credentials.json (0600). 'keychain' fails loudly when there is none, so a user
 * who asked for the keychain never silently gets a file. (MCP_OAUTH_STORE is read by the CLI.)
 */
export async function openCredentialStore(opts: {
  home: string;
  mode?: StoreMode;
  logger?: Logger;
  /** For the keychain probe; defaults to process.env (the keyring library reads it anyway). */
  env?: NodeJS.ProcessEnv;
  /** Mode 'redis': `[settings] redis_url` / `redis_key_file`; MCP_OAUTH_REDIS_URL / MCP_OAUTH_REDIS_KEY
   * in `env` (default: `opts.env`, else process.env) win; with neither key source, the OS keychain. */
  redis?: { url?: string; keyFile?: string; env?: NodeJS.ProcessEnv };
}): Promise<CredentialStore> {
  const mode = opts.mode ?? 'auto';
  const logger = opts.logger ?? silentLogger;
  switch (mode) {
    case 'memory':
      return new MemoryCredentialStore();
    case 'file':
      return new FileCredentialStore(opts.home);
    case 'redis':
      return openRedis(opts.redis?.env ?? opts.env ?? process.env, opts.redis ?? {}, logger);
    case 'keychain': {
      const probe = await probeKeychain({ env: opts.env });
      if (!probe.ok) {
        throw new McpOAuthError('keychain_unavailable', `the OS keychain is not usable: ${probe.reason}`, {
          hint: 'unlock or start the keychain (Secret Service on Linux), or use the file store: MCP_OAUTH_STORE=file',
        });
      }
      return new KeychainCredentialStore({ home: opts.home });
    }
    case 'auto': {
      const probe = await probeKeychain({ env: opts.env });
      if (probe.ok) {
        logger.debug('credential store: OS keychain');
        return new KeychainCredentialStore({ home: opts.home });
      }
      const store = new FileCredentialStore(opts.home);
      logger.debug('credential store: file (keychain not usable)', { reason: probe.reason, file: store.file });
      return store;
    }
    default:
      throw new McpOAuthError('usage', `unknown credential store ${JSON.stringify(mode)}`, {
        hint: 'use one of: auto, keychain, file, memory, redis',
      });
  }
}

/**
 * The shared Redis store (src/store/redis-store.ts), imported only here so the other stores never
 * load the Redis client. The URL from MCP_OAUTH_REDIS_URL (the only place a password may be) wins
 * over `redis_url`; MCP_OAUTH_REDIS_LEASE_MS shortens the lease TTL (tests).
 */
async function openRedis(env: NodeJS.ProcessEnv, settings: { url?: string; keyFile?: string }, logger: Logger): Promise<CredentialStore> {
  const url = env.MCP_OAUTH_REDIS_URL || settings.url;
  if (!url) {
    throw new McpOAuthError('config_invalid', 'store = "redis" needs a Redis URL', {
      hint: 'set [settings] redis_url = "redis://HOST:6379/0", or MCP_OAUTH_REDIS_URL (with the password, if any)',
    });
  }
  const { isRedisUrl } = await import('../config/schema.ts');
  if (!isRedisUrl(url)) {
    throw new McpOAuthError('config_invalid', 'MCP_OAUTH_REDIS_URL must be a redis:// or rediss:// URL', { hint: 'e.g. redis://:PASSWORD@HOST:6379/0' });
  }
  const [{ loadRedisKey }, { openRedisStore }] = await Promise.all([import('./redis-key.ts'), import('./redis-store.ts')]);
  // MCP_OAUTH_REDIS_KEY, else redis_key_file, else the OS keychain (redis-key.ts); never Redis.
  const key = await loadRedisKey({ env, keyFile: settings.keyFile });
  const leaseMs = Number(env.MCP_OAUTH_REDIS_LEASE_MS) || undefined;
  const store = await openRedisStore({ url, key, leaseMs, logger });
  logger.debug('credential store: redis', { where: store.where, keyId: key.id, keyFrom: key.source.kind });
  return store;
}
