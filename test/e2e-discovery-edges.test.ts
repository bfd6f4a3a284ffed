/**
 * Discovery end to end, the edges (issue 6): the step-up cap (a server that is never satisfied gets
 * exactly 3 authorization requests), the authorization server migration (a new registration at the
 * new issuer, and no token of the old issuer ever reaches it), each through the library, the CLI
 * and the proxy; and bad input through the CLI (a metadata document that streams forever, an HTML
 * page at a well-known URL, an issuer that differs by more than a trailing slash): a clear error,
 * quickly, and nothing sent where it must not go.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { fingerprint } from '../src/secrets.ts';
import { readStore, runCli, browserLaunches, ok } from './helpers/e2e.ts';
import { ENTRY_POINTS, assertEchoed, cleanup, discoveryHome, run, storedCredential, viaCli } from './fixtures/discovery-e2e.ts';
import { initializeRequest, rawProxy } from './fixtures/proxy-helpers.ts';
import { startFakeServer, sendJson, sendText, type FakeServer } from './fixtures/fault-servers.ts';

describe('step-up cap: a server that always answers 403 insufficient_scope', { concurrency: 1 }, () => {
  let sb: Sandbox;
  before(async () => {
    sb = await startSandbox({ discovery: 'always-insufficient-scope' });
  });
  after(() => sb.close());

  for (const entry of ENTRY_POINTS) {
    test(`via the ${entry}: exactly 3 authorization requests, then an insufficient_scope error naming the scopes`, async () => {
      sb.resetCounters();
      const h = await discoveryHome();
      try {
        const outcome = await run(entry, sb.mcpUrl, h, 'never enough');
        assert.ok(outcome.error, `${entry} should fail: ${JSON.stringify(outcome)}`);
        assert.equal(sb.counters.authorizeRequests.length, 3, `${entry}: exactly 3 authorization requests (the sign-in + 2 step-ups)`);
        assert.equal(outcome.launches, 3, `${entry}: 3 browser launches`);
        // The scopes granted grew by one each time (the server asked for mcp:step1, then mcp:step2).
        assert.deepEqual(sb.counters.authorizeRequests.map((a) => a.scope.split(' ').filter((s) => s.startsWith('mcp:step'))), [[], ['mcp:step1'], ['mcp:step1', 'mcp:step2']]);
        assert.match(outcome.error.message, /mcp:step3/, `${entry}: the error names the scope the server still wants: ${outcome.error.message}`);
        if (entry === 'cli') {
          assert.equal(outcome.error.exitCode, 4, outcome.error.stderr);
          assert.equal(outcome.error.code, 'insufficient_scope');
        }
        if (entry === 'library') assert.equal(outcome.error.code, 'insufficient_scope');
      } finally {
        await cleanup(h);
      }
    });
  }
});

describe('migration: the server moves to another authorization server between two runs', { concurrency: 1 }, () => {
  let sb: Sandbox;
  before(async () => {
    sb = await startSandbox({ secondIssuer: true });
  });
  after(() => sb.close());

  /** Checks that the new issuer saw a new registration and nothing of the old one. */
  function assertCleanMove(oldIssuer: string, newIssuer: string, old: Record<string, any>, fresh: Record<string, any>, what: string, mcpLogMark: number): void {
    const before = sb.counters.issuers[oldIssuer];
    const after = sb.counters.issuers[newIssuer];
    assert.ok(after, `${what}: the new authorization server was used`);
    assert.deepEqual(after.registrations, [fresh.clientId], `${what}: one new registration at the new issuer, used by the new credential`);
    assert.notEqual(fresh.clientId, old.clientId);
    const oldSecrets = new Set([...(before?.issued ?? []), fingerprint(old.accessToken), fingerprint(old.refreshToken)]);
    for (const r of after.tokenRequests) {
      assert.ok(!r.presented || !oldSecrets.has(r.presented), `${what}: a token of ${oldIssuer} was presented to ${newIssuer} (${r.grantType})`);
      assert.notEqual(r.clientId, old.clientId, `${what}: the old client id was used at the new issuer`);
    }
    for (const a of after.authorizeRequests) assert.notEqual(a.client_id, old.clientId, `${what}: the old client id was sent to the new issuer`);
    // The MCP server: after the move, whatever old token it saw was refused, and the call was served with a new one.
    const afterSwitch = sb.counters.mcpLog.slice(mcpLogMark);
    assert.ok(afterSwitch.some((e) => e.tokenIssuer === newIssuer && e.status === 200), `${what}: served with a token of ${newIssuer}`);
    assert.ok(afterSwitch.filter((e) => e.tokenIssuer === oldIssuer).every((e) => e.status === 401), `${what}: old tokens were refused`);
  }

  for (const entry of ENTRY_POINTS) {
    test(`via the ${entry}: a new registration at the new issuer; no old-issuer token reaches it; the move is recorded`, async () => {
      if (sb.activeIssuer() !== sb.issuer) sb.switchAuthorizationServer();
      sb.resetCounters();
      const h = await discoveryHome();
      try {
        assertEchoed(await run(entry, sb.mcpUrl, h, 'before the move'), 'before the move', `${entry} run 1`);
        const old = await storedCredential(h);
        assert.equal(old.key.issuer, sb.issuer);

        const mark = sb.counters.mcpLog.length;
        const newIssuer = sb.switchAuthorizationServer();
        const second = await run(entry, sb.mcpUrl, h, 'after the move');
        assertEchoed(second, 'after the move', `${entry} run 2`);
        const fresh = await storedCredential(h);
        assert.equal(fresh.key.issuer, newIssuer, 'the credential is now the new issuer\'s');
        assert.equal(fresh.migratedFrom?.issuer, sb.issuer, 'the credential records the move');
        const { registrations } = await readStore(h.home);
        assert.equal(registrations[newIssuer]?.clientId, fresh.clientId, 'the new registration is kept under the new issuer');
        assertCleanMove(sb.issuer, newIssuer, old, fresh, entry, mark);

        if (entry === 'cli') {
          const status = JSON.parse(ok(await runCli(['status', sb.mcpUrl, '--json'], { env: h.env }), 'status').stdout);
          const mention = Object.entries(status).find(([k]) => /migrat/i.test(k));
          assert.ok(mention, `status --json should report the migration (e.g. migrated_from): ${JSON.stringify(status)}`);
          assert.match(JSON.stringify(mention[1]), new RegExp(sb.issuer.replace(/[.:/]/g, '\\$&')));
        }
      } finally {
        await cleanup(h);
      }
    });
  }

  test('a running proxy: the move happens between two calls; the proxy signs in at the new issuer and the call succeeds', async () => {
    if (sb.activeIssuer() !== sb.issuer) sb.switchAuthorizationServer();
    sb.resetCounters();
    const h = await discoveryHome();
    const proxy = rawProxy([sb.mcpUrl], h.env);
    try {
      proxy.send(initializeRequest(1));
      assert.ok((await proxy.waitFor((m) => m.id === 1, 60_000)).result);
      proxy.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      proxy.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'one' } } });
      assert.deepEqual((await proxy.waitFor((m) => m.id === 2, 60_000)).result?.content, [{ type: 'text', text: 'one' }]);
      const old = await storedCredential(h);

      const mark = sb.counters.mcpLog.length;
      const newIssuer = sb.switchAuthorizationServer();
      proxy.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'two' } } });
      const two = await proxy.waitFor((m) => m.id === 3, 60_000);
      assert.deepEqual(two.result?.content, [{ type: 'text', text: 'two' }], JSON.stringify(two));
      assert.equal(await browserLaunches(h.browserLog), 2);
      const fresh = await storedCredential(h);
      assert.equal(fresh.key.issuer, newIssuer);
      assertCleanMove(sb.issuer, newIssuer, old, fresh, 'running proxy', mark);
    } finally {
      await proxy.stop();
      await cleanup(h);
    }
  });
});

// ---- bad input (CLI): fake servers that a real one cannot imitate ----

const servers: FakeServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

/** A fake MCP server: 401 on /mcp (naming `challengeUrl` when given); `wellKnown` answers the rest. */
async function fakeMcp(wellKnown: (path: string, res: ServerResponse, origin: string) => void, challengePath?: string): Promise<FakeServer> {
  const server: FakeServer = await startFakeServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/mcp') {
      const header = challengePath ? `Bearer resource_metadata="${server.origin}${challengePath}", scope="mcp:tools"` : 'Bearer scope="mcp:tools"';
      return sendJson(res, 401, { error: 'unauthorized' }, { 'www-authenticate': header });
    }
    wellKnown(path, res, server.origin);
  });
  servers.push(server);
  return server;
}

/** Answers 200 with a JSON content type and never finishes: `chunk` every `everyMs`. */
function streamForever(res: ServerResponse, chunk: string, everyMs: number): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('{"resource":"');
  const timer = setInterval(() => {
    if (res.destroyed || res.writableEnded) return clearInterval(timer);
    res.write(chunk);
  }, everyMs);
  res.on('close', () => clearInterval(timer));
}

/** What the CLI sent: only the MCP request (no token) and metadata GETs. */
function assertOnlyDiscovery(server: FakeServer, what: string): void {
  for (const r of server.requests) {
    const ok = (r.method === 'POST' && r.path === '/mcp') || (r.method === 'GET' && r.path.includes('/.well-known/'));
    assert.ok(ok, `${what}: unexpected ${r.method} ${r.path}`);
    assert.equal(r.authorization, null, `${what}: no Authorization header may be sent`);
  }
}

async function badInputCall(url: string): Promise<{ code: number | null; error: { code?: string | number; message?: string }; stderr: string; ms: number; launches: number }> {
  const h = await discoveryHome({ MCP_OAUTH_HTTP_TIMEOUT_MS: '2000' });
  const started = Date.now();
  const outcome = await viaCli(url, h, 'x');
  const ms = Date.now() - started;
  await cleanup(h);
  return { code: outcome.error?.exitCode ?? 0, error: outcome.error ?? {}, stderr: outcome.error?.stderr ?? '', ms, launches: outcome.launches };
}

describe('bad input through the CLI', { concurrency: 3 }, () => {
  test('a resource metadata document that streams forever (fast): refused past 1 MiB, exit 5 naming the URL, well within 15 s', async () => {
    const mcp = await fakeMcp((path, res) => (path.startsWith('/.well-known/') ? streamForever(res, 'a'.repeat(64 * 1024), 1) : sendJson(res, 404, {})), '/.well-known/oauth-protected-resource/mcp');
    const r = await badInputCall(`${mcp.origin}/mcp`);
    assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.error.code, 'metadata_invalid');
    assert.ok(r.error.message?.includes(`${mcp.origin}/.well-known/oauth-protected-resource/mcp`), r.error.message);
    assert.equal(r.launches, 0);
    assertOnlyDiscovery(mcp, 'endless fast stream');
  });

  test('a resource metadata document that trickles forever: cut off by the deadline, exit 6 "did not answer in time", within 15 s', async () => {
    const mcp = await fakeMcp((path, res) => (path.startsWith('/.well-known/') ? streamForever(res, 'a', 200) : sendJson(res, 404, {})), '/.well-known/oauth-protected-resource/mcp');
    const r = await badInputCall(`${mcp.origin}/mcp`);
    assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
    assert.equal(r.code, 6, r.stderr);
    assert.equal(r.error.code, 'network_error');
    assert.match(r.error.message ?? '', /did not answer in time/);
    assert.ok(r.error.message?.includes(`${mcp.origin}/.well-known/oauth-protected-resource/mcp`), r.error.message);
    assert.equal(r.launches, 0);
    assertOnlyDiscovery(mcp, 'trickle');
  });

  test('a 200 HTML page at the resource metadata URL: exit 5 "not JSON" naming the URL; nothing else sent', async () => {
    const mcp = await fakeMcp((path, res) => (path.startsWith('/.well-known/oauth-protected-resource') ? sendText(res, 200, '<!DOCTYPE html><html><body>Welcome</body></html>') : sendJson(res, 404, {})), '/.well-known/oauth-protected-resource/mcp');
    const r = await badInputCall(`${mcp.origin}/mcp`);
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.error.code, 'metadata_invalid');
    assert.match(r.error.message ?? '', /not JSON/);
    assert.ok(r.error.message?.includes(`${mcp.origin}/.well-known/oauth-protected-resource/mcp`), r.error.message);
    assert.equal(r.launches, 0);
    assertOnlyDiscovery(mcp, 'HTML PRM');
  });

  test('no resource metadata and a 200 HTML page at the origin\'s RFC 8414 URL: exit 5; the default /authorize, /token, /register are not used', async () => {
    const mcp = await fakeMcp((path, res) => (path === '/.well-known/oauth-authorization-server' ? sendText(res, 200, '<html><body>Sign in to our portal</body></html>') : sendJson(res, 404, { error: 'not_found' })));
    const r = await badInputCall(`${mcp.origin}/mcp`);
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.error.code, 'metadata_invalid');
    assert.ok(r.error.message?.includes(`${mcp.origin}/.well-known/oauth-authorization-server`), r.error.message);
    assert.equal(r.launches, 0);
    assertOnlyDiscovery(mcp, 'HTML AS metadata');
  });

  for (const { listed, declared } of [
    { listed: '/', declared: '/tenant' },
    { listed: '/tenant/', declared: '/tenant' },
  ]) {
    test(`an issuer that differs by more than a trailing "/" on an empty path (listed ...${listed}, declared ...${declared}): exit 5 issuer_mismatch, nothing sent to it`, async () => {
      // The fake authorization server answers every well-known URL with metadata declaring `declared`,
      // and would record any authorization, token or registration request made to it.
      const as = await startFakeServer((req, res) => {
        const o = `http://${req.headers.host}`;
        if (!req.url?.includes('/.well-known/')) return sendJson(res, 400, { error: 'invalid_request' });
        sendJson(res, 200, {
          issuer: `${o}${declared}`, authorization_endpoint: `${o}/authorize`, token_endpoint: `${o}/token`, registration_endpoint: `${o}/register`,
          response_types_supported: ['code'], code_challenge_methods_supported: ['S256'],
        });
      });
      servers.push(as);
      const mcp = await fakeMcp((path, res, origin) => (path === '/.well-known/oauth-protected-resource/mcp'
        ? sendJson(res, 200, { resource: `${origin}/mcp`, authorization_servers: [`${as.origin}${listed}`] })
        : sendJson(res, 404, {})), '/.well-known/oauth-protected-resource/mcp');
      const r = await badInputCall(`${mcp.origin}/mcp`);
      assert.equal(r.code, 5, r.stderr);
      assert.equal(r.error.code, 'issuer_mismatch');
      assert.ok(r.error.message?.includes(`${as.origin}${declared}`), r.error.message);
      assert.equal(r.launches, 0);
      assertOnlyDiscovery(mcp, 'issuer mismatch (MCP server)');
      assertOnlyDiscovery(as, 'issuer mismatch (authorization server)');
      assert.ok(as.requests.length > 0, 'the metadata was fetched');
    });
  }
});
