// A shared credential store (Redis) that goes down while a token in hand still works: requests go
// on with that token, the error names the store (not the authorization server) once the token is
// gone, and an outage is not retried on every request while the token lasts.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { McpOAuthError } from '../src/errors.ts';
import { TokenManager } from '../src/lifecycle/token-manager.ts';
import { MemoryCredentialStore } from '../src/store/memory-store.ts';
import type { CredentialStore } from '../src/types.ts';
import { demoServer, demoCredential, useFakeServers } from './fixtures/lifecycle-fake-servers.ts';

const servers = useFakeServers({ before, after, beforeEach });

const redisDown = () =>
  new McpOAuthError('network_error', 'the Redis credential store at 127.0.0.1:6390/0 is not reachable (ECONNREFUSED); stored credentials are unchanged', {
    hint: 'start Redis at 127.0.0.1:6390/0 (or fix redis_url / MCP_OAUTH_REDIS_URL) and retry',
    details: { store: 'redis', where: '127.0.0.1:6390/0' },
  });

/** A store that can be switched off like a Redis server stopping. */
function switchableStore(inner: CredentialStore) {
  const state = { down: false, lists: 0, locks: 0 };
  const guard = <T>(fn: () => Promise<T>) => (state.down ? Promise.reject(redisDown()) : fn());
  const store: CredentialStore = {
    kind: 'redis',
    get: (k) => guard(() => inner.get(k)),
    put: (c) => guard(() => inner.put(c)),
    list: () => (state.lists++, guard(() => inner.list())),
    delete: (k) => guard(() => inner.delete(k)),
    getRegistration: (i) => guard(() => inner.getRegistration(i)),
    putRegistration: (r) => guard(() => inner.putRegistration(r)),
    deleteRegistration: (i) => guard(() => inner.deleteRegistration(i)),
    withLock: (k, fn) => (state.locks++, guard(() => inner.withLock(k, fn))),
  };
  return { store, state };
}

async function setUp(expiresInMs: number) {
  const inner = new MemoryCredentialStore();
  const clock = { now: Date.now() };
  const credential = demoCredential(servers.fake, { obtainedAt: clock.now - 3_600_000, expiresAt: clock.now + expiresInMs });
  await inner.put(credential);
  const { store, state } = switchableStore(inner);
  const sleeps: number[] = [];
  const m = new TokenManager({ server: demoServer(servers.fake), store, fetch: globalThis.fetch, retry: { attempts: 2, sleep: async (ms) => void sleeps.push(ms) }, clock: () => clock.now });
  return { m, state, credential, sleeps, clock };
}

test('the store goes down while the token still works: requests keep that token; no token request is made', async () => {
  const { m, state, credential, sleeps, clock } = await setUp(3_600_000);
  assert.equal(await m.tokenForRequest(), credential.accessToken, 'read once while the store is up');
  // 30 s left: inside the refresh margin, so every use now wants a refresh; Redis stops.
  clock.now += 3_570_000;
  state.down = true;
  for (let i = 0; i < 5; i++) {
    assert.equal(await m.tokenForRequest(), credential.accessToken, `request ${i} during the outage`);
    clock.now += 500;
  }
  assert.equal(servers.fake.tokenRequests.length, 0, 'no refresh without the lock: the rotated token could not be stored');
  // The refresh was tried once (with its retries), then not again on every request while the token lasts.
  assert.equal(state.locks, 1 + sleeps.length, `lock attempts: ${state.locks}, retries: ${sleeps.length}`);
});

test('the store is down and the token has expired: the error names the store and keeps the sign-in', async () => {
  const { m, state } = await setUp(-1_000);
  state.down = true;
  await assert.rejects(m.accessToken(), (e: McpOAuthError) => {
    assert.equal(e.code, 'network_error');
    assert.equal(e.transient, true);
    assert.match(e.message, /Redis credential store at 127\.0\.0\.1:6390\/0 is not reachable/);
    assert.doesNotMatch(e.message, /authorization server/);
    assert.match(e.hint ?? '', /start Redis/);
    return true;
  });
  state.down = false;
  assert.ok(await m.accessToken(), 'back up: refreshed');
  assert.equal(servers.fake.tokenRequests.length, 1);
});
