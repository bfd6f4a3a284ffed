/**
 * The proxy's log at the DEFAULT level is what a user reads when a client misbehaves: sign-ins,
 * refreshes and the server's errors are in it, not only start and stop, and never a token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { McpOAuthError } from '../src/errors.ts';
import { lifecycleLogger } from '../src/cli/commands/proxy.ts';
import type { LifecycleEvent } from '../src/lifecycle/token-manager.ts';
import { assertNoSecretsPrinted, makeHome, readStore, type TestHome } from './helpers/e2e.ts';
import { initializeRequest, proxyLogs, rawProxy } from './fixtures/proxy-helpers.ts';

describe('the proxy log at the default level', () => {
  let sandbox: Sandbox;
  let home: TestHome;
  before(async () => {
    sandbox = await startSandbox({ accessTokenTtlSeconds: 2 });
    home = await makeHome();
  });
  after(async () => {
    await sandbox?.close();
    await home?.cleanup();
  });

  it('records the sign-in, each refresh and the server\'s JSON-RPC errors; no token in it', async () => {
    const env = { ...home.env };
    delete env.MCP_OAUTH_LOG_LEVEL;
    delete env.MCP_OAUTH_DEBUG;
    const proxy = rawProxy([sandbox.mcpUrl], env);
    try {
      proxy.send(initializeRequest(1));
      assert.ok((await proxy.waitFor((m) => m.id === 1, 60_000)).result);
      proxy.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      // The 2-second token expires (with the refresh margin, sooner): the next call refreshes.
      await new Promise((r) => setTimeout(r, 2500));
      proxy.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'after expiry' } } });
      assert.ok((await proxy.waitFor((m) => m.id === 2)).result);
      proxy.send({ jsonrpc: '2.0', id: 3, method: 'no/such/method' });
      const err = await proxy.waitFor((m) => m.id === 3);
      assert.equal(err.error?.code, -32601);
    } finally {
      await proxy.stop();
    }
    const { text } = await proxyLogs(home.home);
    const lines = text.trim().split('\n');
    assert.ok(lines.every((l) => / (info|warn|error) /.test(l)), `only info and above at the default level:\n${text}`);
    assert.match(text, / info {2}proxy started /);
    assert.match(text, / info {2}signed in /);
    assert.match(text, / info {2}refreshed the access token \{.*"rotated":true/);
    assert.match(text, / info {2}the MCP server answered with an error \{"id":3,"errorCode":-32601\}/);
    assert.match(text, / info {2}proxy shutting down /);
    assert.ok(Object.keys((await readStore(home.home)).credentials).length === 1);
    await assertNoSecretsPrinted(home.home, text, proxy.stderr());
  });
});

describe('lifecycleLogger', () => {
  it('every lifecycle event but "refresh started" reaches the default level, with no secret field', () => {
    const seen: Array<[string, string, Record<string, unknown> | undefined]> = [];
    const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void seen.push([level, msg, fields]);
    const log = lifecycleLogger({ error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') });
    const events: LifecycleEvent[] = [
      { type: 'refresh_started', server: 's' },
      { type: 'refreshed', server: 's', expiresAt: 0, rotated: true, byOtherProcess: false },
      { type: 'refreshed', server: 's', rotated: false, byOtherProcess: true },
      { type: 'refresh_failed', server: 's', error: new McpOAuthError('network_error', 'the authorization server is unreachable'), willRetry: true },
      { type: 'signin_required', server: 's', reason: 'grant_gone' },
      { type: 'signin_required', server: 's', reason: 'no_credential' },
      { type: 'signed_in', server: 's' },
      { type: 'reloaded', server: 's' },
    ];
    for (const e of events) log(e);
    assert.deepEqual(seen.map(([level]) => level), ['debug', 'info', 'info', 'warn', 'warn', 'info', 'info', 'info']);
    assert.deepEqual(seen[1][2], { server: 's', rotated: true, expiresAt: '1970-01-01T00:00:00.000Z' });
    assert.equal(seen[3][2]?.code, 'network_error');
    assert.equal(seen[4][2]?.reason, 'grant_gone');
  });
});
