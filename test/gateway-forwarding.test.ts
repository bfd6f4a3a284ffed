// The gateway forwards with the proxy's rules (src/proxy/forwarder.ts): the 2024-11-05 HTTP+SSE
// fallback, and a sign-in that cannot happen answered with an error naming the command to run.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { makeHome, runCli, writeConfig, type TestHome } from './helpers/e2e.ts';
import { endpoint, rawRequest, secretOf, startServe, type RunningServe } from './helpers/gateway.ts';
import { storeFixtureCredential } from './fixtures/proxy-helpers.ts';
import { startLegacyServer, type LegacyServer } from './fixtures/proxy-legacy-server.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function gatewayFor(toml: (home: TestHome) => Promise<string> | string, extraEnv: NodeJS.ProcessEnv = {}, args: string[] = []) {
  const h = await makeHome(extraEnv);
  cleanups.push(() => h.cleanup());
  await writeConfig(h.home, await toml(h));
  const serve: RunningServe = await startServe(h.env, args);
  cleanups.push(() => serve.stop());
  return { h, serve, secret: await secretOf(h.home) };
}

test('a server that only speaks HTTP+SSE (2024-11-05): detected, and answers reach the right client', async () => {
  const TOKEN = 'legacy-access-token-0123456789';
  const legacy: LegacyServer = await startLegacyServer({ token: TOKEN });
  cleanups.push(() => legacy.close());
  const { serve, secret } = await gatewayFor(async (h) => {
    await storeFixtureCredential(h.home, { serverName: 'old', url: legacy.url, accessToken: TOKEN, refreshToken: 'unused-refresh-token' });
    return `[mcp_servers.old]\nurl = "${legacy.url}"\n`;
  });
  const url = endpoint(serve.url, 'old');
  const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const init = await rawRequest(url, {
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } }),
  });
  assert.equal(init.status, 200, init.body);
  assert.equal(JSON.parse(init.body).result.protocolVersion, '2024-11-05');
  const session = String(init.headers["mcp-session-id"]);
  assert.ok(session.length > 10, 'the gateway handed out its own session id');
  const withSession = { ...headers, 'mcp-session-id': session };
  const initialized = await rawRequest(url, { headers: withSession, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  assert.equal(initialized.status, 202);
  const call = await rawRequest(url, { headers: withSession, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'via-gateway' } } }) });
  assert.equal(call.status, 200, call.body);
  assert.deepEqual(JSON.parse(call.body).result.content, [{ type: 'text', text: 'legacy: via-gateway' }]);
  assert.equal(legacy.seen.unauthorized, 0, 'the stored token went on every request');
});

test('nobody can sign in: the held request is answered with an error naming the command, and the gateway keeps serving', async () => {
  let sb: Sandbox | undefined = await startSandbox();
  cleanups.push(() => sb!.close());
  // BROWSER=true: the "browser" starts and does nothing, so the sign-in can only time out.
  const { serve, secret } = await gatewayFor(() => `[mcp_servers.demo]\nurl = "${sb!.mcpUrl}"\n`, { BROWSER: 'true' }, ['--signin-timeout', '2']);
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '0' }, 'io.modelcontextprotocol/clientCapabilities': {} };
  const body = JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list', params: { _meta: meta } });
  const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const started = Date.now();
  const res = await rawRequest(endpoint(serve.url, 'demo'), { headers, body });
  assert.equal(res.status, 200, res.body);
  const answer = JSON.parse(res.body);
  assert.equal(answer.id, 5);
  assert.equal(answer.error?.code, -32001, res.body);
  assert.match(answer.error.message, /mcp-oauth login demo/);
  assert.ok(Date.now() - started >= 1500, 'the request was held for the sign-in');
  // Within the retry window the next request fails at once instead of opening another tab.
  const again = await rawRequest(endpoint(serve.url, 'demo'), { headers, body });
  assert.equal(JSON.parse(again.body).error?.code, -32001);
  const health = await rawRequest(`${serve.url}/.well-known/mcp-oauth-gateway`, { method: 'GET' });
  assert.equal(health.status, 200);
});

test('`token --gateway` prints the secret the gateway checks, for clients install does not know', async () => {
  const { h, serve, secret } = await gatewayFor(() => '');
  const printed = await runCli(['token', '--gateway'], { env: h.env });
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(printed.stdout.trim(), secret);
  assert.equal(printed.stderr, '');
  const listed = await rawRequest(`${serve.url}/servers`, { method: 'GET', headers: { authorization: `Bearer ${printed.stdout.trim()}` } });
  assert.equal(listed.status, 200);
});
