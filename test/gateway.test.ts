// `mcp-oauth serve`: one local Streamable HTTP gateway for every configured server, against the
// real sandbox (oidc-provider + the SDK's MCP server) and real SDK v2 clients over HTTP.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { fingerprint } from '../src/secrets.ts';
import { browserLaunches, makeHome, ok, runCli, writeConfig, type TestHome } from './helpers/e2e.ts';
import { endpoint, gatewayClient, gatewayOnSandbox, rawRequest, secretOf, startServe, type GatewayOnSandbox, type RunningServe } from './helpers/gateway.ts';

/** A complete 2026-07-28 request: everything the server needs is in its own `_meta`. */
const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '0' }, 'io.modelcontextprotocol/clientCapabilities': {} };
const ECHO = (id: number, text: string) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text }, _meta: META } });
const text = (r: { content?: unknown }) => JSON.stringify(r.content);

describe('one gateway, several clients, one sign-in', () => {
  let sb: Sandbox;
  let h: TestHome;
  let serve: RunningServe;
  let secret: string;
  let fixture: GatewayOnSandbox;
  before(async () => {
    // The headless browser takes a second: every client's first request is held meanwhile.
    fixture = await gatewayOnSandbox({ sandbox: { protocol: 'dual' }, env: { BROWSER_DELAY_MS: '1000' } });
    ({ sb, h, serve, secret } = fixture);
  });
  after(() => fixture?.close());

  it('three clients at once with nobody signed in: one browser tab, all three get their tools, in both eras', async () => {
    const url = endpoint(serve.url, 'demo');
    const modes = ['auto', 'auto', 'legacy'] as const;
    const clients = await Promise.all(modes.map((mode, i) => gatewayClient(url, secret, mode, `client-${i}`)));
    try {
      assert.deepEqual(clients.map((c) => c.client.getNegotiatedProtocolVersion()), ['2026-07-28', '2026-07-28', '2025-11-25']);
      const answers = await Promise.all(clients.map((c, i) => c.client.callTool({ name: 'echo', arguments: { text: `hello ${i}` } })));
      answers.forEach((a, i) => assert.match(text(a), new RegExp(`hello ${i}`)));
      // Server requests reach the right client: elicitation (2025 session stream) and MRTR (2026).
      for (const c of clients) assert.match(text(await c.client.callTool({ name: 'ask', arguments: {} })), /green/);
      assert.equal(await browserLaunches(h.browserLog), 1, 'one browser tab for every waiting client');
      assert.equal(sb.counters.tokenRequests.authorization_code, 1, 'one sign-in at the authorization server');
    } finally {
      await Promise.all(clients.map((c) => c.client.close()));
    }
  });

  it('the same request id from two clients at once: each gets its own answer', async () => {
    const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const url = endpoint(serve.url, 'demo');
    const body = (t: string) => ECHO(7, t);
    const [a, b] = await Promise.all([rawRequest(url, { headers, body: body('from A') }), rawRequest(url, { headers, body: body('from B') })]);
    assert.equal(a.status, 200, a.body);
    assert.match(a.body, /from A/);
    assert.doesNotMatch(a.body, /from B/);
    assert.match(b.body, /from B/);
    assert.doesNotMatch(b.body, /from A/);
  });

  it('2026-07-28 headers that contradict the body: 400 HeaderMismatch, nothing forwarded; matching ones pass', async () => {
    const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const from = sb.counters.mcpLog.length;
    const wrong = await rawRequest(endpoint(serve.url, 'demo'), { headers: { ...headers, 'mcp-method': 'tools/list' }, body: ECHO(8, 'x') });
    assert.equal(wrong.status, 400);
    assert.equal(JSON.parse(wrong.body).error.code, -32020);
    assert.equal(sb.counters.mcpLog.length, from);
    const right = await rawRequest(endpoint(serve.url, 'demo'), { headers: { ...headers, 'mcp-method': 'tools/call', 'mcp-name': 'echo', 'mcp-protocol-version': '2026-07-28' }, body: ECHO(9, 'y') });
    assert.equal(right.status, 200, right.body);
  });

  it('a 2025 session: an unknown session id is 404, DELETE ends the upstream session, GET without one is 405', async () => {
    const url = endpoint(serve.url, 'demo');
    const auth = { authorization: `Bearer ${secret}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const unknown = await rawRequest(url, { headers: { ...auth, 'mcp-session-id': 'no-such-session' }, body: ECHO(1, 'x') });
    assert.equal(unknown.status, 404);
    assert.equal((await rawRequest(url, { method: 'GET', headers: auth })).status, 405);
    const { client, transport } = await gatewayClient(url, secret, 'legacy');
    const from = sb.counters.mcpLog.length;
    assert.ok(transport.sessionId, 'the gateway handed out a session id');
    await transport.terminateSession();
    await client.close();
    const after = await rawRequest(url, { headers: { ...auth, 'mcp-session-id': transport.sessionId ?? 'gone' }, body: ECHO(2, 'x') });
    assert.equal(after.status, 404, 'the ended session is gone');
    assert.ok(sb.counters.mcpLog.slice(from).some((e) => e.method === 'DELETE'), 'the upstream session was ended too');
  });

  it('an unknown server is a 404 naming what is served; the health check answers without the secret', async () => {
    const res = await rawRequest(endpoint(serve.url, 'nope'), { headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: ECHO(1, 'x') });
    assert.equal(res.status, 404);
    assert.match(res.body, /servers\/demo\/mcp/);
    const health = await rawRequest(`${serve.url}/.well-known/mcp-oauth-gateway`, { method: 'GET' });
    assert.equal(health.status, 200);
    assert.equal(JSON.parse(health.body).pid, serve.pid);
  });
});

describe('the gateway secret, Host and Origin', () => {
  let sb: Sandbox;
  let h: TestHome;
  let serve: RunningServe;
  let secret: string;
  let fixture: GatewayOnSandbox;
  before(async () => {
    fixture = await gatewayOnSandbox({ login: true });
    ({ sb, h, serve, secret } = fixture);
  });
  after(() => fixture?.close());

  const post = (headers: Record<string, string>) =>
    rawRequest(endpoint(serve.url, 'demo'), { headers: { 'content-type': 'application/json', accept: 'application/json', ...headers }, body: ECHO(1, 'secret?') });

  it('no secret or a wrong one: 401 naming the fix, and nothing reaches the server', async () => {
    const from = sb.counters.mcpLog.length;
    const missing = await post({});
    assert.equal(missing.status, 401);
    assert.match(missing.body, /mcp-oauth install CLIENT NAME --gateway/);
    const wrong = await post({ authorization: `Bearer ${secret.slice(0, -2)}xx` });
    assert.equal(wrong.status, 401);
    const empty = await post({ authorization: 'Bearer ' });
    assert.equal(empty.status, 401);
    assert.equal(sb.counters.mcpLog.length, from, 'no request was forwarded, so no token was sent anywhere');
    const right = await post({ authorization: `Bearer ${secret}` });
    assert.equal(right.status, 200, right.body);
    assert.match(right.body, /secret\?/);
    // The client's Authorization never travels on: the server sees the OAuth token only.
    for (const e of sb.counters.mcpLog.slice(from)) assert.notEqual(e.tokenFingerprint, fingerprint(secret));
    assert.ok(!serve.stderr().includes(secret), 'the secret is not in the gateway log');
  });

  it('a Host or Origin that is not local is refused (DNS rebinding); local ones pass', async () => {
    const from = sb.counters.mcpLog.length;
    const auth = { authorization: `Bearer ${secret}` };
    const port = new URL(serve.url).port;
    assert.equal((await post({ ...auth, host: `evil.example:${port}` })).status, 403);
    assert.equal((await post({ ...auth, host: `127.0.0.1:1` })).status, 403, 'another port is another server');
    assert.equal((await post({ ...auth, origin: 'http://evil.example' })).status, 403);
    assert.equal((await post({ ...auth, origin: 'null' })).status, 403);
    assert.equal(sb.counters.mcpLog.length, from, 'nothing refused was forwarded');
    const viaLocalhost = await post({ ...auth, host: `localhost:${port}` });
    assert.equal(viaLocalhost.status, 200, viaLocalhost.body);
    assert.equal((await post({ ...auth, origin: `http://localhost:${port}` })).status, 200);
  });

  it('SIGTERM: the state file is removed and the gateway stops', async () => {
    const state = join(h.home, 'gateway.json');
    await access(state);
    assert.equal(await serve.stop(), 0);
    await assert.rejects(access(state));
  });
});

describe('servers of one era each, and a token that expires', () => {
  let modern: Sandbox;
  let legacy: Sandbox;
  let h: TestHome;
  let serve: RunningServe;
  let secret: string;
  before(async () => {
    modern = await startSandbox({ protocol: '2026-07-28', accessTokenTtlSeconds: 4 });
    legacy = await startSandbox({ protocol: '2025-11-25' });
    h = await makeHome();
    await writeConfig(h.home, `[mcp_servers.modern]\nurl = "${modern.mcpUrl}"\n\n[mcp_servers.legacy]\nurl = "${legacy.mcpUrl}"\n`);
    ok(await runCli(['login', 'modern'], { env: h.env }), 'login modern');
    ok(await runCli(['login', 'legacy'], { env: h.env }), 'login legacy');
    serve = await startServe(h.env);
    secret = await secretOf(h.home);
  });
  after(async () => {
    await serve?.stop();
    await h?.cleanup();
    await Promise.all([modern?.close(), legacy?.close()]);
  });

  it('a client negotiates each server\'s own era through the gateway', async () => {
    const a = await gatewayClient(endpoint(serve.url, 'modern'), secret, 'auto');
    const b = await gatewayClient(endpoint(serve.url, 'legacy'), secret, 'auto');
    try {
      assert.equal(a.client.getNegotiatedProtocolVersion(), '2026-07-28');
      assert.equal(b.client.getNegotiatedProtocolVersion(), '2025-11-25', 'fell back from server/discover to initialize');
      assert.match(text(await a.client.callTool({ name: 'route', arguments: { region: 'eu-west', priority: 1 } })), /eu-west/);
      assert.ok(modern.counters.mcpLog.some((e) => e.reachedTool === 'route' && e.mcpHeaders['mcp-param-region'] === 'eu-west'), 'SEP-2243 headers reached the server');
      assert.match(text(await b.client.callTool({ name: 'echo', arguments: { text: 'old' } })), /old/);
    } finally {
      await a.client.close();
      await b.client.close();
    }
  });

  it('three clients calling across two token expiries: no failure, one refresh per expiry', async () => {
    const clients = await Promise.all([0, 1, 2].map(() => gatewayClient(endpoint(serve.url, 'modern'), secret, 'auto')));
    const refreshesBefore = modern.counters.tokenRequests.refresh_token ?? 0;
    const started = Date.now();
    let calls = 0;
    try {
      await Promise.all(
        clients.map(async ({ client }, i) => {
          while (Date.now() - started < 9_500) {
            const r = await client.callTool({ name: 'echo', arguments: { text: `c${i}` } });
            assert.match(text(r), new RegExp(`c${i}`));
            calls++;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.client.close()));
    }
    const refreshes = (modern.counters.tokenRequests.refresh_token ?? 0) - refreshesBefore;
    const expiries = Math.floor((Date.now() - started) / 4000);
    assert.ok(calls > 30, `calls made: ${calls}`);
    assert.ok(refreshes >= expiries - 1 && refreshes <= expiries + 2, `refreshes ${refreshes} for ${expiries} expiries (one credential shared by every client)`);
    // (The one 401 without a token is `login`'s probe, which is how discovery starts.)
    assert.ok(!modern.counters.mcpLog.some((e) => e.status === 401 && e.authorization), 'no request reached the server with an expired token');
  });
});
