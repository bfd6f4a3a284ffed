/**
 * End-to-end: the real CLI in child processes against a real sandbox (authorization server + MCP
 * server on 127.0.0.1). First sign-in, then the first user report: a NEW process holding an
 * expired (or nearly expired) access token must refresh BEFORE its first MCP request, so the MCP
 * server never sees a 401.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSandbox, type Sandbox, type SandboxOptions } from '../src/sandbox/index.ts';
import { assertNoSecretsPrinted, browserLaunches, makeHome, readStore, runCli, writeConfig, type CliResult, type TestHome, ok, onlyCredential, mcpStatusWith } from './helpers/e2e.ts';

async function withSandboxHome(opts: SandboxOptions, fn: (sb: Sandbox, h: TestHome) => Promise<void>): Promise<void> {
  const sb = await startSandbox(opts);
  const h = await makeHome();
  try {
    await fn(sb, h);
  } finally {
    await sb.close();
    await h.cleanup();
  }
}



/** Checks made on every first sign-in: one browser launch, PKCE S256 + resource + scopes on the
 * authorize request, one authorization_code token request, the credential in a 0600 file in a
 * 0700 directory, and no secret in anything printed. */
async function assertFirstSignIn(sb: Sandbox, h: TestHome, serverName: string, outputs: string[]): Promise<void> {
  assert.equal(await browserLaunches(h.browserLog), 1, 'exactly one browser launch for login + tools + call');
  // RFC 7636 §4.3 (PKCE with S256 only, per MCP spec) and RFC 8707 §2 (resource = canonical MCP URL).
  assert.equal(sb.counters.authorizeRequests.length, 1);
  const authorize = sb.counters.authorizeRequests[0];
  assert.equal(authorize.code_challenge_method, 'S256');
  assert.match(authorize.code_challenge, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(authorize.resource, sb.mcpUrl);
  assert.equal(authorize.response_type, 'code');
  // Scopes from the 401 challenge (mcp:tools), plus offline_access because the AS lists it.
  assert.deepEqual(authorize.scope.split(' ').sort(), ['mcp:tools', 'offline_access']);
  assert.equal(sb.counters.tokenRequests.authorization_code, 1);
  assert.equal(sb.counters.tokenRequests.refresh_token, undefined, 'a fresh token needs no refresh');
  assert.equal(sb.counters.registrations, 1, 'one dynamic client registration');

  const credential = await onlyCredential(h.home);
  assert.equal(credential.key.serverName, serverName);
  assert.equal(credential.key.issuer, sb.issuer);
  assert.equal(credential.key.resource, sb.mcpUrl);
  assert.equal(typeof credential.refreshToken, 'string');
  assert.ok(credential.scopes.includes('mcp:tools'));
  // File store: credentials.json 0600 in a 0700 directory (nobody else on the machine reads it).
  assert.equal((await stat(h.home)).mode & 0o777, 0o700);
  assert.equal((await stat(join(h.home, 'credentials.json'))).mode & 0o777, 0o600);
  await assertNoSecretsPrinted(h.home, ...outputs);
}


describe('e2e sign-in', { concurrency: true }, () => {
  describe('first sign-in', { concurrency: true }, () => {
    it('login URL, then tools and call reuse the credential without a browser', async () => {
      await withSandboxHome({}, async (sb, h) => {
        const login = ok(await runCli(['login', sb.mcpUrl], { env: h.env }), 'login');
        assert.match(login.stdout, /✓ Signed in to /);
        assert.ok(login.stdout.includes(sb.issuer), 'login names the issuer');
        const tools = ok(await runCli(['tools', sb.mcpUrl], { env: h.env }), 'tools');
        assert.match(tools.stdout, /\becho\b/);
        assert.match(tools.stdout, /\bwhoami\b/);
        const call = ok(await runCli(['call', sb.mcpUrl, 'echo', '{"text":"hi"}'], { env: h.env }), 'call');
        assert.equal(call.stdout, 'hi\n');
        await assertFirstSignIn(sb, h, sb.mcpUrl, [login.stdout, login.stderr, tools.stdout, tools.stderr, call.stdout, call.stderr]);
      });
    });

    it('add NAME URL, then login NAME, tools NAME and call NAME', async () => {
      await withSandboxHome({}, async (sb, h) => {
        const add = ok(await runCli(['add', 'sandbox', sb.mcpUrl], { env: h.env }), 'add');
        assert.match(add.stdout, /Next: mcp-oauth login sandbox/);
        const login = ok(await runCli(['login', 'sandbox'], { env: h.env }), 'login');
        assert.match(login.stdout, /Signed in to sandbox/);
        assert.match(login.stdout, /Next: mcp-oauth tools sandbox/);
        const tools = ok(await runCli(['tools', 'sandbox', '--json'], { env: h.env }), 'tools --json');
        const names = (JSON.parse(tools.stdout).tools as Array<{ name: string }>).map((t) => t.name);
        assert.ok(names.includes('echo') && names.includes('whoami'), names.join(','));
        const call = ok(await runCli(['call', 'sandbox', 'echo', '{"text":"hi"}'], { env: h.env }), 'call');
        assert.equal(call.stdout, 'hi\n');
        await assertFirstSignIn(sb, h, 'sandbox', [add.stdout, login.stdout, login.stderr, tools.stdout, tools.stderr, call.stdout, call.stderr]);
      });
    });
  });

  describe('a new process refreshes before its first MCP request (first user report)', { concurrency: true }, () => {
    it('expired access token + valid refresh token: refresh first, the MCP server sees no 401', async () => {
      await withSandboxHome({ accessTokenTtlSeconds: 5 }, async (sb, h) => {
        // Margin 0: only real expiry triggers the refresh here (the margin has its own test below).
        await writeConfig(h.home, `[settings]\nrefresh_margin_seconds = 0\n\n[mcp_servers.sb]\nurl = "${sb.mcpUrl}"\n`);
        ok(await runCli(['login', 'sb'], { env: h.env }), 'login');
        const before = await onlyCredential(h.home);
        await sleep(5500);
        // The stored token really is dead: the MCP server rejects it (so mcp401 === 0 below means something).
        assert.equal(await mcpStatusWith(sb.mcpUrl, before.accessToken), 401);
        sb.resetCounters();

        const call = ok(await runCli(['call', 'sb', 'echo', '{"text":"after expiry"}'], { env: h.env }), 'call');
        assert.equal(call.stdout, 'after expiry\n');
        assert.equal(sb.counters.mcp401, 0, 'the MCP server must never see the expired token');
        assert.equal(sb.counters.tokenRequests.refresh_token, 1);
        assert.equal(sb.counters.tokenRequests.authorization_code, undefined);
        assert.ok(sb.counters.mcpRequests > 0);
        // RFC 8707 §2 / MCP spec: `resource` exactly once in the refresh request too.
        const [refresh] = sb.counters.tokenRequestLog;
        assert.equal(refresh.grantType, 'refresh_token');
        assert.deepEqual(refresh.resource, [sb.mcpUrl]);
        assert.equal(await browserLaunches(h.browserLog), 1, 'no second browser launch');

        const after = await onlyCredential(h.home);
        assert.notEqual(after.accessToken, before.accessToken, 'the new access token was stored');
        assert.notEqual(after.refreshToken, before.refreshToken, 'the rotated refresh token was stored');
        assert.equal(after.clientId, before.clientId);
        await assertNoSecretsPrinted(h.home, call.stdout, call.stderr);
      });
    });

    // The margin is capped at a quarter of the token's lifetime (token-manager isStale), so to test
    // it deterministically the stored credential is made to look obtained two hours ago and
    // expiring in 5 minutes; the access token itself stays valid at the server (TTL 1 h).
    async function loginWithAgedCredential(sb: Sandbox, h: TestHome, marginSeconds: number) {
      await writeConfig(h.home, `[settings]\nrefresh_margin_seconds = ${marginSeconds}\n\n[mcp_servers.sb]\nurl = "${sb.mcpUrl}"\n`);
      ok(await runCli(['login', 'sb'], { env: h.env }), 'login');
      const file = join(h.home, 'credentials.json');
      const store = JSON.parse(await readFile(file, 'utf8'));
      const [id] = Object.keys(store.credentials);
      const now = Date.now();
      store.credentials[id] = { ...store.credentials[id], obtainedAt: now - 7200_000, expiresAt: now + 300_000 };
      await writeFile(file, JSON.stringify(store), { mode: 0o600 });
      const before = await onlyCredential(h.home);
      assert.equal(await mcpStatusWith(sb.mcpUrl, before.accessToken), 200, 'the stored token still works at the server');
      sb.resetCounters();
      return before;
    }

    it('token not yet expired but within refresh_margin_seconds: proactive refresh', async () => {
      await withSandboxHome({}, async (sb, h) => {
        const before = await loginWithAgedCredential(sb, h, 600);
        ok(await runCli(['call', 'sb', 'echo', '{"text":"margin"}'], { env: h.env }), 'call');
        assert.equal(sb.counters.mcp401, 0);
        assert.equal(sb.counters.tokenRequests.refresh_token, 1, 'refreshed: expires in 300 s < 600 s margin');
        assert.deepEqual(sb.counters.tokenRequestLog[0].resource, [sb.mcpUrl]);
        assert.notEqual((await onlyCredential(h.home)).accessToken, before.accessToken);
      });
    });

    it('control: the same token outside the margin is used as is (no refresh)', async () => {
      await withSandboxHome({}, async (sb, h) => {
        const before = await loginWithAgedCredential(sb, h, 60);
        ok(await runCli(['call', 'sb', 'echo', '{"text":"no refresh"}'], { env: h.env }), 'call');
        assert.equal(sb.counters.mcp401, 0);
        assert.equal(sb.counters.tokenRequests.refresh_token, undefined, 'expires in 300 s > 60 s margin');
        assert.equal((await onlyCredential(h.home)).accessToken, before.accessToken);
      });
    });
  });
});
