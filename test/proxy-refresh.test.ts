// A long proxy session with short-lived tokens: 60 calls over 30 s with 5-second access tokens.
// Slow by nature (30 s of wall time): the refreshes must follow the expiries, one at a time, and
// no call may fail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { makeHome, runCli, type TestHome } from './helpers/e2e.ts';
import { sdkClient } from './fixtures/proxy-helpers.ts';

const TTL_SECONDS = 5;
const CALLS = 60;
const INTERVAL_MS = 500;

let sandbox: Sandbox;
let home: TestHome;

before(async () => {
  sandbox = await startSandbox({ accessTokenTtlSeconds: TTL_SECONDS });
  home = await makeHome();
  const login = await runCli(['login', sandbox.mcpUrl], { env: home.env });
  assert.equal(login.code, 0, login.stderr);
});

after(async () => {
  await sandbox?.close();
  await home?.cleanup();
});

test('60 calls over 30 s with 5 s tokens: no failure, one refresh per expiry, never two at once', async (t) => {
  const { client, transport, stderr } = await sdkClient([sandbox.mcpUrl], home.env);
  await client.connect(transport);
  sandbox.resetCounters();
  const started = Date.now();
  const failures: string[] = [];
  try {
    for (let i = 0; i < CALLS; i++) {
      const due = started + i * INTERVAL_MS;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      try {
        const res = await client.callTool({ name: 'echo', arguments: { text: `call ${i}` } });
        if (res.isError || (res.content as Array<{ text: string }>)[0].text !== `call ${i}`) failures.push(`call ${i}: ${JSON.stringify(res)}`);
      } catch (err) {
        failures.push(`call ${i}: ${(err as Error).message}`);
      }
    }
  } finally {
    await client.close();
  }
  const elapsedMs = Date.now() - started;
  assert.deepEqual(failures, [], stderr());

  const refreshes = sandbox.counters.tokenRequestLog.filter((e) => e.grantType === 'refresh_token');
  // One refresh per token lifetime. The TokenManager refreshes a quarter of the lifetime early
  // (margin = min(60 s, ttl/4)), so a 5 s token is replaced every 3.75 s to 4.25 s (the next call
  // after the margin starts), and the login's token may expire early in the session: at least one
  // refresh per full lifetime, at most one per 3.75 s plus the login token's.
  const ttlMs = TTL_SECONDS * 1000;
  const [min, max] = [Math.floor(elapsedMs / ttlMs), Math.ceil(elapsedMs / (ttlMs * 0.75)) + 1];
  t.diagnostic(`${refreshes.length} refreshes over ${elapsedMs} ms (allowed ${min}..${max}); MCP 401s: ${sandbox.counters.mcp401}`);
  assert.ok(refreshes.length >= min && refreshes.length <= max, `refreshes: ${refreshes.length}, allowed ${min}..${max} over ${elapsedMs} ms`);
  assert.ok(sandbox.counters.tokenRequestLog.every((e) => e.concurrent <= 1), 'never two token requests at once');
  assert.equal(sandbox.counters.refreshReuseDetected, 0);
  assert.equal(sandbox.counters.tokenRequests.authorization_code ?? 0, 0, 'no new sign-in');
});
