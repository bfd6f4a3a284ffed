/**
 * Bad input end to end (2/2): a tampered callback, a failing token endpoint, a server that moved to
 * another authorization server, a server that is down. The real CLI against the real sandbox, with
 * small fake servers in front where the sandbox cannot produce the fault. Each case checks the
 * error (exit code, message, `next:` line), where tokens went, and that the stored credential
 * survived.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { runCli, writeConfig, readStore, browserLaunches, assertNoSecretsPrinted, type CliResult } from './helpers/e2e.ts';
import { startFakeServer, forward, sendJson, sendText, type FakeServer } from './fixtures/fault-servers.ts';
import { withFetchLog, fetchLog, assertCliError, type LoggedHome } from './fixtures/fault-assertions.ts';

const tamperBrowser = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'fault-tamper-browser.ts');

/** Each test gets its own sandbox: counters and token endpoint faults are per sandbox. */
async function withSandbox(fn: (sandbox: Sandbox, h: LoggedHome) => Promise<void>, extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
  const sandbox = await startSandbox();
  const h = await withFetchLog(extraEnv);
  try {
    await fn(sandbox, h);
  } finally {
    await h.cleanup();
    await sandbox.close();
  }
}

const cli = (args: string[], h: LoggedHome): Promise<CliResult> => runCli(args, { env: h.env, timeoutMs: 45_000 });

/** Polls for a file the detached $BROWSER process writes after the CLI has exited. */
async function waitForFile(path: string, timeoutMs = 5_000): Promise<string> {
  for (const start = Date.now(); ; ) {
    try {
      return await readFile(path, 'utf8');
    } catch {
      if (Date.now() - start > timeoutMs) throw new Error(`${path} was never written`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function storedCredential(h: LoggedHome): Promise<Record<string, any>> {
  const credentials = Object.values((await readStore(h.home)).credentials);
  assert.equal(credentials.length, 1, 'exactly one stored credential');
  return credentials[0];
}

/** Makes the stored access token look expired so the next command refreshes it. */
async function expireStoredToken(h: LoggedHome): Promise<void> {
  const file = join(h.home, 'credentials.json');
  const data = JSON.parse(await readFile(file, 'utf8'));
  for (const c of Object.values<any>(data.credentials)) c.expiresAt = Date.now() - 1_000;
  await writeFile(file, JSON.stringify(data), { mode: 0o600 });
}

describe('bad input: callback, token endpoint, moved and unreachable servers', { concurrency: 3 }, () => {
  // ---- 4. tampered callback: state and iss (RFC 6749 §10.12, RFC 9207) ----
  const tampering = [
    { mode: 'state', says: 'does not match this sign-in' }, // state_mismatch
    { mode: 'iss', says: 'https://attacker.example' }, // iss_mismatch
    { mode: 'drop-iss', says: 'no "iss" parameter' }, // iss_missing
  ];
  for (const t of tampering) {
    test(`a callback with ${t.mode === 'state' ? 'another state' : t.mode === 'iss' ? 'another iss' : 'no iss'} is refused before any token request (exit 5)`, async () => {
      await withSandbox(async (sandbox, h) => {
        const page = join(dirname(h.home), 'page.json');
        Object.assign(h.env, { BROWSER: `${process.execPath} ${tamperBrowser}`, TAMPER: t.mode, BROWSER_PAGE: page });
        const r = await cli(['login', sandbox.mcpUrl], h);
        assertCliError(r, 5, [t.says]);
        assert.equal(await browserLaunches(h.browserLog), 1, 'the tampering browser was used');
        assert.equal(sandbox.counters.authorizeRequests.length, 1, 'the sign-in did reach the authorization server');
        assert.equal(sandbox.counters.tokenRequests.authorization_code ?? 0, 0, 'the code must never be exchanged');
        assert.deepEqual((await readStore(h.home)).credentials, {});
        // The browser page says what went wrong, in words.
        const shown = JSON.parse(await waitForFile(page));
        assert.equal(shown.status, 400);
        assert.match(shown.body, /Sign-in did not complete/);
        assert.ok(shown.body.includes(t.says.replace(/"/g, '&quot;')), shown.body);
      });
    });
  }

  // ---- 6a. the token endpoint fails the code exchange ----
  test('code exchange answered 400 invalid_grant → exit 5 naming invalid_grant; nothing stored', async () => {
    await withSandbox(async (sandbox, h) => {
      sandbox.setTokenEndpointFault({ status: 400, body: { error: 'invalid_grant', error_description: 'authorization code expired' }, times: 1 });
      const r = await cli(['login', sandbox.mcpUrl], h);
      assertCliError(r, 5, ['invalid_grant']);
      assert.equal(sandbox.counters.tokenRequests.authorization_code, 1);
      assert.deepEqual((await readStore(h.home)).credentials, {});
    });
  });

  test('code exchange answered 500 with an HTML page → exit 6 naming the status; nothing stored', async () => {
    await withSandbox(async (sandbox, h) => {
      sandbox.setTokenEndpointFault({ status: 500, body: '<html><body><h1>Internal Server Error</h1></body></html>', times: 1 });
      const r = await cli(['login', sandbox.mcpUrl], h);
      assertCliError(r, 6, ['500', `${sandbox.issuer}/token`]);
      assert.ok(!r.stderr.includes('<h1>'), 'the HTML page is not dumped on the terminal');
      assert.deepEqual((await readStore(h.home)).credentials, {});
    });
  });

  // ---- 6b. the token endpoint fails a refresh: the stored credential is kept ----
  const refreshFaults = [
    { name: '400 invalid_request', fault: { status: 400, body: { error: 'invalid_request', error_description: 'malformed' } }, exit: 4, next: /^next: mcp-oauth login sbx$/m, says: ['invalid_request', 'refused the refresh'] },
    // Not the grant's fault (a captive portal's page): no sign-in prompt, the sign-in is kept.
    { name: '200 with an HTML body', fault: { status: 200, body: '<html><body>Please log in to the Wi-Fi</body></html>' }, exit: 5, next: /^next: .*captive portal.*mcp-oauth doctor sbx/m, says: ['expected a JSON body', 'text/html', 'sign-in is kept'] },
  ];
  for (const f of refreshFaults) {
    test(`refresh answered ${f.name} → clear error, credential kept with its refresh token`, async () => {
      await withSandbox(async (sandbox, h) => {
        await writeConfig(h.home, `[mcp_servers.sbx]\nurl = "${sandbox.mcpUrl}"\n`);
        assert.equal((await cli(['login', 'sbx'], h)).code, 0);
        await expireStoredToken(h);
        const before = await storedCredential(h);

        sandbox.setTokenEndpointFault({ ...f.fault, times: 1 });
        const r = await cli(['token', 'sbx'], h);
        assertCliError(r, f.exit, ['sbx', ...f.says]);
        assert.ok(!r.stderr.includes('Wi-Fi'), 'the HTML body is not shown');
        assert.match(r.stderr, f.next);
        assert.equal(sandbox.counters.tokenRequests.refresh_token, 1);
        const after = await storedCredential(h);
        assert.equal(after.refreshToken, before.refreshToken, 'the refresh token is kept');
        assert.equal(after.accessToken, before.accessToken);
        await assertNoSecretsPrinted(h.home, r.stdout, r.stderr);

        // Once the endpoint behaves, the kept refresh token works: nothing was lost.
        const again = await cli(['token', 'sbx'], h);
        assert.equal(again.code, 0, again.stderr);
        assert.notEqual(again.stdout.trim(), before.accessToken);
        assert.equal(sandbox.counters.tokenRequests.refresh_token, 2);
        assert.equal(await browserLaunches(h.browserLog), 1, 'no new sign-in was started');
      });
    });
  }

  // ---- 7. tokens go to the MCP server's origin only, never to a (new) authorization server ----
  test('after the server moves to a failing authorization server on another origin, no token is sent there', async () => {
    const fakes: FakeServer[] = [];
    try {
      await withSandbox(async (sandbox, h) => {
        const sandboxMcp = new URL(sandbox.mcpUrl).origin;
        // The new authorization server: a 500 HTML page for everything.
        const elsewhere = await startFakeServer((_req, res) => sendText(res, 500, '<html>down</html>'));
        fakes.push(elsewhere);
        // The MCP server: a front for the sandbox's MCP server (same tokens, audience = sandbox).
        const front = await startFakeServer((req, res, body) => forward(sandboxMcp, req, res, body));
        fakes.push(front);
        await writeConfig(h.home, `[mcp_servers.moving]\nurl = "${front.origin}/mcp"\noauth_resource = "${sandbox.mcpUrl}"\n`);

        const first = await cli(['tools', 'moving'], h);
        assert.equal(first.code, 0, first.stderr);
        assert.match(first.stdout, /echo/);
        const signedIn = await storedCredential(h);
        assert.ok(front.requests.some((q) => q.path === '/mcp' && q.authorization === `Bearer ${signedIn.accessToken}`), 'the MCP server got the token');

        // The server now says its authorization server is `elsewhere`, and rejects every token.
        front.setHandler((req, res) => {
          if ((req.url ?? '').startsWith('/.well-known/oauth-protected-resource')) {
            return sendJson(res, 200, { resource: sandbox.mcpUrl, authorization_servers: [elsewhere.origin] });
          }
          sendJson(res, 401, { error: 'invalid_token' }, {
            'www-authenticate': `Bearer error="invalid_token", resource_metadata="${front.origin}/.well-known/oauth-protected-resource/mcp"`,
          });
        });
        // The 401 shows the move (MCP 2026-07-28 "Authorization Server Binding"): no refresh at the
        // old issuer, a sign-in at the new one, which is down (exit 6, transient), and the old
        // credential is kept, marked as needing that sign-in.
        const rejected = await cli(['tools', 'moving'], h);
        assertCliError(rejected, 6, [new URL(elsewhere.origin).host]);
        assert.match((await storedCredential(h)).needsSignIn?.reason ?? '', /moved to the authorization server/);
        const relogin = await cli(['login', 'moving'], h);
        assertCliError(relogin, 6, [new URL(elsewhere.origin).host]);

        // Where did tokens go? Every request of the three runs, as sent by the CLI.
        const sent = await fetchLog(h);
        const store = await readStore(h.home);
        const tokens = [signedIn.accessToken, signedIn.refreshToken, ...Object.values<any>(store.credentials).flatMap((c) => [c.accessToken, c.refreshToken])]
          .filter((t): t is string => typeof t === 'string');
        for (const q of sent) {
          if (q.authorization?.startsWith('Bearer ')) assert.equal(q.url, `${front.origin}/mcp`, `a bearer token went to ${q.url}`);
          if (!q.url.startsWith(`${sandbox.issuer}/token`)) {
            for (const t of tokens) assert.ok(!q.url.includes(t) && !q.body.includes(t), `a token went to ${q.url}`);
          }
        }
        assert.ok(sent.some((q) => q.url.startsWith(elsewhere.origin)), 'the new authorization server was contacted (for metadata)');
        assert.ok(elsewhere.requests.length > 0);
        for (const q of elsewhere.requests) {
          assert.equal(q.authorization, null, 'no credentials to the other origin');
          for (const t of tokens) assert.ok(!q.path.includes(t) && !q.body.includes(t));
        }
        for (const q of front.requests.filter((x) => x.authorization)) assert.equal(q.path, '/mcp', 'bearer tokens only on the MCP endpoint, never on metadata');
        assert.ok(front.requests.some((q) => q.path.startsWith('/.well-known/') && q.authorization === null));
        // The sign-in kept: still there, with its refresh token, for when the server is fixed.
        const kept = await storedCredential(h);
        assert.equal(typeof kept.refreshToken, 'string');
        assert.equal(sandbox.counters.authorizeRequests.length, 1, 'only the first sign-in reached an authorize endpoint');
      });
    } finally {
      await Promise.all(fakes.map((f) => f.close()));
    }
  });
});
