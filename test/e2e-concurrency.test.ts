/**
 * Rotation with reuse detection (issue test 4): the sandbox rotates refresh tokens and revokes the
 * whole grant when a consumed one is presented again (RFC 9700 §4.14.2). Many requests that all
 * find the access token expired — in one process, and in 8 processes at once — must cause exactly
 * one refresh at the authorization server, never two in flight, and no reuse detection.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { createOAuthSession, serverFromUrl } from '../src/client/session.ts';
import { connectMcp } from '../src/client/mcp.ts';
import { FileCredentialStore } from '../src/store/file-store.ts';
import { MemoryCredentialStore } from '../src/store/memory-store.ts';
import { makeHome, runCli, writeConfig, readStore, assertNoSecretsPrinted, browserLaunches, type TestHome } from './helpers/e2e.ts';
import { waitUntilExpired, expireStoredCredentials, headlessBrowser, maxConcurrentTokenRequests } from './fixtures/conc-helpers.ts';

const textOf = (result: { content?: unknown }) => ((result.content as Array<{ text?: string }>)[0]?.text ?? '');

async function bearerStatus(sandbox: Sandbox, token: string | undefined): Promise<number> {
  const res = await fetch(sandbox.mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'probe', version: '0' } },
    }),
  });
  await res.body?.cancel();
  return res.status;
}

describe('one process: 100 concurrent calls with an expired access token', () => {
  let sandbox: Sandbox;
  before(async () => {
    // Short-lived access tokens so the test waits for a real expiry (the server rejects the old
    // one). Long enough that the refreshed token stays fresh while the 100 calls run on a busy machine.
    sandbox = await startSandbox({ rotateRefreshTokens: true, accessTokenTtlSeconds: 5 });
  });
  after(() => sandbox.close());

  test('one initialized MCP session: exactly one refresh, no reuse, no 401, every call succeeds', async () => {
    const session = createOAuthSession({ server: serverFromUrl(sandbox.mcpUrl), store: new MemoryCredentialStore(), interactive: { browser: headlessBrowser } });
    const conn = await connectMcp({ url: sandbox.mcpUrl, fetch: session.fetch });
    try {
      const signedIn = await session.manager.credential();
      assert.ok(signedIn?.refreshToken, 'the sign-in must yield a refresh token');
      await waitUntilExpired(signedIn);
      sandbox.resetCounters();

      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => conn.client.callTool({ name: 'echo', arguments: { text: `call ${i}` } })),
      );

      assert.deepEqual(results.map(textOf), Array.from({ length: 100 }, (_, i) => `call ${i}`));
      assert.equal(sandbox.counters.tokenRequests.refresh_token, 1, 'exactly one refresh for 100 concurrent calls');
      assert.equal(sandbox.counters.refreshReuseDetected, 0);
      assert.equal(maxConcurrentTokenRequests(sandbox.counters), 1);
      // Proactive: the expired token was never sent, so the server never answered 401.
      assert.equal(sandbox.counters.mcp401, 0);
      assert.ok(sandbox.counters.mcpRequests >= 100);
      const refreshed = await session.manager.credential();
      assert.notEqual(refreshed?.refreshToken, signedIn.refreshToken, 'the sandbox rotates refresh tokens');
      // The wait was real: the server now rejects the old access token, accepts the new one.
      assert.equal(await bearerStatus(sandbox, signedIn.accessToken), 401);
      assert.equal(await bearerStatus(sandbox, refreshed?.accessToken), 200);
    } finally {
      await conn.close();
    }
  });

  test('two sessions sharing a file store (two clients in one process): still exactly one refresh', async () => {
    const { home, cleanup } = await makeHome();
    try {
      const store = new FileCredentialStore(home);
      const server = serverFromUrl(sandbox.mcpUrl);
      const first = createOAuthSession({ server, store, interactive: { browser: headlessBrowser } });
      const second = createOAuthSession({ server, store, interactive: false });
      const a = await connectMcp({ url: sandbox.mcpUrl, fetch: first.fetch });
      const b = await connectMcp({ url: sandbox.mcpUrl, fetch: second.fetch });
      try {
        await waitUntilExpired(await first.manager.credential());
        sandbox.resetCounters();
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).client.callTool({ name: 'echo', arguments: { text: `c${i}` } })),
        );
        assert.deepEqual(results.map(textOf), Array.from({ length: 100 }, (_, i) => `c${i}`));
        // The second session waits on the store lock and finds the first one's refresh inside it.
        assert.equal(sandbox.counters.tokenRequests.refresh_token, 1);
        assert.equal(sandbox.counters.refreshReuseDetected, 0);
        assert.equal(maxConcurrentTokenRequests(sandbox.counters), 1);
        assert.equal(sandbox.counters.mcp401, 0);
        assert.equal((await first.manager.credential())?.accessToken, (await second.manager.credential())?.accessToken);
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await cleanup();
    }
  });
});

describe('8 processes at once with the expired token in the shared file store', () => {
  let sandbox: Sandbox;
  let h: TestHome;
  before(async () => {
    sandbox = await startSandbox({ rotateRefreshTokens: true });
    h = await makeHome();
    await writeConfig(h.home, `[mcp_servers.conc]\nurl = "${sandbox.mcpUrl}"\n`);
  });
  after(async () => {
    await sandbox.close();
    await h.cleanup();
  });

  test('exactly one refresh, never two in flight, no reuse detected, all 8 exit 0', async () => {
    const login = await runCli(['login', 'conc'], { env: h.env });
    assert.equal(login.code, 0, login.stderr);
    const [before] = Object.values((await readStore(h.home)).credentials);
    assert.ok(before?.refreshToken);
    // Each process reads the store when it starts; with 8 CLI starts taking seconds on a busy
    // machine, a real 3 s expiry would expire the refreshed token too. So the stored credential is
    // made to look expired, which is all a starting process can see.
    await expireStoredCredentials(h.home);
    sandbox.resetCounters();

    const runs = await Promise.all(
      // Generous timeout: 8 CLI starts at once are slow on a 2-core machine running other tests.
      Array.from({ length: 8 }, (_, i) => runCli(['call', 'conc', 'echo', JSON.stringify({ text: `process ${i}` })], { env: h.env, timeoutMs: 150_000 })),
    );

    runs.forEach((r, i) => {
      assert.equal(r.code, 0, `process ${i} failed: ${r.stderr}`);
      assert.equal(r.stdout.trim(), `process ${i}`);
    });
    assert.equal(sandbox.counters.tokenRequests.refresh_token, 1, 'exactly one refresh across 8 processes');
    assert.equal(sandbox.counters.refreshReuseDetected, 0);
    assert.equal(maxConcurrentTokenRequests(sandbox.counters), 1, 'two refresh requests were in flight at once');
    assert.equal(sandbox.counters.tokenRequests.authorization_code, undefined, 'nobody signed in again');
    assert.equal(await browserLaunches(h.browserLog), 1, 'only the login opened a browser');

    const [after] = Object.values((await readStore(h.home)).credentials);
    assert.notEqual(after.refreshToken, before.refreshToken, 'the rotated refresh token was persisted');
    assert.equal(after.needsSignIn, undefined);
    await assertNoSecretsPrinted(h.home, ...runs.flatMap((r) => [r.stdout, r.stderr]));

    // The persisted refresh token is the live one: the next refresh (a 9th process) works.
    await expireStoredCredentials(h.home);
    const ninth = await runCli(['call', 'conc', 'echo', '{"text":"ninth"}'], { env: h.env });
    assert.equal(ninth.code, 0, ninth.stderr);
    assert.equal(sandbox.counters.tokenRequests.refresh_token, 2);
    assert.equal(sandbox.counters.refreshReuseDetected, 0);
  });
});
