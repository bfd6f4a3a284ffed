/**
 * A lease lock on Redis with a fencing token, for single-flight refresh across hosts.
 *
 * - Acquire: one Lua script (atomic on the server) takes the lock only when it is free and gives
 *   the holder the next value of a per-credential counter (`INCR`): the fencing token
 *   (Kleppmann, "How to do distributed locking", 2016). The lock key holds that token and expires
 *   after the lease TTL (`SET lock token PX ttl`), so a holder that dies (kill -9, a host gone)
 *   loses it and another process takes over.
 * - Renew: while the work runs, the holder extends its lease (compare-and-PEXPIRE) every ttl/3.
 * - Release: compare-and-delete, so a holder whose lease expired never deletes a newer holder's lock.
 * - Fenced write: a write made inside the lease succeeds only while the counter still equals the
 *   holder's token, i.e. nobody acquired the lock after it. A holder that lost its lease (stalled
 *   longer than the TTL) therefore cannot overwrite the rotated token a newer holder persisted.
 */
import { McpOAuthError } from '../errors.ts';

/** The part of an ioredis client this module uses. */
export interface EvalClient {
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

const ACQUIRE = `
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], token, 'PX', ARGV[1])
return token`;

const RENEW = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0`;

/** HSET (ARGV[3] present) or HDEL of one field, only while the fencing counter is the caller's token. */
const FENCED_WRITE = `
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] then redis.call('hset', KEYS[2], ARGV[2], ARGV[3]) else redis.call('hdel', KEYS[2], ARGV[2]) end
return 1`;

export interface LeaseKeys {
  lock: string;
  fence: string;
}

export interface Lease {
  token: string;
  /** Stops renewing and deletes the lock if it is still ours. */
  release(): Promise<void>;
}

export async function acquireLease(
  client: EvalClient,
  keys: LeaseKeys,
  opts: { ttlMs: number; waitMs: number; what: string; onRenewError?: (e: unknown) => void },
): Promise<Lease> {
  const deadline = Date.now() + opts.waitMs;
  let token: unknown = 0;
  for (;;) {
    token = await client.eval(ACQUIRE, 2, keys.lock, keys.fence, opts.ttlMs);
    if (token !== 0 && token !== null) break;
    if (Date.now() >= deadline) {
      throw new McpOAuthError('store_error', `timed out after ${Math.round(opts.waitMs / 1000)} s waiting for the lease on ${opts.what} (another mcp-oauth process holds it and keeps renewing it)`, {
        hint: 'a refresh that takes this long is stuck: check the authorization server, then retry',
      });
    }
    // Jittered polling so waiters on several hosts do not ask in lockstep.
    await sleep(25 + Math.random() * 125);
  }
  const mine = String(token);
  const renew = setInterval(() => {
    client.eval(RENEW, 1, keys.lock, mine, opts.ttlMs).catch((e: unknown) => opts.onRenewError?.(e));
  }, Math.max(50, Math.floor(opts.ttlMs / 3)));
  return {
    token: mine,
    async release() {
      clearInterval(renew);
      // A failed release (Redis down) is harmless: the lease expires after its TTL.
      await client.eval(RELEASE, 1, keys.lock, mine).catch(() => {});
    },
  };
}

/** Writes (or, with `value` undefined, deletes) `field` of hash `hashKey` only under fencing token `token`. */
export async function fencedWrite(client: EvalClient, fenceKey: string, token: string, hashKey: string, field: string, value: string | undefined): Promise<boolean> {
  const args: (string | number)[] = [fenceKey, hashKey, token, field];
  if (value !== undefined) args.push(value);
  return (await client.eval(FENCED_WRITE, 2, ...args)) === 1;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
