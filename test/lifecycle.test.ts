import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { McpOAuthError } from '../src/errors.ts';
import { TokenManager, isStale, type LifecycleEvent, type TokenManagerOptions } from '../src/lifecycle/token-manager.ts';
import { backoffDelayMs } from '../src/lifecycle/backoff.ts';
import { MemoryCredentialStore } from '../src/store/memory-store.ts';
import { FileCredentialStore } from '../src/store/file-store.ts';
import type { Credential, CredentialStore } from '../src/types.ts';
import { startFakeServers, demoServer, demoCredential, type FakeServers } from './fixtures/lifecycle-fake-servers.ts';

let fake: FakeServers;
const tempDirs: string[] = [];
before(async () => {
  fake = await startFakeServers();
});
after(async () => {
  await fake.close();
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});
beforeEach(() => {
  fake.tokenRequests.length = 0;
  fake.reuseDetected = 0;
  fake.config = { delayMs: 0, rotate: true, includeScope: true, expiresIn: 3600, failNext: [] };
});

async function tempStore(): Promise<FileCredentialStore> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-oauth-lifecycle-'));
  tempDirs.push(dir);
  return new FileCredentialStore(dir);
}

function manager(store: CredentialStore, over: Partial<TokenManagerOptions> = {}) {
  const events: LifecycleEvent[] = [];
  const sleeps: number[] = [];
  const m = new TokenManager({
    server: demoServer(fake),
    store,
    fetch: globalThis.fetch,
    retry: { sleep: async (ms) => void sleeps.push(ms) },
    onEvent: (e) => events.push(e),
    ...over,
  });
  return { m, events, sleeps };
}

async function seeded(over: Partial<Credential> = {}, store: CredentialStore = new MemoryCredentialStore()) {
  const credential = demoCredential(fake, over);
  await store.put(credential);
  return { store, credential };
}

/** Delegates to `inner` (private fields rule out Object.create), with some methods replaced. */
function wrapStore(inner: CredentialStore, over: Partial<CredentialStore>): CredentialStore {
  return {
    kind: inner.kind,
    get: (k) => inner.get(k),
    put: (c) => inner.put(c),
    list: () => inner.list(),
    delete: (k) => inner.delete(k),
    getRegistration: (i) => inner.getRegistration(i),
    putRegistration: (r) => inner.putRegistration(r),
    deleteRegistration: (i) => inner.deleteRegistration(i),
    withLock: (k, fn) => inner.withLock(k, fn),
    ...over,
  };
}

const expired = () => ({ expiresAt: Date.now() - 5_000 });

describe('isStale', () => {
  const c = (over: Partial<Credential>) => ({ ...demoCredential(fake), ...over });
  test('no access token → stale; unknown expiry → not stale; margin counts', () => {
    const now = 1_000_000;
    assert.equal(isStale(c({ accessToken: undefined }), now, 60_000), true);
    assert.equal(isStale(c({ expiresAt: undefined }), now, 60_000), false);
    assert.equal(isStale(c({ expiresAt: now + 30_000 }), now, 60_000), true);
    assert.equal(isStale(c({ expiresAt: now + 120_000 }), now, 60_000), false);
    assert.equal(isStale(c({ expiresAt: now - 1 }), now, 0), true);
  });
  test('the margin is capped at a quarter of the lifetime, so short-lived tokens are not refreshed on every call', () => {
    const obtainedAt = 1_000_000;
    const short = c({ obtainedAt, expiresAt: obtainedAt + 10_000 });
    assert.equal(isStale(short, obtainedAt + 1_000, 60_000), false);
    assert.equal(isStale(short, obtainedAt + 7_400, 60_000), false);
    assert.equal(isStale(short, obtainedAt + 7_600, 60_000), true);
  });
});

describe('proactive refresh', () => {
  test('a fresh token is used as is, no refresh', async () => {
    const { store, credential } = await seeded();
    const { m } = manager(store);
    assert.equal(await m.accessToken(), credential.accessToken);
    assert.equal(fake.tokenRequests.length, 0);
  });

  test('an expired token is refreshed before the first request; rotated refresh token persisted before return', async () => {
    const { store: inner, credential } = await seeded(expired());
    // A slow store: if put were not awaited, the new refresh token would not be there yet.
    const store = wrapStore(inner, {
      put: async (c) => {
        await new Promise((r) => setTimeout(r, 50));
        await inner.put(c);
      },
    });
    const { m, events } = manager(store);
    const token = await m.accessToken();
    assert.notEqual(token, credential.accessToken);
    assert.equal(fake.tokenRequests.length, 1);
    const stored = await inner.get(credential.key);
    assert.equal(stored?.accessToken, token);
    assert.ok(stored?.refreshToken && stored.refreshToken !== credential.refreshToken, 'rotated refresh token stored');
    assert.ok(stored.expiresAt! > Date.now() + 3000_000);
    assert.deepEqual(events.find((e) => e.type === 'refreshed'), {
      type: 'refreshed', server: 'demo', expiresAt: stored.expiresAt, rotated: true, byOtherProcess: false,
    });
  });

  test('a token inside the margin is refreshed; outside a custom margin it is not', async () => {
    const { store, credential } = await seeded({ obtainedAt: Date.now() - 3_570_000, expiresAt: Date.now() + 30_000 });
    assert.equal(await manager(store, { refreshMarginMs: 10_000 }).m.accessToken(), credential.accessToken);
    assert.equal(fake.tokenRequests.length, 0);
    assert.notEqual(await manager(store).m.accessToken(), credential.accessToken);
    assert.equal(fake.tokenRequests.length, 1);
  });

  test('unknown expiry: no proactive refresh, refresh after a 401', async () => {
    const { store, credential } = await seeded({ expiresAt: undefined });
    const { m } = manager(store);
    assert.equal(await m.accessToken(), credential.accessToken);
    assert.equal(fake.tokenRequests.length, 0);
    const next = await m.afterUnauthorized(credential.accessToken!, { error: 'invalid_token' });
    assert.notEqual(next, credential.accessToken);
    assert.equal(fake.tokenRequests.length, 1);
    assert.equal(await m.accessToken(), next);
  });

  test('every refresh sends resource exactly once, scopes kept, no refresh_token → old one kept', async () => {
    fake.config.rotate = false;
    fake.config.includeScope = false;
    const { store, credential } = await seeded({ ...expired(), scopes: ['a', 'b'] });
    const { m, events } = manager(store);
    const first = await m.accessToken();
    await m.afterUnauthorized(first);
    assert.equal(fake.tokenRequests.length, 2);
    for (const body of fake.tokenRequests) {
      assert.deepEqual(body.getAll('resource'), [fake.mcpUrl]);
      assert.equal(body.get('client_id'), 'client-1');
    }
    const stored = await store.get(credential.key);
    assert.equal(stored?.refreshToken, credential.refreshToken);
    assert.deepEqual(stored?.scopes, ['a', 'b']);
    assert.equal(events.filter((e) => e.type === 'refreshed' && !e.rotated).length, 2);
  });
});

describe('one refresh at a time', () => {
  test('100 concurrent accessToken() calls with an expired token → exactly 1 refresh', async () => {
    fake.config.delayMs = 100;
    const { store: inner } = await seeded(expired());
    let locks = 0;
    const store = wrapStore(inner, { withLock: (k, fn) => (locks++, inner.withLock(k, fn)) });
    const { m } = manager(store);
    const tokens = await Promise.all(Array.from({ length: 100 }, () => m.accessToken()));
    assert.equal(fake.tokenRequests.length, 1);
    assert.equal(new Set(tokens).size, 1);
    assert.equal(locks, 1, 'callers in one process share the refresh in flight instead of queueing on the lock');
  });

  test('two managers on one file store (two processes) → 1 refresh, no reuse, the other uses the stored result', async () => {
    fake.config.delayMs = 150;
    const { store: a } = await seeded(expired(), await tempStore());
    const b = new FileCredentialStore((a as FileCredentialStore).dir);
    const one = manager(a);
    const two = manager(b);
    const [t1, t2] = await Promise.all([one.m.accessToken(), two.m.accessToken()]);
    assert.equal(fake.tokenRequests.length, 1);
    assert.equal(fake.reuseDetected, 0);
    assert.equal(t1, t2);
    const refreshed = [...one.events, ...two.events].filter((e) => e.type === 'refreshed');
    assert.deepEqual(refreshed.map((e) => e.type === 'refreshed' && e.byOtherProcess).sort(), [false, true]);
  });

  test('4 real processes with an expired token in one file store → exactly 1 refresh, no reuse', async () => {
    fake.config.delayMs = 300;
    const store = await tempStore();
    await seeded(expired(), store);
    const child = fileURLToPath(new URL('./fixtures/lifecycle-refresh-child.ts', import.meta.url));
    const run = () =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
        const p = spawn(process.execPath, [child, store.dir, JSON.stringify(demoServer(fake))], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('error', reject);
        p.on('close', (code) => resolve({ code, out, err }));
      });
    const results = await Promise.all([run(), run(), run(), run()]);
    for (const r of results) assert.equal(r.code, 0, r.out + r.err);
    const tokens = results.map((r) => (JSON.parse(r.out) as { accessToken: string }).accessToken);
    assert.equal(fake.tokenRequests.length, 1);
    assert.equal(fake.reuseDetected, 0);
    assert.equal(new Set(tokens).size, 1);
    assert.equal((await store.list())[0].accessToken, tokens[0]);
  });

  test('afterUnauthorized uses a token another manager stored instead of refreshing', async () => {
    const { store, credential } = await seeded({ expiresAt: undefined });
    const a = manager(store);
    const b = manager(store);
    assert.equal(await a.m.accessToken(), credential.accessToken);
    const fromB = await b.m.afterUnauthorized(credential.accessToken!);
    assert.equal(fake.tokenRequests.length, 1);
    assert.equal(await a.m.afterUnauthorized(credential.accessToken!), fromB);
    assert.equal(fake.tokenRequests.length, 1, 'no second refresh');
    assert.ok(a.events.some((e) => e.type === 'reloaded'));
  });

  test('a running manager picks up a login made by another process, without a restart', async () => {
    const store = new MemoryCredentialStore();
    const { m } = manager(store);
    await assert.rejects(m.accessToken(), (e: McpOAuthError) => e.code === 'signin_required' && e.hint === 'mcp-oauth login demo');
    const credential = demoCredential(fake);
    await store.put(credential);
    assert.equal(await m.accessToken(), credential.accessToken);
  });
});

describe('refresh failures', () => {
  test('invalid_grant → needsSignIn stored, rest kept, signin_required with the login hint; no more refresh attempts', async () => {
    const { store, credential } = await seeded({ ...expired(), refreshToken: 'rt-unknown-to-the-server' });
    const { m, events } = manager(store);
    const check = (e: McpOAuthError) => {
      assert.equal(e.code, 'signin_required');
      assert.equal(e.hint, 'mcp-oauth login demo');
      assert.match(e.message, /^Sign-in required for demo: .*invalid_grant/);
      assert.doesNotMatch(e.message, /rt-unknown/);
      return true;
    };
    await assert.rejects(m.accessToken(), check);
    const stored = await store.get(credential.key);
    assert.equal(stored?.needsSignIn?.oauthError, 'invalid_grant');
    assert.deepEqual({ ...stored, needsSignIn: undefined }, { ...credential, needsSignIn: undefined });
    await assert.rejects(m.accessToken(), check);
    assert.equal(fake.tokenRequests.length, 1);
    assert.ok(events.some((e) => e.type === 'signin_required'));
  });

  test('invalid_grant with an interactive signIn → signIn({reason: grant_gone, previous})', async () => {
    const { store, credential } = await seeded({ ...expired(), refreshToken: 'rt-unknown' });
    const requests: unknown[] = [];
    const fresh = demoCredential(fake);
    const { m } = manager(store, {
      signIn: async (r) => {
        requests.push(r);
        await store.put(fresh);
        return fresh;
      },
    });
    assert.equal(await m.accessToken(), fresh.accessToken);
    assert.equal(requests.length, 1);
    const r = requests[0] as { reason: string; previous: Credential };
    assert.equal(r.reason, 'grant_gone');
    assert.equal(r.previous.refreshToken, credential.refreshToken);
  });

  test('invalid_client → registration deleted, needsSignIn set, signin_required', async () => {
    fake.config.failNext.push({ status: 401, body: { error: 'invalid_client' } });
    const { store, credential } = await seeded(expired());
    await store.putRegistration({
      issuer: fake.origin, clientId: 'client-1', tokenEndpointAuthMethod: 'none', redirectUris: ['http://127.0.0.1/cb'],
      source: 'dynamic_registration', registeredAt: 0,
    });
    await assert.rejects(manager(store).m.accessToken(), { code: 'signin_required', hint: 'mcp-oauth login demo' });
    assert.equal(await store.getRegistration(fake.origin), undefined);
    assert.equal((await store.get(credential.key))?.needsSignIn?.oauthError, 'invalid_client');
  });

  test('503 then recovery → backoff, credential survives, call succeeds', async () => {
    fake.config.failNext.push({ status: 503 }, { status: 503, headers: { 'retry-after': '3' } });
    const { store, credential } = await seeded(expired());
    const { m, sleeps, events } = manager(store, { retry: { sleep: async (ms) => void sleeps.push(ms), maxDelayMs: 2500 } });
    const token = await m.accessToken();
    assert.notEqual(token, credential.accessToken);
    assert.equal(fake.tokenRequests.length, 3);
    assert.equal(sleeps.length, 2);
    assert.ok(sleeps[0] >= 375 && sleeps[0] <= 625, `first wait ~0.5 s, got ${sleeps[0]}`);
    assert.equal(sleeps[1], 2500, 'Retry-After honoured up to the cap');
    assert.equal(events.filter((e) => e.type === 'refresh_failed' && e.willRetry).length, 2);
    assert.equal((await store.get(credential.key))?.refreshToken !== credential.refreshToken, true);
  });

  test('persistent 503 with a token that has not expired yet → that token is returned', async () => {
    fake.config.failAlways = { status: 503 };
    const { store, credential } = await seeded({ obtainedAt: Date.now() - 3_570_000, expiresAt: Date.now() + 30_000 });
    const warnings: string[] = [];
    const logger = { error() {}, info() {}, debug() {}, warn: (msg: string) => void warnings.push(msg) };
    const { m, sleeps } = manager(store, { logger, retry: { attempts: 3, sleep: async (ms) => void sleeps.push(ms) } });
    assert.equal(await m.accessToken(), credential.accessToken);
    assert.equal(fake.tokenRequests.length, 4);
    assert.equal(sleeps.length, 3);
    assert.ok(warnings.some((w) => /until it expires/.test(w)));
    assert.deepEqual(await store.get(credential.key), credential);
  });

  test('persistent 503 with an expired token → server_unavailable, sign-in kept, credential unchanged', async () => {
    fake.config.failAlways = { status: 503 };
    const { store, credential } = await seeded(expired());
    await assert.rejects(manager(store).m.accessToken(), (e: McpOAuthError) => {
      assert.equal(e.code, 'server_unavailable');
      assert.equal(e.transient, true);
      assert.match(e.message, /authorization server is unavailable.*sign-in is kept.*retry later/i);
      assert.doesNotMatch(e.message, new RegExp(credential.refreshToken!));
      return true;
    });
    assert.deepEqual(await store.get(credential.key), credential);
  });

  test('network failure → network_error after the retries, credential unchanged', async () => {
    const { store, credential } = await seeded({ ...expired(), tokenEndpoint: 'http://127.0.0.1:9/token' });
    const { m, sleeps } = manager(store, { retry: { attempts: 2, sleep: async (ms) => void sleeps.push(ms) } });
    await assert.rejects(m.accessToken(), (e: McpOAuthError) => e.code === 'network_error' && /unreachable/.test(e.message));
    assert.equal(sleeps.length, 2);
    assert.deepEqual(await store.get(credential.key), credential);
  });
});

describe('client authentication', () => {
  test('the client secret comes from the stored registration, else from the configured env var', async () => {
    const { store, credential } = await seeded({ ...expired(), tokenEndpointAuthMethod: 'client_secret_post' });
    const server = demoServer(fake, { oauth: { authorizeParams: {}, clientSecretEnvVar: 'DEMO_SECRET' } });
    await manager(store, { server, env: { DEMO_SECRET: 'from-env-secret' } }).m.accessToken();
    assert.equal(fake.tokenRequests[0].get('client_secret'), 'from-env-secret');

    await store.put({ ...credential, expiresAt: Date.now() - 1, refreshToken: (await store.get(credential.key))!.refreshToken });
    await store.putRegistration({
      issuer: fake.origin, clientId: 'client-1', clientSecret: 'dcr-secret', tokenEndpointAuthMethod: 'client_secret_post',
      redirectUris: [], source: 'dynamic_registration', registeredAt: 0,
    });
    await manager(store, { server, env: {} }).m.accessToken();
    assert.equal(fake.tokenRequests[1].get('client_secret'), 'dcr-secret');
  });

  test('a confidential client without a secret → config_invalid naming the env var', async () => {
    const { store } = await seeded({ ...expired(), tokenEndpointAuthMethod: 'client_secret_basic' });
    const server = demoServer(fake, { oauth: { authorizeParams: {}, clientSecretEnvVar: 'DEMO_SECRET' } });
    await assert.rejects(manager(store, { server, env: {} }).m.accessToken(), (e: McpOAuthError) => e.code === 'config_invalid' && /DEMO_SECRET/.test(e.message));
    assert.equal(fake.tokenRequests.length, 0);
  });
});

describe('backoffDelayMs', () => {
  test('doubles per retry with ±25 % jitter and a cap', () => {
    const p = { baseDelayMs: 500, maxDelayMs: 8000 };
    assert.deepEqual([0, 1, 2].map((r) => backoffDelayMs(r, p, undefined, () => 0.5)), [500, 1000, 2000]);
    assert.equal(backoffDelayMs(0, p, undefined, () => 0), 375);
    assert.equal(backoffDelayMs(10, p, undefined, () => 1), 8000);
    assert.equal(backoffDelayMs(0, p, 4, () => 0.5), 4000);
    assert.equal(backoffDelayMs(0, p, 60, () => 0.5), 8000);
  });
});
