/**
 * The library (issue §6), against the sandbox: the three README examples (SDK v2 AuthProvider, SDK
 * 1.x OAuthClientProvider, the authenticated fetch) run exactly as docs/library-examples.md shows
 * them, refresh proactively when the token has expired, refresh once on a 401, and the stores hold
 * what they should. The examples sign in through $BROWSER (the headless follower) like a user would.
 */
import { test, describe, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import {
  createOAuthSession,
  serverFromUrl,
  resolveServer,
  FileCredentialStore,
  MemoryCredentialStore,
  McpOAuthError,
  type CredentialStore,
} from '../src/index.ts';
import { connectMcp } from '../src/client/mcp.ts';
import { makeHome, runCli, writeConfig, browserLaunches, repoRoot, type TestHome } from './helpers/e2e.ts';
import { waitUntilExpired, headlessBrowser, maxConcurrentTokenRequests } from './fixtures/conc-helpers.ts';
import { exampleSnippets } from './fixtures/lib-snippets.ts';
import { sdkV2Example } from './fixtures/lib-example-sdk-v2.ts';
import { sdkV1Example } from './fixtures/lib-example-sdk-v1.ts';
import { fetchExample } from './fixtures/lib-example-fetch.ts';

/** The text of a tools/call result's first content block (SDK 1.x and v2 result types differ). */
const textOf = (result: unknown) => ((result as { content?: Array<{ text?: string }> }).content?.[0]?.text ?? '');

let sandbox: Sandbox;
let h: TestHome;
const savedEnv = { ...process.env };

before(async () => {
  // 3 s access tokens: the tests wait for a real expiry (the server rejects the old token).
  sandbox = await startSandbox({ accessTokenTtlSeconds: 3, rotateRefreshTokens: true });
});
after(() => sandbox.close());
beforeEach(async () => {
  h = await makeHome();
  // The examples read process.env like an application would: where the store lives, which browser.
  Object.assign(process.env, { MCP_OAUTH_HOME: h.home, BROWSER: h.env.BROWSER, BROWSER_LOG: h.env.BROWSER_LOG });
  sandbox.resetCounters();
});
afterEach(async () => {
  for (const k of ['MCP_OAUTH_HOME', 'BROWSER', 'BROWSER_LOG']) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
  await h.cleanup();
});

/** Replaces the stored access token with one the server rejects, valid for an hour as far as the client knows. */
async function corruptStoredAccessToken(store: CredentialStore): Promise<void> {
  const [credential] = await store.list();
  await store.put({ ...credential, accessToken: 'garbage.not-a-jwt', expiresAt: Date.now() + 3_600_000, obtainedAt: Date.now() });
}

test('README.md and docs/library-examples.md show the examples exactly as the tests run them', async () => {
  for (const file of ['README.md', join('docs', 'library-examples.md')]) {
    const docs = await readFile(join(repoRoot, file), 'utf8');
    for (const { fixture, snippet } of await exampleSnippets()) {
      assert.ok(docs.includes('```ts\n' + snippet + '```'), `${file} does not contain the example of ${fixture}:\n${snippet}`);
    }
  }
});

describe('SDK v2: Client + StreamableHTTPClientTransport + createAuthProvider', () => {
  test('signs in once via the browser; tools/list and tools/call work', async () => {
    const { session, client, tools } = await sdkV2Example(sandbox.mcpUrl);
    try {
      assert.ok(tools.some((t) => t.name === 'echo'));
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'v2' } })), 'v2');
      assert.equal(await browserLaunches(h.browserLog), 1);
      assert.equal(sandbox.counters.tokenRequests.authorization_code, 1);
      assert.ok((await session.manager.credential())?.refreshToken);
    } finally {
      await client.close();
    }
  });

  test('expired token: the provider refreshes before the request (no 401 at the server)', async () => {
    const { session, client } = await sdkV2Example(sandbox.mcpUrl);
    try {
      await waitUntilExpired(await session.manager.credential());
      sandbox.resetCounters();
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'after expiry' } })), 'after expiry');
      assert.equal(sandbox.counters.tokenRequests.refresh_token, 1);
      assert.equal(sandbox.counters.mcp401, 0);
      assert.equal(await browserLaunches(h.browserLog), 1, 'no new sign-in');
    } finally {
      await client.close();
    }
  });

  test('a token the server rejects: onUnauthorized refreshes once and the retried request succeeds', async () => {
    const first = await sdkV2Example(sandbox.mcpUrl);
    await first.client.close();
    await corruptStoredAccessToken(new FileCredentialStore(h.home));
    sandbox.resetCounters();

    const { client, tools } = await sdkV2Example(sandbox.mcpUrl);
    try {
      assert.ok(tools.length > 0);
      assert.equal(sandbox.counters.mcp401, 1);
      assert.equal(sandbox.counters.tokenRequests.refresh_token, 1);
      assert.equal(sandbox.counters.refreshReuseDetected, 0);
      assert.equal(await browserLaunches(h.browserLog), 1, 'no new sign-in');
    } finally {
      await client.close();
    }
  });
});

describe('SDK 1.x: Client + StreamableHTTPClientTransport + createOAuthClientProvider', () => {
  test('signs in once; tools/list and tools/call work; 20 concurrent calls after expiry → one refresh', async () => {
    const { session, client, tools } = await sdkV1Example(sandbox.mcpUrl);
    try {
      assert.ok(tools.some((t) => t.name === 'echo'));
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'v1' } })), 'v1');
      assert.equal(await browserLaunches(h.browserLog), 1);

      await waitUntilExpired(await session.manager.credential());
      sandbox.resetCounters();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => client.callTool({ name: 'echo', arguments: { text: `v1 ${i}` } })),
      );
      assert.deepEqual(results.map(textOf), Array.from({ length: 20 }, (_, i) => `v1 ${i}`));
      assert.equal(sandbox.counters.tokenRequests.refresh_token, 1);
      assert.equal(sandbox.counters.refreshReuseDetected, 0);
      assert.equal(maxConcurrentTokenRequests(sandbox.counters), 1);
      assert.equal(sandbox.counters.mcp401, 0, 'refreshed before sending');
    } finally {
      await client.close();
    }
  });

  test('a token the server rejects: provider.fetch refreshes once and retries; the SDK never starts an authorization', async () => {
    const first = await sdkV1Example(sandbox.mcpUrl);
    await first.client.close();
    await corruptStoredAccessToken(new FileCredentialStore(h.home));
    sandbox.resetCounters();

    const { client, tools } = await sdkV1Example(sandbox.mcpUrl);
    try {
      assert.ok(tools.length > 0);
      assert.equal(sandbox.counters.mcp401, 1);
      assert.equal(sandbox.counters.tokenRequests.refresh_token, 1);
      assert.equal(sandbox.counters.authorizeRequests.length, 0);
      assert.equal(sandbox.counters.registrations, 0);
    } finally {
      await client.close();
    }
  });
});

describe('the authenticated fetch alone', () => {
  test('initialize through session.fetch; a rejected token is refreshed once and the request replayed', async () => {
    const { response } = await fetchExample(sandbox.mcpUrl);
    assert.equal(response.status, 200);
    assert.ok(response.headers.get('mcp-session-id'));
    assert.match(await response.text(), /"protocolVersion"/);

    await corruptStoredAccessToken(new FileCredentialStore(h.home));
    sandbox.resetCounters();
    const again = await fetchExample(sandbox.mcpUrl);
    assert.equal(again.response.status, 200, 'the replayed POST (same body) succeeded');
    assert.match(await again.response.text(), /"protocolVersion"/);
    assert.equal(sandbox.counters.mcp401, 1);
    assert.equal(sandbox.counters.tokenRequests.refresh_token, 1);
  });

  test('interactive: false never opens a browser: signin_required naming the login command', async () => {
    const session = createOAuthSession({ server: serverFromUrl(sandbox.mcpUrl), store: new MemoryCredentialStore(), interactive: false });
    await assert.rejects(
      () => session.fetch(sandbox.mcpUrl, { method: 'POST', body: '{}' }),
      (e: unknown) => e instanceof McpOAuthError && e.code === 'signin_required' && /mcp-oauth login/.test(e.hint ?? ''),
    );
    assert.equal(await browserLaunches(h.browserLog), 0);
    assert.equal(sandbox.counters.authorizeRequests.length, 0);
  });
});

describe('credential stores', () => {
  test('MemoryCredentialStore: the credential and the DCR registration live in memory only', async () => {
    const store = new MemoryCredentialStore();
    const session = createOAuthSession({ server: serverFromUrl(sandbox.mcpUrl), store, interactive: { browser: headlessBrowser } });
    const conn = await connectMcp({ url: sandbox.mcpUrl, fetch: session.fetch });
    try {
      assert.equal(textOf(await conn.client.callTool({ name: 'echo', arguments: { text: 'memory' } })), 'memory');
    } finally {
      await conn.close();
    }
    const [credential] = await store.list();
    assert.equal(credential.key.resource, sandbox.mcpUrl);
    assert.equal(credential.key.issuer, sandbox.issuer);
    assert.ok(credential.refreshToken);
    assert.equal((await store.getRegistration(sandbox.issuer))?.clientId, credential.clientId);
    // Copies in and out: mutating what list() returned does not change the store.
    credential.accessToken = 'changed';
    assert.notEqual((await store.get(credential.key))?.accessToken, 'changed');
    await assert.rejects(stat(join(h.home, 'credentials.json')), { code: 'ENOENT' });
  });

  test('FileCredentialStore: 0600 file in a 0700 dir; a new session (another process) signs in no more', async () => {
    const { session, client } = await sdkV2Example(sandbox.mcpUrl);
    await client.close();
    const file = join(h.home, 'credentials.json');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(h.home)).mode & 0o777, 0o700);
    const onDisk = JSON.parse(await readFile(file, 'utf8'));
    const stored = Object.values(onDisk.credentials) as Array<{ accessToken: string; refreshToken: string }>;
    assert.equal(stored.length, 1);
    assert.equal(stored[0].accessToken, (await session.manager.credential())?.accessToken);

    sandbox.resetCounters();
    const fresh = createOAuthSession({ server: serverFromUrl(sandbox.mcpUrl), store: new FileCredentialStore(h.home), interactive: false });
    const conn = await connectMcp({ url: sandbox.mcpUrl, fetch: fresh.fetch });
    await conn.close();
    assert.equal(sandbox.counters.authorizeRequests.length, 0, 'the stored grant was used, no new sign-in');
    assert.equal(sandbox.counters.tokenRequests.authorization_code, undefined);
  });

  test('FileCredentialStore + resolveServer share the CLI sign-in (MCP_OAUTH_STORE=file)', async () => {
    await writeConfig(h.home, `[mcp_servers.shared]\nurl = "${sandbox.mcpUrl}"\n`);
    const login = await runCli(['login', 'shared'], { env: h.env });
    assert.equal(login.code, 0, login.stderr);
    sandbox.resetCounters();

    const session = createOAuthSession({
      server: await resolveServer('shared', { env: process.env }),
      store: new FileCredentialStore(h.home),
      interactive: false,
    });
    const conn = await connectMcp({ url: sandbox.mcpUrl, fetch: session.fetch });
    try {
      assert.equal(textOf(await conn.client.callTool({ name: 'echo', arguments: { text: 'shared' } })), 'shared');
    } finally {
      await conn.close();
    }
    assert.equal(sandbox.counters.authorizeRequests.length, 0, 'the library used the CLI credential');
    assert.equal(await browserLaunches(h.browserLog), 1, 'only the CLI login opened a browser');
  });
});
