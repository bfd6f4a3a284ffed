/**
 * One interactive sign-in per credential at a time, across processes. Several proxy processes of
 * one server (a client with many windows, or several clients) notice "not signed in" at the same
 * moment; without this lock each would open its own browser tab. The holder signs in; the others
 * wait for the lock and then find the new credential in the store.
 *
 * Keyed by server name + resource, not by issuer: before the first sign-in the issuer is unknown.
 * A lock file under HOME/locks (proper-lockfile: mkdir-atomic, renewed while held, stale when its
 * process died) — never a secret in the name (hashed, see lockPathFor).
 */
import { McpOAuthError, loginCommand } from '../errors.ts';
import { ensurePrivateDir } from './atomic-write.ts';
import { lockPathFor } from './lock.ts';
import { properLockfile } from './lazy-lockfile.ts';

/** A holder renews every 2 s; a lock not renewed for 10 s belonged to a process that died. */
const STALE_MS = 10_000;
const UPDATE_MS = 2_000;
const POLL_MS = 150;

export interface SignInLockOptions {
  /** HOME/locks */
  lockDir: string;
  serverName: string;
  resource: string;
  /** Give up waiting for another process's sign-in after this long. */
  waitMs: number;
  sleep?: (ms: number) => Promise<void>;
}

export function signInLockName(serverName: string, resource: string): string {
  return `signin\0${serverName}\0${resource}`;
}

/**
 * Runs `fn` holding the sign-in lock. `waited` tells `fn` whether another process held it first
 * (then that process probably just signed in: re-read the store before opening a browser).
 */
export async function withSignInLock<T>(opts: SignInLockOptions, fn: (info: { waited: boolean }) => Promise<T>): Promise<T> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const target = lockPathFor(opts.lockDir, signInLockName(opts.serverName, opts.resource));
  await ensurePrivateDir(opts.lockDir).catch((e: unknown) => {
    throw new McpOAuthError('store_error', `cannot create the lock directory ${opts.lockDir}`, { hint: `check that ${opts.lockDir} is writable`, cause: e });
  });
  const deadline = Date.now() + opts.waitMs;
  let waited = false;
  let release: () => Promise<void>;
  for (;;) {
    try {
      release = await (await properLockfile()).lock(target, { realpath: false, stale: STALE_MS, update: UPDATE_MS, retries: 0, onCompromised: () => {} });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') {
        throw new McpOAuthError('store_error', `cannot take the sign-in lock ${target}.lock (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
          hint: `if no other mcp-oauth process is running, remove ${target}.lock`,
          cause: e,
        });
      }
      waited = true;
      if (Date.now() >= deadline) {
        throw new McpOAuthError('signin_timeout', `Timed out waiting for another mcp-oauth process to finish signing in to ${opts.serverName}.`, {
          hint: loginCommand(opts.serverName),
        });
      }
      await sleep(POLL_MS);
    }
  }
  try {
    return await fn({ waited });
  } finally {
    await release().catch(() => {});
  }
}
