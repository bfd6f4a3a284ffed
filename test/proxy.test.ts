// `mcp-oauth proxy` end to end against the sandbox: an SDK 1.x client over stdio, every kind of
// message both ways, a dropped server session, and a stdout that carries nothing but JSON-RPC.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { makeHome, runCli, readStore, type TestHome } from './helpers/e2e.ts';
import { initializeRequest, proxyLogs, rawProxy, sdkClient } from './fixtures/proxy-helpers.ts';

let sandbox: Sandbox;
let home: TestHome;

before(async () => {
  sandbox = await startSandbox();
  home = await makeHome();
  const login = await runCli(['login', sandbox.mcpUrl], { env: home.env });
  assert.equal(login.code, 0, login.stderr);
});

after(async () => {
  await sandbox?.close();
  await home?.cleanup();
});

test('an SDK client reaches the remote server through the proxy: tools, elicitation, progress, cancellation, lost session', async () => {
  const { client, transport, stderr } = await sdkClient([sandbox.mcpUrl, '--debug'], home.env, { elicitation: {} });
  const questions: string[] = [];
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    questions.push(req.params.message);
    return { action: 'accept', content: { answer: 'blue' } };
  });
  try {
    await client.connect(transport);
    const tools = await client.listTools();
    assert.ok(tools.tools.some((t) => t.name === 'echo'), 'tools/list came through');
    // Fields no schema of ours knows survive (the bridge forwards JSON untouched).
    assert.ok(tools.tools.find((t) => t.name === 'echo')?.inputSchema.$schema, 'unknown fields kept');

    const echo = await client.callTool({ name: 'echo', arguments: { text: 'hello through the proxy' } });
    assert.deepEqual(echo.content, [{ type: 'text', text: 'hello through the proxy' }]);

    // Server → client request (elicitation/create) on the POST's SSE stream, and the client's answer back.
    const ask = await client.callTool({ name: 'ask', arguments: { question: 'colour?' } });
    assert.deepEqual(questions, ['colour?']);
    assert.match((ask.content as Array<{ text: string }>)[0].text, /"blue"/);

    // Progress notifications, in order.
    const progress: number[] = [];
    const slow = await client.callTool({ name: 'slow', arguments: { ms: 300 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
    assert.deepEqual((slow.content as Array<{ text: string }>)[0].text, 'slept 300 ms');
    // The SDK client handles notifications a tick later than responses, so the last one may lose
    // the race against the result; the raw test below checks all ten, in order, on stdout.
    assert.ok(progress.length >= 8, `progress came through: ${progress}`);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'in order');

    // Cancellation: the client aborts; notifications/cancelled must reach the server (202).
    const abort = new AbortController();
    const cancelled = client.callTool({ name: 'slow', arguments: { ms: 5000 } }, undefined, {
      signal: abort.signal,
      onprogress: () => abort.abort('enough'),
    });
    await assert.rejects(cancelled);
    await waitForLog(home.home, /delivered \{"method":"notifications\/cancelled"/);

    // The server forgets every session: the proxy re-initializes and the next call works.
    const before = sandbox.counters.mcpRequests;
    await sandbox.dropSessions();
    const again = await client.callTool({ name: 'echo', arguments: { text: 'after the drop' } });
    assert.deepEqual(again.content, [{ type: 'text', text: 'after the drop' }]);
    assert.ok(sandbox.counters.mcpRequests - before >= 4, 'a 404, initialize, initialized, then the call again');
    await waitForLog(home.home, /forgot the session; initializing a new one/);
    const tools2 = await client.listTools();
    assert.ok(tools2.tools.length > 0);
  } finally {
    await client.close();
  }
  assert.doesNotMatch(stderr(), /^\S+ (warn|error) /m, 'no warning or error logged');
});

test('stdout carries only JSON-RPC; the log file exists and holds no secret', async () => {
  const proxy = rawProxy([sandbox.mcpUrl, '--debug'], home.env);
  proxy.send(initializeRequest(1));
  const init = await proxy.waitFor((m) => m.id === 1);
  assert.ok(init.result.protocolVersion);
  proxy.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  proxy.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'slow', arguments: { ms: 100 }, _meta: { progressToken: 'p' } } });
  proxy.send({ jsonrpc: '2.0', id: 'three', method: 'tools/list', params: {} });
  // A line that is not JSON gets a JSON-RPC parse error, not a crash.
  proxy.child.stdin.write('this is not json\n');
  await proxy.waitFor((m) => m.id === 2);
  await proxy.waitFor((m) => m.id === 'three');
  await proxy.waitFor((m) => m.error?.code === -32700);
  assert.equal(await proxy.stop(), 0);

  const messages = proxy.lines.map((l) => JSON.parse(l));
  const progress = messages.filter((m) => m.method === 'notifications/progress' && m.params.progressToken === 'p');
  assert.deepEqual(progress.map((m) => m.params.progress), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'every progress notification, in order');
  assert.ok(messages.indexOf(progress[9]) < messages.findIndex((m) => m.id === 2), 'progress before the result');

  assert.ok(proxy.lines.length >= 14, 'initialize, 10 progress, 2 results, parse error');
  for (const line of proxy.lines) {
    const m = JSON.parse(line);
    assert.equal(m.jsonrpc, '2.0', `not JSON-RPC on stdout: ${line}`);
  }
  const logs = await proxyLogs(home.home);
  assert.equal(logs.files.length, 1, 'one log file under HOME/logs');
  assert.match(logs.text, /proxy started/);
  const { credentials } = await readStore(home.home);
  for (const c of Object.values(credentials)) {
    for (const secret of [c.accessToken, c.refreshToken].filter(Boolean)) {
      assert.ok(!logs.text.includes(secret), 'a token appeared in the proxy log');
      assert.ok(!proxy.stderr().includes(secret), 'a token appeared on stderr');
    }
  }
});

async function waitForLog(homeDir: string, pattern: RegExp, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { text } = await proxyLogs(homeDir);
    if (pattern.test(text)) return;
    if (Date.now() > deadline) assert.fail(`log never matched ${pattern}:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
