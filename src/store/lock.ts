import { join } from 'node:path';
import { McpOAuthError } from '../errors.ts';
import type { CredentialKey } from '../types.ts';
import { ensurePrivateDir } from './atomic-write.ts';
import { credentialId } from './credential-id.ts';
import { properLockfile } from './lazy-lockfile.ts';
import { crypto } from '../builtins.ts';

/**
 * Exclusive locks across async tasks of this process AND across processes.
 *
 * Why both: proper-lockfile's mkdir lock is per path, not per holder, so two tasks of one process
 * would both "own" it; the in-process chain orders them first. Why cross-process: two CLI
 * invocations (or a proxy and a CLI) refreshing the same credential at once would both spend the
 * same refresh token, and with rotation (OAuth 2.1 §4.3.1) the loser's grant is revoked.
 *
 * Not re-entrant: calling withFileLock for a name already held by the caller deadlocks until the
 * retry budget runs out.
 */

/** A holder renews its lock every 2 s; a lock not renewed for 10 s is stale (its process died). */
const STALE_MS = 10_000;
const UPDATE_MS = 2_000;
/** Polls every ≤100 ms (jittered) for ~60 s or more: enough for 8 waiters behind slow refreshes. */
const RETRIES = { retries: 600, factor: 1.5, minTimeout: 5, maxTimeout: 100, randomize: true };

const chains = new Map<string, Promise<void>>();

/** Path of the lock for `name` (a credential id or a store-wide name); names are hashed, so no secret or URL leaks into file names. */
export function lockPathFor(lockDir: string, name: string): string {
  return join(lockDir, crypto().createHash('sha256').update(name).digest('hex').slice(0, 16));
}

export async function withFileLock<T>(lockDir: string, name: string, fn: () => Promise<T>): Promise<T> {
  const target = lockPathFor(lockDir, name);
  return inProcess(target, async () => {
    await ensurePrivateDir(lockDir).catch((e) => {
      throw new McpOAuthError('store_error', `cannot create the lock directory ${lockDir}`, {
        hint: `check that ${lockDir} is writable`,
        cause: e,
      });
    });
    let release: () => Promise<void>;
    try {
      release = await (await properLockfile()).lock(target, {
        realpath: false,
        stale: STALE_MS,
        update: UPDATE_MS,
        retries: RETRIES,
        // Default is to throw from a timer (crashing the process). A compromised lock means we were
        // too slow to renew it; the work continues and release reports nothing.
        onCompromised: () => {},
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new McpOAuthError(
        'store_error',
        code === 'ELOCKED'
          ? `timed out waiting for the lock ${target}.lock (another mcp-oauth process holds it)`
          : `cannot take the lock ${target}.lock (${code ?? 'error'})`,
        { hint: `if no other mcp-oauth process is running, remove ${target}.lock`, cause: e },
      );
    }
    try {
      return await fn();
    } finally {
      await release().catch(() => {});
    }
  });
}

export function withCredentialLock<T>(lockDir: string, key: CredentialKey, fn: () => Promise<T>): Promise<T> {
  return withFileLock(lockDir, credentialId(key), fn);
}

async function inProcess<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const previous = chains.get(name) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => (done = resolve));
  const tail = previous.then(() => mine);
  chains.set(name, tail);
  try {
    await previous;
    return await fn();
  } finally {
    done();
    if (chains.get(name) === tail) chains.delete(name);
  }
}
