/**
 * Real MCP clients through the proxy: Codex CLI and Claude Code, at the versions
 * .ci/install-clients.sh pins, each configured by `mcp-oauth install`, against the sandbox with
 * 4-second access tokens. Neither needs a model or an account:
 * - Codex: `codex app-server` (JSON-RPC on stdio) lists a server's tools (`mcpServerStatus/list`)
 *   and calls one directly (`mcpServer/tool/call` in an ephemeral thread);
 * - Claude Code: `claude mcp list` health-checks every server (initialize + tools/list), and
 *   `claude -p` calls a tool when its model asks for one: the model is a scripted Messages API on
 *   127.0.0.1 (fixtures/fake-messages-api.ts), the tool call is real.
 * Each client keeps working across two token expiries, and no expired token ever reaches the MCP
 * server (the sandbox answers 401 to one and counts it).
 *
 * The clients reach nothing but 127.0.0.1: their own traffic is switched off, and a recording proxy
 * on 127.0.0.1 refuses (and names) any call that still goes out.
 *
 * Skipped when the clients are not installed (`.ci/install-clients.sh`), except under CI, where
 * that fails so the coverage cannot silently go.
 */
import { test, describe, before, beforeEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sandbox } from '../src/sandbox/index.ts';
import { ok, runCli, type TestHome } from './helpers/e2e.ts';
import { codexAppServerArgs, CodexAppServer, realClients, runClaude, sleep } from './fixtures/real-clients.ts';
import { assertCleanRun, startRealClientWorld, type RealClientWorld } from './fixtures/real-client-world.ts';

const TTL_SECONDS = 4;
const TTL_MS = TTL_SECONDS * 1000;
const NAME = 'sandbox';

const { codexMissing, claudeMissing, missing } = realClients('the real-client e2e tests');

describe('real MCP clients through the proxy', { skip: codexMissing && claudeMissing ? missing : false, timeout: 180_000, concurrency: 1 }, () => {
  let world: RealClientWorld;
  let sandbox: Sandbox;
  let home: TestHome;
  let egress: RealClientWorld['egress'];
  let messagesApi: RealClientWorld['messagesApi'];
  let clientEnv: NodeJS.ProcessEnv;
  let workDir: string;

  const refreshes = () => sandbox.counters.tokenRequests.refresh_token ?? 0;
  const assertClean = (what: string, stderr: () => string) => assertCleanRun(world, what, stderr);

  beforeEach(() => {
    egress.attempts.length = 0;
  });

  before(async () => {
    world = await startRealClientWorld(TTL_SECONDS);
    ({ sandbox, home, egress, messagesApi, clientEnv, workDir } = world);
    ok(await runCli(['add', NAME, sandbox.mcpUrl], { env: home.env }), 'add');
    ok(await runCli(['login', NAME], { env: home.env }), 'login');
  });

  after(() => world?.close());

  test('Codex: `codex app-server` lists and calls the sandbox tools across two token expiries', { skip: codexMissing }, async (t) => {
    ok(await runCli(['install', 'codex', NAME], { env: home.env }), 'install codex');
    sandbox.resetCounters();
    const codex = new CodexAppServer({ env: clientEnv, cwd: workDir, args: codexAppServerArgs(egress.url) });
    try {
      await codex.request('initialize', {
        clientInfo: { name: 'mcp-oauth-e2e', title: null, version: '0.0.0' },
        capabilities: { experimentalApi: false, requestAttestation: false },
      });
      codex.notify('initialized');

      const listTools = async (when: string) => {
        const status = await codex.request('mcpServerStatus/list', { detail: 'full' });
        const entry = status.data.find((s: { name: string }) => s.name === NAME);
        assert.ok(entry, `${when}: Codex lists no server ${NAME}: ${JSON.stringify(status.data.map((s: { name: string }) => s.name))}`);
        assert.equal(entry.toolsError, null, `${when}: ${entry.toolsError}\n${codex.stderr()}`);
        const tools = Object.values(entry.tools as Record<string, { name: string }>).map((tool) => tool.name);
        assert.ok(tools.includes('echo') && tools.includes('whoami'), `${when}: tools ${JSON.stringify(tools)}`);
        return tools;
      };
      t.diagnostic(`tools: ${(await listTools('at start')).join(', ')}`);

      const { thread } = await codex.request('thread/start', { ephemeral: true });
      const started = Date.now();
      const refreshesBefore = refreshes();
      let calls = 0;
      // Calls every 700 ms for two token lifetimes and a bit: the proxy must replace the token twice.
      while (Date.now() - started < 2 * TTL_MS + 1_500) {
        const text = `call ${calls} via Codex`;
        const res = await codex.request('mcpServer/tool/call', { threadId: thread.id, server: NAME, tool: 'echo', arguments: { text } });
        assert.notEqual(res.isError, true, `call ${calls}: ${JSON.stringify(res)}`);
        assert.deepEqual(res.content, [{ type: 'text', text }], `call ${calls}`);
        calls += 1;
        await sleep(700);
      }
      await listTools('after two expiries');
      const refreshed = refreshes() - refreshesBefore;
      t.diagnostic(`${calls} calls over ${Date.now() - started} ms, ${refreshed} refreshes, ${sandbox.counters.mcpRequests} MCP requests`);
      assert.ok(refreshed >= 2, `the token was refreshed ${refreshed} time(s) during the calls, expected at least 2`);
      assert.deepEqual(codex.serverRequests, [], 'Codex asked nothing of its client (no approval, no elicitation)');
      assertClean('Codex', () => codex.stderr());
    } finally {
      await codex.close();
    }
  });

  test('Claude Code: `claude mcp list` shows the sandbox connected and `claude -p` calls echo, again after each of two token expiries', { skip: claudeMissing }, async (t) => {
    const installed = ok(await runCli(['install', 'claude-code', NAME], { env: home.env }), 'install claude-code');
    const config = JSON.parse(await readFile(join(workDir, '.claude.json'), 'utf8'));
    assert.equal(config.mcpServers?.[NAME]?.type, 'stdio', installed.stdout);
    sandbox.resetCounters();
    const refreshesBefore = refreshes();
    const outputs: string[] = [];
    for (let round = 0; round < 3; round++) {
      // Rounds 1 and 2 start after the previous token expired: each needs a refresh first.
      if (round) await sleep(TTL_MS + 500);
      const listed = await runClaude(['mcp', 'list'], { env: clientEnv, cwd: workDir });
      outputs.push(listed.stdout + listed.stderr);
      assert.equal(listed.code, 0, `round ${round}: claude mcp list exited ${listed.code}\n${listed.stdout}\n${listed.stderr}`);
      assert.match(listed.stdout, new RegExp(`^${NAME}: .*✔ Connected`, 'm'), `round ${round}:\n${listed.stdout}\n${listed.stderr}`);

      // A real tool call: the scripted model (fake-messages-api.ts) asks for echo, Claude Code
      // calls it through the proxy and sends the result back.
      const text = `round ${round} via Claude Code`;
      messagesApi.callTool(`mcp__${NAME}__echo`, { text });
      const called = await runClaude(['-p', 'Call the echo tool.', '--allowedTools', `mcp__${NAME}__echo`, '--output-format', 'json'], { env: clientEnv, cwd: workDir });
      outputs.push(called.stdout + called.stderr);
      assert.equal(called.code, 0, `round ${round}: claude -p exited ${called.code}\n${called.stdout}\n${called.stderr}`);
      const why = `\n${called.stdout}\n${called.stderr}\nmodel API requests: ${messagesApi.requests.join(', ')}`;
      assert.equal(messagesApi.results.length, round + 1, `round ${round}: Claude Code sent back no tool result${why}`);
      const { isError, text: echoed } = messagesApi.results[round];
      assert.deepEqual({ isError, echoed }, { isError: false, echoed: text }, `round ${round}: the tool result${why}`);
    }
    const rpc = (method: string) => sandbox.counters.mcpLog.filter((e) => e.rpcMethods.includes(method)).length;
    assert.equal(rpc('tools/call'), 3, 'each call reached the MCP server once');
    assert.ok(rpc('tools/list') >= 6, `Claude Code listed the tools in each health check and each session (${rpc('tools/list')} tools/list)`);
    const refreshed = refreshes() - refreshesBefore;
    t.diagnostic(`${refreshed} refreshes over 3 rounds, ${sandbox.counters.mcpRequests} MCP requests`);
    assert.ok(refreshed >= 2, `the token was refreshed ${refreshed} time(s), expected at least 2`);
    assertClean('Claude Code', () => outputs.join('\n---\n'));
  });
});
