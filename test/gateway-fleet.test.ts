/**
 * N gateways, one Redis (the README's "Fleet" deployment): two `mcp-oauth serve` processes with
 * separate homes (separate hosts: nothing shared but Redis and the encryption key) behind no
 * load balancer affinity. A 2026-07-28 client whose every request goes to the next gateway in turn
 * (no sticky sessions: the protocol is stateless) works across token expiries, with one refresh per
 * expiry across both gateways, the same gateway secret on both, and no refresh token used twice.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { makeHome, runCli, writeConfig, type TestHome } from './helpers/e2e.ts';
import { endpoint, rawRequest, startServe, type RunningServe } from './helpers/gateway.ts';
import { anyRedisServer, startRedisServer, type RedisServer } from './helpers/redis-server.ts';
import { openCredentialStore } from '../src/store/open-store.ts';
import { gatewaySecret } from '../src/gateway/secret.ts';

const server = anyRedisServer();
const TTL_SECONDS = 4;
const KEY_B64 = Buffer.alloc(32, 0x5a).toString('base64');
const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'fleet', version: '0' }, 'io.modelcontextprotocol/clientCapabilities': {} };

let redis: RedisServer;
let sandbox: Sandbox;
const homes: TestHome[] = [];
const gateways: RunningServe[] = [];

before(async () => {
  if (server.skip) return;
  redis = await startRedisServer(server.binary);
  sandbox = await startSandbox({ accessTokenTtlSeconds: TTL_SECONDS, rotateRefreshTokens: true, protocol: '2026-07-28' });
  for (let i = 0; i < 2; i++) {
    const h = await makeHome({ MCP_OAUTH_STORE: 'redis', MCP_OAUTH_REDIS_URL: redis.url, MCP_OAUTH_REDIS_KEY: KEY_B64 });
    await writeConfig(h.home, `[mcp_servers.fleet]\nurl = "${sandbox.mcpUrl}"\n`);
    homes.push(h);
  }
  const login = await runCli(['login', 'fleet'], { env: homes[0]!.env });
  assert.equal(login.code, 0, login.stderr);
  for (const h of homes) gateways.push(await startServe(h.env));
});

after(async () => {
  for (const g of gateways) await g.stop();
  await sandbox?.close();
  await redis?.close();
  for (const h of homes) await h.cleanup();
});

test('two gateways on two hosts sharing Redis: one secret, no sticky sessions, one refresh per expiry', { skip: server.skip }, async (t) => {
  const store = await openCredentialStore({ home: homes[1]!.home, mode: 'redis', env: homes[1]!.env, redis: { env: homes[1]!.env } });
  const secret = (await gatewaySecret(store, { create: false }))!;
  assert.ok(secret, 'the secret one gateway created is in Redis for the other');
  sandbox.resetCounters();
  const started = Date.now();
  const failures: string[] = [];
  let calls = 0;
  for (let i = 0; Date.now() - started < 3 * TTL_SECONDS * 1000 + 500; i++) {
    const gateway = gateways[i % gateways.length]!;
    const text = `call ${i} via gateway ${i % gateways.length}`;
    const res = await rawRequest(endpoint(gateway.url, 'fleet'), {
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'echo', arguments: { text }, _meta: META } }),
    });
    calls++;
    if (res.status !== 200 || !res.body.includes(text)) failures.push(`${text}: HTTP ${res.status} ${res.body.slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
  const elapsed = Date.now() - started;
  const refreshes = sandbox.counters.tokenRequests.refresh_token ?? 0;
  // The TokenManager refreshes a quarter of the lifetime early: one refresh per 0.75 to 1 lifetime
  // for the whole fleet (per-gateway refreshes would double it).
  const ttlMs = TTL_SECONDS * 1000;
  const [min, max] = [Math.floor(elapsed / ttlMs), Math.ceil(elapsed / (ttlMs * 0.75)) + 1];
  t.diagnostic(`${calls} calls over ${elapsed} ms alternating between 2 gateways: ${refreshes} refreshes (allowed ${min}..${max}), ${sandbox.counters.mcp401} MCP 401s`);
  assert.deepEqual(failures, []);
  assert.ok(refreshes >= min && refreshes <= max, `${refreshes} refreshes, allowed ${min}..${max}`);
  assert.equal(sandbox.counters.refreshReuseDetected, 0, 'no refresh token was used twice');
  assert.equal(sandbox.counters.tokenRequests.authorization_code ?? 0, 0, 'nobody signed in again');
  await (store as { close?: () => Promise<void> }).close?.();
});
