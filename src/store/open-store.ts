import { McpOAuthError } from '../errors.ts';
import { silentLogger, type CredentialStore, type Logger } from '../types.ts';
import { FileCredentialStore } from './file-store.ts';
import { KeychainCredentialStore, probeKeychain } from './keychain-store.ts';
import { MemoryCredentialStore } from './memory-store.ts';

export type StoreMode = 'auto' | 'keychain' | 'file' | 'memory';

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
}): Promise<CredentialStore> {
  const mode = opts.mode ?? 'auto';
  const logger = opts.logger ?? silentLogger;
  switch (mode) {
    case 'memory':
      return new MemoryCredentialStore();
    case 'file':
      return new FileCredentialStore(opts.home);
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
        hint: 'use one of: auto, keychain, file, memory',
      });
  }
}
