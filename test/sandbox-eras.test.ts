// The sandbox MCP server in each protocol mode (src/sandbox/eras.ts), driven with plain fetch:
// 'dual' serves 2026-07-28 requests and 2025-11-25 sessions side by side; '2026-07-28' is a strict
// modern-only server (SEP-2243 headers enforced: 400 -32020; initialize → 400 -32022; GET → 405);
// '2025-11-25' answers a modern request like a 2025 server. The OAuth check stands in front of
// every era, and the counters record what the server saw (headers, era, the tool reached).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox } from '../src/sandbox/index.ts';
import type { Sandbox, SandboxOptions } from '../src/sandbox/index.ts';
import { INVALID_HEADER_TOOL_NAMES, TOOL_NAMES } from '../src/sandbox/tool-catalog.ts';
import { endpointsFrom, obtainToken } from './fixtures/sandbox-oauth-client.ts';
import { spawn } from 'node:child_process';
import { cliPath, makeHome, runCli } from './helpers/e2e.ts';

const MODERN = '2026-07-28';
const CLIENT_INFO = { name: 'sandbox-eras-test', version: '0' };

function meta(capabilities: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': MODERN,
    'io.modelcontextprotocol/clientInfo': CLIENT_INFO,
    'io.modelcontextprotocol/clientCapabilities': capabilities,
  };
}

let nextId = 1;
/** A 2026-07-28 request body (per-request `_meta`). */
function modern(method: string, params: Record<string, unknown> = {}, capabilities?: Record<string, unknown>) {
  return { jsonrpc: '2.0', id: nextId++, method, params: { ...params, _meta: meta(capabilities) } };
}

/** The SEP-2243 headers a conforming client sends for `body` (no Mcp-Param-*: pass those in `extra`). */
function headersFor(body: { method: string; params?: Record<string, unknown> }, extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { 'mcp-protocol-version': MODERN, 'mcp-method': body.method };
  if (typeof body.params?.name === 'string') headers['mcp-name'] = body.params.name;
  return { ...headers, ...extra };
}

interface Answer {
  status: number;
  headers: Headers;
  json: any;
}

async function post(sb: Sandbox, body: unknown, headers: Record<string, string>, token?: string): Promise<Answer> {
  const res = await fetch(sb.mcpUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  // An SSE answer (2025 sessions): the last `data:` line is the response.
  const data = res.headers.get('content-type')?.startsWith('text/event-stream') ? text.split('\n').filter((l) => l.startsWith('data: ')).at(-1)?.slice(6) : text;
  return { status: res.status, headers: res.headers, json: data ? JSON.parse(data) : undefined };
}

async function withSandbox(opts: SandboxOptions, fn: (sb: Sandbox, token: string) => Promise<void>): Promise<void> {
  const sb = await startSandbox(opts);
  try {
    const endpoints = await endpointsFrom(`${sb.issuer}/.well-known/oauth-authorization-server`);
    const { accessToken } = await obtainToken(endpoints, { resource: sb.resource, scope: 'mcp:tools' });
    await fn(sb, accessToken);
  } finally {
    await sb.close();
  }
}

const lastEntry = (sb: Sandbox) => sb.counters.mcpLog.at(-1)!;

function assertHeaderMismatch(a: Answer, what: string): void {
  assert.equal(a.status, 400, `${what}: HTTP 400`);
  assert.equal(a.json?.error?.code, -32020, `${what}: -32020 HeaderMismatch: ${JSON.stringify(a.json)}`);
}

/** The correct 2026-07-28 exchange every modern-serving mode must accept. */
async function modernRoundTrip(sb: Sandbox, token: string): Promise<void> {
  const discover = modern('server/discover');
  const d = await post(sb, discover, headersFor(discover), token);
  assert.equal(d.status, 200, JSON.stringify(d.json));
  assert.ok(d.json.result.supportedVersions.includes(MODERN));
  assert.equal(d.headers.get('mcp-session-id'), null, 'no session in the stateless era');

  const list = modern('tools/list');
  const l = await post(sb, list, headersFor(list), token);
  assert.equal(l.status, 200);
  const tools = l.json.result.tools as Array<{ name: string; inputSchema: any }>;
  assert.deepEqual(tools.map((t) => t.name).sort(), [...TOOL_NAMES, ...INVALID_HEADER_TOOL_NAMES].sort(), 'the invalid-annotation tools too');
  const route = tools.find((t) => t.name === 'route')!.inputSchema.properties;
  assert.deepEqual(
    [route.region['x-mcp-header'], route.priority['x-mcp-header'], route.dryRun['x-mcp-header'], route.target.properties.tenant['x-mcp-header']],
    ['Region', 'Priority', 'Dry-Run', 'Tenant'],
  );

  const call = modern('tools/call', { name: 'echo', arguments: { text: 'hi' } });
  const c = await post(sb, call, headersFor(call), token);
  assert.equal(c.status, 200);
  assert.equal(c.json.result.content[0].text, 'hi');
  assert.deepEqual(lastEntry(sb).mcpHeaders, { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'echo' });
  assert.equal(lastEntry(sb).era, 'modern');
  assert.equal(lastEntry(sb).reachedTool, 'echo');

  // The bearer token reaches the tool as authInfo in this era too.
  const whoami = modern('tools/call', { name: 'whoami', arguments: {} });
  const w = await post(sb, whoami, headersFor(whoami), token);
  assert.equal(JSON.parse(w.json.result.content[0].text).scope, 'mcp:tools');
}

async function legacyInitialize(sb: Sandbox, token: string): Promise<Answer> {
  return post(sb, {
    jsonrpc: '2.0', id: nextId++, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: CLIENT_INFO },
  }, {}, token);
}

test('dual (default): 2026-07-28 requests and 2025-11-25 sessions on one endpoint, OAuth in front of both', async () => {
  await withSandbox({}, async (sb, token) => {
    assert.equal(sb.protocol, 'dual');
    const noToken = modern('server/discover');
    const denied = await post(sb, noToken, headersFor(noToken));
    assert.equal(denied.status, 401, 'a modern request without a token is challenged like any other');
    assert.match(denied.headers.get('www-authenticate') ?? '', /resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp"/);

    await modernRoundTrip(sb, token);

    const init = await legacyInitialize(sb, token);
    assert.equal(init.status, 200, JSON.stringify(init.json));
    assert.equal(init.json.result.protocolVersion, '2025-11-25');
    const session = init.headers.get('mcp-session-id');
    assert.ok(session, 'the 2025 era gets a session');
    assert.equal(lastEntry(sb).era, 'legacy');
    const sessionHeaders = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
    await post(sb, { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionHeaders, token);
    const legacyList = await post(sb, { jsonrpc: '2.0', id: nextId++, method: 'tools/list' }, sessionHeaders, token);
    assert.deepEqual(legacyList.json.result.tools.map((t: { name: string }) => t.name).sort(), [...TOOL_NAMES].sort(), 'no invalid-annotation tools for 2025 by default');
    const call = await post(sb, { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'route', arguments: { region: 'eu' } } }, sessionHeaders, token);
    assert.equal(JSON.parse(call.json.result.content[0].text).region, 'eu', 'the same tools in the 2025 era');
    assert.equal(lastEntry(sb).reachedTool, 'route');
    assert.equal(lastEntry(sb).era, 'legacy');
    // notifyToolsChanged() reaches the 2025 session's GET stream too.
    const getStream = await fetch(sb.mcpUrl, { headers: { ...sessionHeaders, accept: 'text/event-stream', authorization: `Bearer ${token}` } });
    assert.equal(getStream.status, 200);
    const changed = readUntil(getStream, (m) => m.method === 'notifications/tools/list_changed');
    await new Promise((r) => setTimeout(r, 100));
    sb.notifyToolsChanged();
    assert.equal((await changed).at(-1)?.method, 'notifications/tools/list_changed');

    // A modern request is checked as strictly in dual mode (the SDK's validation, either mode).
    const bare = modern('tools/list');
    assertHeaderMismatch(await post(sb, bare, {}, token), 'dual, modern request without headers');
  });
});

test('2026-07-28 strict: a missing or mismatched SEP-2243 header is 400 -32020, and the tool is never reached', async () => {
  await withSandbox({ protocol: MODERN }, async (sb, token) => {
    await modernRoundTrip(sb, token);
    const args = { region: 'eu-west', priority: 7, dryRun: false, target: { tenant: 'Zürich' } };
    const good = { 'mcp-param-region': 'eu-west', 'mcp-param-priority': '7', 'mcp-param-dry-run': 'false', 'mcp-param-tenant': `=?base64?${Buffer.from('Zürich').toString('base64')}?=` };
    const call = modern('tools/call', { name: 'route', arguments: args });
    const ok = await post(sb, call, headersFor(call, good), token);
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.deepEqual(JSON.parse(ok.json.result.content[0].text), args);
    assert.deepEqual(lastEntry(sb).mcpHeaders, { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'route', ...good }, 'recorded as received');

    const { 'mcp-param-priority': _omit, ...withoutPriority } = good;
    const cases: Array<[string, Record<string, string | undefined>]> = [
      ['no MCP-Protocol-Version', { 'mcp-protocol-version': undefined }],
      ['MCP-Protocol-Version other than the body', { 'mcp-protocol-version': '2025-11-25' }],
      ['no Mcp-Method', { 'mcp-method': undefined }],
      ['Mcp-Method other than the body', { 'mcp-method': 'tools/list' }],
      ['no Mcp-Name', { 'mcp-name': undefined }],
      ['Mcp-Name other than the body', { 'mcp-name': 'echo' }],
      ['a bad Base64 Mcp-Name', { 'mcp-name': '=?base64?not base64?=' }],
      ['no Mcp-Param-Priority', { ...withoutPriority, 'mcp-param-priority': undefined }],
      ['Mcp-Param-Region other than the body', { 'mcp-param-region': 'us-east' }],
      ['Mcp-Param-Dry-Run other than the body', { 'mcp-param-dry-run': 'true' }],
      ['Mcp-Param-Tenant not Base64-decoded to the body', { 'mcp-param-tenant': 'Zurich' }],
    ];
    const callsBefore = sb.counters.toolCalls.route;
    for (const [what, change] of cases) {
      const body = modern('tools/call', { name: 'route', arguments: args });
      const headers = Object.fromEntries(Object.entries({ ...headersFor(body, good), ...change }).filter((e): e is [string, string] => e[1] !== undefined));
      assertHeaderMismatch(await post(sb, body, headers, token), what);
      assert.equal(lastEntry(sb).reachedTool, undefined, `${what}: the tool is not reached`);
    }
    assert.equal(sb.counters.toolCalls.route, callsBefore, 'no rejected call ran the tool');

    // Null and absent values need no header (SEP-2243 § Server Behavior for Custom Headers).
    const sparse = modern('tools/call', { name: 'route', arguments: { region: 'x', target: {} } });
    assert.equal((await post(sb, sparse, headersFor(sparse, { 'mcp-param-region': 'x' }), token)).status, 200);
  });
});

test('2026-07-28 strict: initialize is 400 -32022 naming the supported versions; GET and DELETE are 405', async () => {
  await withSandbox({ protocol: MODERN }, async (sb, token) => {
    const init = await legacyInitialize(sb, token);
    assert.equal(init.status, 400);
    assert.equal(init.json.error.code, -32022);
    assert.deepEqual(init.json.error.data, { supported: [MODERN], requested: '2025-11-25' });
    assert.equal(init.headers.get('mcp-session-id'), null);
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(sb.mcpUrl, { method, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-session-id': 'x' } });
      await res.body?.cancel();
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get('allow'), 'POST');
    }
    // The OAuth check still comes first.
    const res = await fetch(sb.mcpUrl, { method: 'GET' });
    await res.body?.cancel();
    assert.equal(res.status, 401);
  });
});

test('2025-11-25 only: sessions as before; a 2026-07-28 request gets what a 2025 server answers', async () => {
  await withSandbox({ protocol: '2025-11-25' }, async (sb, token) => {
    const discover = modern('server/discover');
    const d = await post(sb, discover, headersFor(discover), token);
    assert.equal(d.status, 400);
    assert.equal(d.json.error.code, -32000, 'the SDK 1.x "no valid session ID" answer');
    assert.equal(lastEntry(sb).era, 'legacy');
    const init = await legacyInitialize(sb, token);
    assert.equal(init.status, 200);
    assert.ok(init.headers.get('mcp-session-id'));
  });
});

test('MRTR: ask returns input_required with an elicitation, and the retry carrying inputResponses completes', async () => {
  await withSandbox({ protocol: MODERN }, async (sb, token) => {
    const capabilities = { elicitation: { form: {} } };
    const first = modern('tools/call', { name: 'ask', arguments: { question: 'Colour?' } }, capabilities);
    const a = await post(sb, first, headersFor(first), token);
    assert.equal(a.status, 200);
    assert.equal(a.json.result.resultType, 'input_required');
    const request = a.json.result.inputRequests.answer;
    assert.equal(request.method, 'elicitation/create');
    assert.equal(request.params.message, 'Colour?');
    const retry = modern('tools/call', {
      name: 'ask', arguments: { question: 'Colour?' },
      inputResponses: { answer: { action: 'accept', content: { answer: 'blue' } } }, requestState: a.json.result.requestState,
    }, capabilities);
    assert.notEqual(retry.id, first.id);
    const b = await post(sb, retry, headersFor(retry), token);
    assert.equal(b.json.result.resultType, 'complete');
    assert.deepEqual(JSON.parse(b.json.result.content[0].text), { action: 'accept', content: { answer: 'blue' } });
    assert.equal(sb.counters.toolCalls.ask, 2);
  });
});

/** Reads SSE messages from a streaming response until `until` matches one (or the deadline). */
async function readUntil(res: Response, until: (m: any) => boolean, ms = 10_000): Promise<any[]> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const seen: any[] = [];
  let buffer = '';
  const deadline = setTimeout(() => void reader.cancel(), ms);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return seen;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer.slice(0, end).split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        buffer = buffer.slice(end + 2);
        if (!data) continue;
        seen.push(JSON.parse(data));
        if (until(seen.at(-1))) return seen;
      }
    }
  } finally {
    clearTimeout(deadline);
    await reader.cancel().catch(() => {});
  }
}

test('subscriptions/listen gets notifications/tools/list_changed from the notify tool and from sandbox.notifyToolsChanged()', async () => {
  await withSandbox({ protocol: MODERN }, async (sb, token) => {
    const listen = modern('subscriptions/listen', { notifications: { toolsListChanged: true } });
    const stream = await fetch(sb.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, ...headersFor(listen) },
      body: JSON.stringify(listen),
    });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
    const acked = readUntil(stream, (m) => m.method === 'notifications/tools/list_changed');
    // Let the acknowledgement go out first, then change the tools twice.
    await new Promise((r) => setTimeout(r, 100));
    const notify = modern('tools/call', { name: 'notify', arguments: {} });
    assert.equal((await post(sb, notify, headersFor(notify), token)).status, 200);
    const seen = await acked;
    assert.equal(seen[0].method, 'notifications/subscriptions/acknowledged');
    assert.equal(seen.at(-1).method, 'notifications/tools/list_changed');

    const again = modern('subscriptions/listen', { notifications: { toolsListChanged: true } });
    const second = await fetch(sb.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, ...headersFor(again) },
      body: JSON.stringify(again),
    });
    const changed = readUntil(second, (m) => m.method === 'notifications/tools/list_changed');
    await new Promise((r) => setTimeout(r, 100));
    sb.notifyToolsChanged();
    assert.equal((await changed).at(-1).method, 'notifications/tools/list_changed');
  });
});

test('invalid x-mcp-header tools are listed and served (a conforming client must drop them); the counters show a call', async () => {
  await withSandbox({ protocol: MODERN }, async (sb, token) => {
    const list = modern('tools/list');
    const tools = (await post(sb, list, headersFor(list), token)).json.result.tools as Array<{ name: string }>;
    for (const name of INVALID_HEADER_TOOL_NAMES) assert.ok(tools.some((t) => t.name === name), `${name} listed`);
    assert.equal(sb.counters.toolCalls.bad_number_header, undefined, 'never called yet');
    const call = modern('tools/call', { name: 'bad_number_header', arguments: { amount: 1.5 } });
    const a = await post(sb, call, headersFor(call, { 'mcp-param-amount': '1.5' }), token);
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.equal(sb.counters.toolCalls.bad_number_header, 1);
    assert.equal(lastEntry(sb).reachedTool, 'bad_number_header');
  });
});

test('invalidHeaderToolsInLegacyEra: 2025-11-25 sessions list the invalid-annotation tools too, and calls to them are counted', async () => {
  const sb = await startSandbox({ protocol: '2025-11-25', discovery: 'no-oauth', invalidHeaderToolsInLegacyEra: true });
  try {
    const init = await post(sb, {
      jsonrpc: '2.0', id: nextId++, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: CLIENT_INFO },
    }, {});
    const session = { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-11-25' };
    const list = await post(sb, { jsonrpc: '2.0', id: nextId++, method: 'tools/list' }, session);
    assert.deepEqual(list.json.result.tools.map((t: { name: string }) => t.name).sort(), [...TOOL_NAMES, ...INVALID_HEADER_TOOL_NAMES].sort());
    await post(sb, { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'bad_empty_header', arguments: { text: 'x' } } }, session);
    assert.equal(sb.counters.toolCalls.bad_empty_header, 1);
    assert.equal(lastEntry(sb).reachedTool, 'bad_empty_header');
  } finally {
    await sb.close();
  }
});

test('per-tool discovery in front of the 2026-07-28 era: tools/list public, tools/call challenged with the tool\'s metadata URL', async () => {
  const sb = await startSandbox({ protocol: MODERN, discovery: 'per-tool' });
  try {
    const list = modern('tools/list');
    assert.equal((await post(sb, list, headersFor(list))).status, 200);
    const call = modern('tools/call', { name: 'route', arguments: { region: 'x' } });
    const denied = await post(sb, call, headersFor(call, { 'mcp-param-region': 'x' }));
    assert.equal(denied.status, 401);
    assert.match(denied.headers.get('www-authenticate') ?? '', /oauth-protected-resource\/route"/);
    assert.equal(sb.counters.toolCalls.route, undefined);
  } finally {
    await sb.close();
  }
});

test('mcp-oauth sandbox --protocol 2026-07-28: the strict server runs; "notify" on stdin reaches a listener; a bad value is a usage error', async () => {
  const h = await makeHome(process.env.MCP_OAUTH_SOURCE ? { MCP_OAUTH_SOURCE: process.env.MCP_OAUTH_SOURCE } : {});
  try {
    const bad = await runCli(['sandbox', '--protocol', '2024-11-05'], { env: h.env });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--protocol takes one of dual, 2026-07-28, 2025-11-25/);

    const child = spawn(process.execPath, [cliPath, 'sandbox', '--protocol', MODERN, '--discovery', 'no-oauth', '--json'], { env: h.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    try {
      const started = await new Promise<Record<string, string>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`sandbox did not start: ${out} ${err}`)), 30_000);
        child.stdout.on('data', () => {
          try {
            resolve(JSON.parse(out));
            clearTimeout(timer);
          } catch {
            // not complete yet
          }
        });
      });
      assert.equal(started.protocol, MODERN);
      const init = await fetch(started.mcp_url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: CLIENT_INFO } }),
      });
      assert.equal(init.status, 400);
      assert.equal(((await init.json()) as any).error.code, -32022);

      const list = modern('tools/list');
      const listed = await fetch(started.mcp_url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headersFor(list) },
        body: JSON.stringify(list),
      });
      assert.ok(((await listed.json()) as any).result.tools.some((t: { name: string }) => t.name === 'bad_empty_header'));

      const listen = modern('subscriptions/listen', { notifications: { toolsListChanged: true } });
      const stream = await fetch(started.mcp_url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headersFor(listen) },
        body: JSON.stringify(listen),
      });
      const changed = readUntil(stream, (m) => m.method === 'notifications/tools/list_changed');
      await new Promise((r) => setTimeout(r, 200));
      child.stdin.write('notify\n');
      assert.equal((await changed).at(-1)?.method, 'notifications/tools/list_changed');
      assert.doesNotMatch(err, /\[mcp-sdk\]/, 'the invalid-annotation tools are not warned about on stderr');
    } finally {
      child.kill('SIGINT');
      await new Promise((resolve) => child.on('close', resolve));
    }
  } finally {
    await h.cleanup();
  }
});
