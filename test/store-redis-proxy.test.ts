/**
 * `mcp-oauth proxy` on the Redis store, as a fleet runs it: 3 proxy processes, each with its own
 * MCP_OAUTH_HOME (separate hosts: nothing shared but Redis and the encryption key), driven by SDK
 * clients against the sandbox with 4-second access tokens and refresh token rotation with reuse
 * detection, over several expiries. No call may fail (no 401 reaches a client), every expiry is
 * refreshed exactly once across the fleet (never two token requests at once, never a refresh token
 * presented twice), nobody signs in again, and no home gets a credentials file.
 *
 * Slow by nature (~20 s of wall time): the refreshes must follow the expiries.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { makeHome, runCli, writeConfig, type TestHome } from './helpers/e2e.ts';
import { sdkClient } from './fixtures/proxy-helpers.ts';
import { maxConcurrentTokenRequests } from './fixtures/conc-helpers.ts';
import { anyRedisServer, startRedisServer, type RedisServer } from './helpers/redis-server.ts';

const server = anyRedisServer();
const TTL_SECONDS = 4;
const PROXIES = 3;
const DURATION_MS = 20_000;
const INTERVAL_MS = 250;
const KEY_B64 = Buffer.alloc(32, 0x3c).toString('base64');

let redis: RedisServer;
let sandbox: Sandbox;
const homes: TestHome[] = [];

before(async () => {
  if (server.skip) return;
  redis = await startRedisServer(server.binary);
  sandbox = await startSandbox({ accessTokenTtlSeconds: TTL_SECONDS, rotateRefreshTokens: true });
  for (let i = 0; i < PROXIES; i++) {
    const h = await makeHome({ MCP_OAUTH_STORE: 'redis', MCP_OAUTH_REDIS_URL: redis.url, MCP_OAUTH_REDIS_KEY: KEY_B64 });
    await writeConfig(h.home, `[mcp_servers.fleet]\nurl = "${sandbox.mcpUrl}"\n`);
    homes.push(h);
  }
  // One sign-in, on one host: the others find the credential in Redis.
  const login = await runCli(['login', 'fleet'], { env: homes[0]!.env });
  assert.equal(login.code, 0, login.stderr);
});

after(async () => {
  await sandbox?.close();
  await redis?.close();
  for (const h of homes) await h.cleanup();
});

test(`${PROXIES} proxies on separate hosts sharing Redis, ${TTL_SECONDS} s tokens: no failed call, one refresh per expiry, no refresh token reused`, { skip: server.skip }, async (t) => {
  const proxies = await Promise.all(homes.map((h) => sdkClient(['fleet'], h.env)));
  await Promise.all(proxies.map(({ client, transport }) => client.connect(transport)));
  sandbox.resetCounters();
  const started = Date.now();
  const failures: string[] = [];
  let calls = 0;
  try {
    // Each proxy calls on its own schedule, offset so that calls from different hosts interleave.
    await Promise.all(
      proxies.map(async ({ client }, p) => {
        for (let i = 0; ; i++) {
          const due = started + i * INTERVAL_MS + Math.round((p * INTERVAL_MS) / PROXIES);
          if (due - started >= DURATION_MS) return;
          if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
          const text = `proxy ${p} call ${i}`;
          calls++;
          try {
            const res = await client.callTool({ name: 'echo', arguments: { text } });
            if (res.isError || (res.content as Array<{ text: string }>)[0]?.text !== text) failures.push(`${text}: ${JSON.stringify(res)}`);
          } catch (err) {
            failures.push(`${text}: ${(err as Error).message}`);
          }
        }
      }),
    );
  } finally {
    await Promise.all(proxies.map(({ client }) => client.close()));
  }
  const elapsedMs = Date.now() - started;
  assert.deepEqual(failures, [], proxies.map((p, i) => `proxy ${i} stderr:\n${p.stderr()}`).join('\n'));

  const counters = sandbox.counters;
  const refreshes = counters.tokenRequestLog.filter((e) => e.grantType === 'refresh_token');
  // One refresh per token lifetime for the whole fleet. The TokenManager refreshes a quarter of the
  // lifetime early (margin = min(60 s, ttl/4)), so a token is replaced every 0.75 to 1 lifetime, plus
  // possibly the login's token early in the run; per-host refreshes would be PROXIES times that.
  const ttlMs = TTL_SECONDS * 1000;
  const [min, max] = [Math.floor(elapsedMs / ttlMs), Math.ceil(elapsedMs / (ttlMs * 0.75)) + 1];
  t.diagnostic(`${calls} calls, ${refreshes.length} refreshes over ${elapsedMs} ms (allowed ${min}..${max}); MCP 401s answered inside the proxies: ${counters.mcp401}`);
  assert.ok(min >= 4, 'the run spans several expiries');
  assert.ok(refreshes.length >= min && refreshes.length <= max, `refreshes: ${refreshes.length}, allowed ${min}..${max} over ${elapsedMs} ms`);
  assert.equal(maxConcurrentTokenRequests(counters), 1, 'never two refreshes at once, across hosts');

  // Every refresh presented a different refresh token, each the one the previous rotation issued:
  // none was presented twice, and the authorization server never saw a reuse.
  const asLog = counters.issuers[sandbox.issuer]?.tokenRequests.filter((r) => r.grantType === 'refresh_token') ?? [];
  assert.equal(asLog.length, refreshes.length);
  assert.ok(asLog.every((r) => r.status === 200), `every refresh succeeded: ${JSON.stringify(asLog.map((r) => r.status))}`);
  const presented = asLog.map((r) => r.presented);
  assert.equal(new Set(presented).size, presented.length, 'a rotated refresh token was presented twice');
  // The sandbox logs each response's access token, then its refresh token: the chain is exact.
  const rotated = (counters.issuers[sandbox.issuer]?.issued ?? []).filter((_, i) => i % 2 === 1);
  assert.equal(rotated.length, refreshes.length, 'every refresh rotated the refresh token');
  presented.slice(1).forEach((p, k) => assert.equal(p, rotated[k], `refresh ${k + 1} presented the refresh token issued by refresh ${k}`));
  assert.equal(counters.refreshReuseDetected, 0);
  assert.equal(counters.tokenRequests.authorization_code ?? 0, 0, 'nobody signed in again');

  // The credential lived in Redis only.
  for (const h of homes) assert.equal(existsSync(join(h.home, 'credentials.json')), false, `${h.home} has a credentials file`);
});
