/**
 * The shared Redis credential store (src/store/redis-store.ts) against a real server started here
 * on a random port, once on Debian's redis-server and once on valkey-server: encryption at rest,
 * fenced writes, single-flight refresh across processes with separate homes (nothing shared but
 * Redis), a lease holder killed, and the server going away and coming back (exit 6, credential
 * intact). The key's sources and the store-key command: test/store-key.test.ts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import type { RedisKey } from '../src/store/redis-crypto.ts';
import { parseRedisKey } from '../src/store/redis-key.ts';
import { openRedisStore, type RedisCredentialStore } from '../src/store/redis-store.ts';
import { McpOAuthError } from '../src/errors.ts';
import type { ClientRegistration, Credential } from '../src/types.ts';
import { makeHome, runCli, writeConfig, repoRoot, type TestHome } from './helpers/e2e.ts';
import { loadConfig } from '../src/config/config.ts';
import { seal, unseal } from '../src/store/redis-crypto.ts';
import { redisServerKinds, startRedisServer, type RedisServer } from './helpers/redis-server.ts';
import { maxConcurrentTokenRequests } from './fixtures/conc-helpers.ts';

const KEY_B64 = Buffer.alloc(32, 0x5a).toString('base64');
const keyOf = (b64: string): RedisKey => parseRedisKey(b64, 'test');

function credential(serverName: string, access: string, refresh: string): Credential {
  return {
    key: { serverName, resource: 'https://mcp.example/mcp', issuer: 'https://as.example' },
    accessToken: access,
    refreshToken: refresh,
    tokenType: 'Bearer',
    expiresAt: Date.now() + 3_600_000,
    scopes: ['read'],
    clientId: 'client-1',
    tokenEndpoint: 'https://as.example/token',
    tokenEndpointAuthMethod: 'none',
    obtainedAt: Date.now(),
  };
}

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp): Promise<McpOAuthError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof McpOAuthError, String(e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe('Redis store settings and key (no Redis needed)', () => {
  test('[settings] store = "redis", redis_url and a key file relative to the config file', async () => {
    const h = await makeHome();
    try {
      await writeConfig(h.home, `[settings]\nstore = "redis"\nredis_url = "redis://10.0.0.5:6380/2"\nredis_key_file = "redis.key"\n`);
      const { settings } = await loadConfig({ env: h.env });
      assert.equal(settings.store, 'redis');
      assert.equal(settings.redisUrl, 'redis://10.0.0.5:6380/2');
      assert.equal(settings.redisKeyFile, join(h.home, 'redis.key'));
    } finally {
      await h.cleanup();
    }
  });

  test('sealed values are bound to the key and the field', async () => {
    const k = keyOf(KEY_B64);
    const a = seal(k, 'credential|a', { t: 'x' });
    const b = seal(k, 'credential|a', { t: 'x' });
    assert.notEqual(a, b, 'a fresh IV per value');
    assert.deepEqual(unseal(k, 'credential|a', a, 'here'), { t: 'x' });
    await rejectsWith(Promise.resolve().then(() => unseal(k, 'credential|b', a, 'here')), 'store_error', /failed authentication/);
  });
});

for (const server of redisServerKinds()) {
  describe(`Redis credential store on ${server.label}`, { skip: server.skip }, () => {
    let redis: RedisServer;
    let raw: Redis;
    const stores: RedisCredentialStore[] = [];
    const open = async (b64 = KEY_B64, leaseMs?: number) => {
      const s = await openRedisStore({ url: redis.url, key: keyOf(b64), leaseMs });
      stores.push(s);
      return s;
    };
    before(async () => {
      redis = await startRedisServer(server.binary);
      raw = new Redis(redis.url, { lazyConnect: true });
      await raw.connect();
    });
    after(async () => {
      raw?.disconnect();
      for (const s of stores) await s.close();
      await redis?.close();
    });

    test('round trip of credentials and registrations; raw values hold no token bytes', async () => {
      await raw.flushdb();
      const store = await open();
      const c = credential('alpha', 'access-AAAA-secret-1234', 'refresh-BBBB-secret-5678');
      await store.put(c);
      assert.deepEqual(await store.get(c.key), c);
      assert.deepEqual(await store.list(), [c]);
      const reg: ClientRegistration = {
        issuer: 'https://as.example',
        clientId: 'client-1',
        clientSecret: 'client-secret-CCCC-9012',
        tokenEndpointAuthMethod: 'client_secret_basic',
        redirectUris: ['http://127.0.0.1:33418/callback'],
        source: 'dynamic_registration',
        registeredAt: 1,
      };
      await store.putRegistration(reg);
      assert.deepEqual(await store.getRegistration(reg.issuer), reg);
      assert.deepEqual(await store.getRegistration(reg.issuer, 'http://127.0.0.1:33418/callback'), reg);
      assert.equal(await store.getRegistration(reg.issuer, 'http://127.0.0.1:1/callback'), undefined);

      // Everything Redis holds, as bytes: no secret in clear, nor base64 of one.
      const dump = JSON.stringify([await raw.hgetall('mcp-oauth:credentials'), await raw.hgetall('mcp-oauth:registrations')]);
      for (const secret of [c.accessToken!, c.refreshToken!, reg.clientSecret!, 'secret']) {
        assert.ok(!dump.includes(secret), `Redis holds ${secret} in clear`);
        assert.ok(!dump.includes(Buffer.from(secret).toString('base64').slice(0, 12)), `Redis holds ${secret} in base64`);
      }

      // Another key cannot read it; a value moved to another credential's field fails authentication.
      const other = await open(Buffer.alloc(32, 0x11).toString('base64'));
      await rejectsWith(other.get(c.key), 'store_error', /encrypted with another key/);
      const sealed = await raw.hget('mcp-oauth:credentials', 'alpha|https://mcp.example/mcp|https://as.example');
      await raw.hset('mcp-oauth:credentials', 'beta|https://mcp.example/mcp|https://as.example', sealed!);
      await rejectsWith(store.get({ ...c.key, serverName: 'beta' }), 'store_error', /failed authentication/);

      await store.delete(c.key);
      assert.equal(await store.get(c.key), undefined);
      await store.deleteRegistration(reg.issuer);
      assert.equal(await store.getRegistration(reg.issuer), undefined);
    });

    test('withLock: one holder at a time across stores; a holder that lost its lease cannot overwrite a newer token', async () => {
      await raw.flushdb();
      const a = await open(KEY_B64, 2_000);
      const b = await open(KEY_B64, 2_000);
      const c = credential('gamma', 'access-1', 'refresh-1');
      await a.put(c);

      // Mutual exclusion between two connections (two hosts).
      let inside = 0;
      let most = 0;
      await Promise.all(
        [a, b, a, b].map((s) =>
          s.withLock(c.key, async () => {
            most = Math.max(most, ++inside);
            await new Promise((r) => setTimeout(r, 100));
            inside--;
          }),
        ),
      );
      assert.equal(most, 1);

      // A stalls inside its lease; the lease is gone (what its expiry does), B takes over and rotates.
      let release!: () => void;
      const stalled = new Promise<void>((r) => (release = r));
      const aWrite = a.withLock(c.key, async () => {
        await stalled;
        await a.put(credential('gamma', 'access-old', 'refresh-old'));
      });
      await new Promise((r) => setTimeout(r, 100));
      const locks = await raw.keys('mcp-oauth:lock:*');
      assert.equal(locks.length, 1);
      await raw.del(locks[0]!);
      await b.withLock(c.key, async () => b.put(credential('gamma', 'access-new', 'refresh-new')));
      release();
      await rejectsWith(aWrite, 'store_error', /lost the lease/);
      assert.equal((await a.get(c.key))?.refreshToken, 'refresh-new', 'the newer rotated token is kept');
    });
  });

  describe(`Redis store through the CLI on ${server.label}: several hosts, one Redis`, { skip: server.skip }, () => {
    let redis: RedisServer;
    let sandbox: Sandbox;
    let store: RedisCredentialStore;
    const homes: TestHome[] = [];
    const redisEnv = () => ({ MCP_OAUTH_STORE: 'redis', MCP_OAUTH_REDIS_URL: redis.url, MCP_OAUTH_REDIS_KEY: KEY_B64, MCP_OAUTH_REDIS_LEASE_MS: '3000' });
    before(async () => {
      redis = await startRedisServer(server.binary);
      sandbox = await startSandbox({ rotateRefreshTokens: true });
      for (let i = 0; i < 8; i++) {
        const h = await makeHome(redisEnv());
        await writeConfig(h.home, `[mcp_servers.fleet]\nurl = "${sandbox.mcpUrl}"\n`);
        homes.push(h);
      }
      store = await openRedisStore({ url: redis.url, key: keyOf(KEY_B64) });
    });
    after(async () => {
      await store?.close();
      await sandbox?.close();
      await redis?.close();
      for (const h of homes) await h.cleanup();
    });

    async function expire(): Promise<Credential> {
      const [c] = await store.list();
      assert.ok(c?.refreshToken, 'a signed-in credential with a refresh token');
      await store.put({ ...c, expiresAt: Date.now() - 1_000 });
      return c;
    }

    test('8 processes with separate homes: exactly one refresh, no reuse detected', async () => {
      const login = await runCli(['login', 'fleet'], { env: homes[0]!.env });
      assert.equal(login.code, 0, login.stderr);
      const before = await expire();
      sandbox.resetCounters();
      const runs = await Promise.all(
        homes.map((h, i) => runCli(['call', 'fleet', 'echo', JSON.stringify({ text: `host ${i}` })], { env: h.env, timeoutMs: 150_000 })),
      );
      runs.forEach((r, i) => {
        assert.equal(r.code, 0, `process ${i}: ${r.stderr}`);
        assert.equal(r.stdout.trim(), `host ${i}`);
      });
      assert.equal(sandbox.counters.tokenRequests.refresh_token, 1, 'exactly one refresh across 8 hosts');
      assert.equal(sandbox.counters.refreshReuseDetected, 0);
      assert.equal(maxConcurrentTokenRequests(sandbox.counters), 1);
      assert.equal(sandbox.counters.tokenRequests.authorization_code, undefined, 'nobody signed in again');
      const [after] = await store.list();
      assert.notEqual(after?.refreshToken, before.refreshToken, 'the rotated refresh token was persisted to Redis');
    });

    test('a lease holder killed: another process refreshes once the lease expires', async () => {
      const before = await expire();
      sandbox.resetCounters();
      const holder = spawn(process.execPath, ['--conditions=mcp-oauth-source', join(repoRoot, 'test', 'fixtures', 'redis-lease-holder.ts'), JSON.stringify(before.key)], {
        env: { ...process.env, ...redisEnv() },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on('data', (d) => String(d).includes('held') && resolve());
        holder.once('exit', (code) => reject(new Error(`the lease holder exited (${code})`)));
      });
      const killedAt = Date.now();
      holder.kill('SIGKILL');
      const r = await runCli(['call', 'fleet', 'echo', '{"text":"after the holder died"}'], { env: homes[1]!.env, timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'after the holder died');
      assert.ok(Date.now() - killedAt >= 1_500, 'the CLI waited for the dead holder’s lease to expire');
      assert.equal(sandbox.counters.tokenRequests.refresh_token, 1);
      assert.equal(sandbox.counters.refreshReuseDetected, 0);
    });

    test('Redis stopped: exit 6 naming the host, credential intact; Redis back: it works again', async () => {
      const before = (await store.list())[0]!;
      await redis.stop({ save: true });
      const down = await runCli(['call', 'fleet', 'echo', '{"text":"down"}'], { env: homes[2]!.env, timeoutMs: 60_000 });
      assert.equal(down.code, 6, down.stderr);
      assert.match(down.stderr, new RegExp(`Redis credential store at redis://127\\.0\\.0\\.1:${redis.port}/0 is not reachable`));
      assert.ok(!down.stderr.includes(KEY_B64));

      await redis.start();
      const [intact] = await store.list();
      assert.equal(intact?.refreshToken, before.refreshToken, 'the credential survived, unchanged');
      assert.equal(intact?.accessToken, before.accessToken);
      const back = await runCli(['call', 'fleet', 'echo', '{"text":"back"}'], { env: homes[2]!.env, timeoutMs: 60_000 });
      assert.equal(back.code, 0, back.stderr);
      assert.equal(back.stdout.trim(), 'back');
      const status = await runCli(['status', 'fleet'], { env: homes[3]!.env });
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, new RegExp(`Redis, encrypted \\(redis://127\\.0\\.0\\.1:${redis.port}/0\\)`));
    });

    test('an inline password in redis_url is refused (config error, exit 3) and never printed', async () => {
      const h = await makeHome({ MCP_OAUTH_STORE: '' });
      try {
        await writeConfig(h.home, `[settings]\nstore = "redis"\nredis_url = "redis://:hunter2pw@127.0.0.1:${redis.port}/0"\n`);
        const r = await runCli(['list'], { env: h.env });
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /MCP_OAUTH_REDIS_URL/);
        assert.ok(!r.stderr.includes('hunter2pw'));
      } finally {
        await h.cleanup();
      }
    });
  });
}
