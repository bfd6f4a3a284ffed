/**
 * The proxy across both protocol eras (issue "Speak MCP 2026-07-28 on the wire"): against the
 * sandbox's strict 2026-07-28 server every POST carries the SEP-2243 headers that match its body;
 * tools with invalid x-mcp-header annotations disappear and are never called; server JSON-RPC
 * errors reach the stdio client byte for byte; MRTR and subscriptions/listen pass through; a
 * 2025-era client and a 2026-era client both work against the dual-era server.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { cliPath, makeHome, ok, onlyCredential, runCli, type TestHome } from './helpers/e2e.ts';
import { rawProxy, type RawProxy } from './fixtures/proxy-helpers.ts';
import { decodeHeaderValue } from '../src/mcp/request-metadata.ts';

const MODERN = '2026-07-28';
const meta = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '0' }, 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } };
const modern = (id: number, method: string, params: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method, params: { ...params, _meta: meta } });

async function signedInHome(sb: Sandbox): Promise<TestHome> {
  const h = await makeHome();
  ok(await runCli(['login', sb.mcpUrl], { env: h.env }), 'login');
  return h;
}

/** Every request the MCP server saw after `from`, with a token (the sign-in is done). */
function seenSince(sb: Sandbox, from: number) {
  return sb.counters.mcpLog.slice(from).filter((e) => e.authorization);
}

describe('strict 2026-07-28 server', () => {
  let sb: Sandbox;
  let h: TestHome;
  let proxy: RawProxy;
  before(async () => {
    sb = await startSandbox({ protocol: MODERN });
    h = await signedInHome(sb);
    proxy = rawProxy([sb.mcpUrl], h.env);
  });
  after(async () => {
    await proxy.stop();
    await h.cleanup();
    await sb.close();
  });

  it('every POST carries MCP-Protocol-Version, Mcp-Method and Mcp-Name matching its body; no session, no GET', async () => {
    const from = sb.counters.mcpLog.length;
    proxy.send(modern(1, 'server/discover'));
    const discover = await proxy.waitFor((m) => m.id === 1);
    assert.ok(discover.result, JSON.stringify(discover));
    proxy.send(modern(2, 'tools/call', { name: 'echo', arguments: { text: 'héllo' } }));
    const echo = await proxy.waitFor((m) => m.id === 2);
    assert.equal(echo.result?.content?.[0]?.text, 'héllo', JSON.stringify(echo));
    const seen = seenSince(sb, from);
    assert.ok(seen.length >= 2);
    for (const e of seen) {
      assert.equal(e.mcpHeaders['mcp-protocol-version'], MODERN, JSON.stringify(e));
      assert.equal(e.mcpHeaders['mcp-method'], e.rpcMethods[0]);
      assert.equal(e.status < 400, true, `${e.rpcMethods[0]} answered ${e.status}`);
    }
    const call = seen.find((e) => e.rpcMethods[0] === 'tools/call' && e.reachedTool === 'echo')!;
    assert.equal(call.mcpHeaders['mcp-name'], 'echo');
    assert.ok(!sb.counters.mcpLog.slice(from).some((e) => e.method === 'GET' || e.method === 'DELETE'), 'no GET stream, no DELETE');
  });

  it('Mcp-Param-* mirror the x-mcp-header parameters: non-ASCII, spaces, control characters, integers, booleans; null omitted', async () => {
    // The third call is refused by the tool's own validation (priority is not nullable): the
    // headers are checked on what the server received all the same.
    const cases: Array<{ args: Record<string, unknown>; expect: Record<string, string | undefined> }> = [
      { args: { region: 'eu-west', priority: 7, dryRun: true, target: { tenant: 'acme' } }, expect: { region: 'eu-west', priority: '7', 'dry-run': 'true', tenant: 'acme' } },
      { args: { region: 'Zürich 東京', priority: -3, dryRun: false }, expect: { region: 'Zürich 東京', priority: '-3', 'dry-run': 'false', tenant: undefined } },
      { args: { region: ' padded ', priority: null, target: { tenant: 'a\tb\nc' } }, expect: { region: ' padded ', priority: undefined, 'dry-run': undefined, tenant: 'a\tb\nc' } },
    ];
    let id = 100;
    for (const c of cases) {
      const from = sb.counters.mcpLog.length;
      proxy.send(modern(++id, 'tools/call', { name: 'route', arguments: c.args }));
      const answer = await proxy.waitFor((m) => m.id === id);
      assert.ok(answer.result, JSON.stringify(answer));
      const e = seenSince(sb, from).find((x) => x.rpcMethods[0] === 'tools/call' && x.mcpHeaders['mcp-name'] === 'route')!;
      assert.ok(e, 'the server got the call');
      assert.ok(e.status < 400, `HTTP ${e.status}: the server accepted the headers`);
      for (const [name, value] of Object.entries(c.expect)) {
        const raw = e.mcpHeaders[`mcp-param-${name}`];
        assert.equal(raw === undefined ? undefined : decodeHeaderValue(raw), value, `Mcp-Param-${name} for ${JSON.stringify(c.args)}`);
      }
      // Values that are not plain header text travel Base64-encoded, never raw.
      for (const raw of Object.values(e.mcpHeaders)) assert.match(raw, /^[\x20-\x7e]*$/);
    }
  });

  it('tools with invalid x-mcp-header annotations are removed from tools/list and never called', async () => {
    const from = sb.counters.mcpLog.length;
    proxy.send(modern(200, 'tools/list'));
    const list = await proxy.waitFor((m) => m.id === 200);
    const names: string[] = list.result.tools.map((t: { name: string }) => t.name);
    assert.ok(names.includes('route') && names.includes('echo'));
    for (const bad of ['bad_empty_header', 'bad_number_header', 'bad_object_header', 'bad_duplicate_header', 'bad_chars_header', 'bad_array_header']) {
      assert.ok(!names.includes(bad), `${bad} was listed`);
    }
    proxy.send(modern(201, 'tools/call', { name: 'bad_number_header', arguments: { amount: 1.5 } }));
    const refused = await proxy.waitFor((m) => m.id === 201);
    assert.equal(refused.error?.code, -32602);
    assert.match(refused.error.message, /x-mcp-header/);
    assert.equal(sb.counters.toolCalls.bad_number_header ?? 0, 0);
    assert.ok(!sb.counters.mcpLog.slice(from).some((e) => e.reachedTool?.startsWith('bad_')));
    assert.match(proxy.stderr(), /removed a tool with invalid x-mcp-header annotations/);
  });

  it('a JSON-RPC error in an HTTP 400 reaches the client byte for byte (-32022 with the supported versions)', async () => {
    const initialize = { jsonrpc: '2.0', id: 300, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'old', version: '0' } } };
    const credential = await onlyCredential(h.home);
    const direct = await fetch(sb.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${credential.accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify(initialize),
    });
    const expected = (await direct.text()).trim();
    assert.equal(direct.status, 400);
    assert.equal(JSON.parse(expected).error.code, -32022);
    const before = proxy.lines.length;
    proxy.send(initialize);
    await proxy.waitFor((m) => m.id === 300);
    const line = proxy.lines.slice(before).find((l) => l.includes('"id":300'));
    assert.equal(line, expected);
  });

  it('an MRTR tool call completes after the client answers the input_required result', async () => {
    proxy.send(modern(400, 'tools/call', { name: 'ask', arguments: { question: 'Colour?' } }));
    const first = await proxy.waitFor((m) => m.id === 400);
    assert.equal(first.result?.resultType, 'input_required', JSON.stringify(first));
    const [key, request] = Object.entries(first.result.inputRequests as Record<string, { method: string }>)[0];
    assert.equal(request.method, 'elicitation/create');
    proxy.send(modern(401, 'tools/call', {
      name: 'ask',
      arguments: { question: 'Colour?' },
      inputResponses: { [key]: { action: 'accept', content: { answer: 'teal' } } },
      ...(first.result.requestState ? { requestState: first.result.requestState } : {}),
    }));
    const done = await proxy.waitFor((m) => m.id === 401);
    assert.match(JSON.stringify(done.result), /teal/);
  });
});

describe('mixed eras against the dual-era server', () => {
  let sb: Sandbox;
  let h: TestHome;
  before(async () => {
    sb = await startSandbox({ protocol: 'dual' });
    h = await signedInHome(sb);
  });
  after(async () => {
    await h.cleanup();
    await sb.close();
  });

  async function sdkClient(mode: 'legacy' | 'auto') {
    const transport = new StdioClientTransport({ command: process.execPath, args: [cliPath, 'proxy', sb.mcpUrl], env: h.env as Record<string, string>, stderr: 'pipe' });
    const client = new Client({ name: `era-${mode}`, version: '1.0.0' }, { capabilities: { elicitation: {} }, versionNegotiation: { mode } });
    client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { answer: 'green' } }));
    await client.connect(transport);
    return client;
  }

  it('an old-era stdio client: initialize, a session, tools and elicitation', async () => {
    const from = sb.counters.mcpLog.length;
    const client = await sdkClient('legacy');
    try {
      assert.equal(client.getNegotiatedProtocolVersion(), '2025-11-25');
      const { content } = await client.callTool({ name: 'ask', arguments: {} });
      assert.match(JSON.stringify(content), /green/);
      assert.ok(sb.counters.mcpLog.slice(from).some((e) => e.era === 'legacy'));
    } finally {
      await client.close();
    }
  });

  it('a new-era stdio client: server/discover, the stateless era, headers, MRTR and a subscriptions/listen notification', async () => {
    const from = sb.counters.mcpLog.length;
    const client = await sdkClient('auto');
    try {
      assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
      const { content } = await client.callTool({ name: 'route', arguments: { region: 'us-east', priority: 2 } });
      assert.match(JSON.stringify(content), /us-east/);
      const asked = await client.callTool({ name: 'ask', arguments: {} });
      assert.match(JSON.stringify(asked.content), /green/, 'the SDK answered the input_required round trip');
      let changed!: () => void;
      const notified = new Promise<void>((resolve) => (changed = resolve));
      client.setNotificationHandler('notifications/tools/list_changed', () => changed());
      const subscription = await client.listen({ toolsListChanged: true } as never);
      sb.notifyToolsChanged();
      await Promise.race([notified, new Promise((_, reject) => setTimeout(() => reject(new Error('no list_changed on the listen stream')), 10_000))]);
      await subscription.close();
      const seen = seenSince(sb, from).filter((e) => e.era === 'modern');
      assert.ok(seen.length > 0);
      for (const e of seen) assert.equal(e.mcpHeaders['mcp-protocol-version'], MODERN);
      assert.ok(seen.some((e) => e.reachedTool === 'route' && e.mcpHeaders['mcp-param-region'] === 'us-east'));
    } finally {
      await client.close();
    }
  });
});

describe('a 2025-11-25-only server: the proxy behaves as before', () => {
  it('initialize and a session, the GET stream, 404 → re-initialize, DELETE on exit', async () => {
    const sb = await startSandbox({ protocol: '2025-11-25' });
    const h = await signedInHome(sb);
    try {
      const from = sb.counters.mcpLog.length;
      const transport = new StdioClientTransport({ command: process.execPath, args: [cliPath, 'proxy', sb.mcpUrl], env: h.env as Record<string, string>, stderr: 'pipe' });
      const client = new Client({ name: 'old', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
      await client.connect(transport);
      assert.equal(client.getNegotiatedProtocolVersion(), '2025-11-25', 'the SDK fell back from server/discover to initialize');
      assert.match(JSON.stringify((await client.callTool({ name: 'echo', arguments: { text: 'one' } })).content), /one/);
      await sb.dropSessions();
      assert.match(JSON.stringify((await client.callTool({ name: 'echo', arguments: { text: 'two' } })).content), /two/);
      await client.close();
      await new Promise((r) => setTimeout(r, 500));
      const log = sb.counters.mcpLog.slice(from).filter((e) => e.authorization);
      assert.ok(log.filter((e) => e.rpcMethods.includes('initialize')).length >= 2, 'initialized again after the session was dropped');
      assert.ok(log.some((e) => e.method === 'GET'), 'the GET stream was opened');
      assert.ok(log.some((e) => e.method === 'DELETE'), 'the session was ended');
      // Only the SDK's era probe (server/discover, refused by this server) is a 2026-07-28 request.
      assert.ok(!log.some((e) => e.mcpHeaders['mcp-method'] && e.rpcMethods[0] !== 'server/discover'), 'no SEP-2243 headers in the 2025 era');
    } finally {
      await h.cleanup();
      await sb.close();
    }
  });
});
