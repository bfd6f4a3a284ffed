/**
 * Real MCP clients through the gateway: Codex CLI and Claude Code (the versions
 * .ci/install-clients.sh pins), each configured by `mcp-oauth install CLIENT NAME --gateway` (an
 * HTTP entry with the gateway secret in a header), against `mcp-oauth serve` and the sandbox with
 * 4-second access tokens. Both clients run at the same time against the one gateway process; each
 * keeps working across two token expiries, no expired token reaches the MCP server, nobody signs
 * in again, and the clients reach nothing but 127.0.0.1 (see e2e-real-clients.test.ts for how).
 *
 * Skipped when the clients are not installed, except under CI, where that fails.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Sandbox } from '../src/sandbox/index.ts';
import { ok, runCli, writeConfig, type TestHome } from './helpers/e2e.ts';
import { startServe, type RunningServe } from './helpers/gateway.ts';
import { codexAppServerArgs, CodexAppServer, realClients, runClaude, sleep } from './fixtures/real-clients.ts';
import { assertCleanRun, startRealClientWorld, type RealClientWorld } from './fixtures/real-client-world.ts';

const TTL_SECONDS = 4;
const TTL_MS = TTL_SECONDS * 1000;
const NAME = 'sandbox';

const { codexMissing, claudeMissing, missing } = realClients('the real-client gateway tests');

/** A free TCP port: `install --gateway` writes the configured port, so the gateway must listen on it. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('real MCP clients through the gateway', { skip: codexMissing && claudeMissing ? missing : false, timeout: 240_000 }, () => {
  let world: RealClientWorld;
  let sandbox: Sandbox;
  let home: TestHome;
  let serve: RunningServe;
  let egress: RealClientWorld['egress'];
  let messagesApi: RealClientWorld['messagesApi'];
  let clientEnv: NodeJS.ProcessEnv;
  let workDir: string;

  before(async () => {
    world = await startRealClientWorld(TTL_SECONDS);
    ({ sandbox, home, egress, messagesApi, clientEnv, workDir } = world);
    const port = await freePort();
    await writeConfig(home.home, `[gateway]\nport = ${port}\n\n[mcp_servers.${NAME}]\nurl = "${sandbox.mcpUrl}"\n`);
    ok(await runCli(['login', NAME], { env: home.env }), 'login');
    serve = await startServe(home.env, ['--port', String(port)]);
    if (!codexMissing) ok(await runCli(['install', 'codex', NAME, '--gateway'], { env: home.env }), 'install codex --gateway');
    if (!claudeMissing) ok(await runCli(['install', 'claude-code', NAME, '--gateway'], { env: home.env }), 'install claude-code --gateway');
    sandbox.resetCounters();
  });

  after(async () => {
    await serve?.stop();
    await world?.close();
  });

  test('Codex and Claude Code at once, through one gateway, across two token expiries', async (t) => {
    const codexRun = async () => {
      if (codexMissing) return 0;
      const codex = new CodexAppServer({ env: clientEnv, cwd: workDir, args: codexAppServerArgs(egress.url) });
      try {
        await codex.request('initialize', { clientInfo: { name: 'mcp-oauth-e2e', title: null, version: '0.0.0' }, capabilities: { experimentalApi: false, requestAttestation: false } });
        codex.notify('initialized');
        const status = await codex.request('mcpServerStatus/list', { detail: 'full' });
        const entry = status.data.find((s: { name: string }) => s.name === NAME);
        assert.ok(entry, `Codex lists no server ${NAME}`);
        assert.equal(entry.toolsError, null, `${entry.toolsError}\n${codex.stderr()}`);
        const { thread } = await codex.request('thread/start', { ephemeral: true });
        const started = Date.now();
        let calls = 0;
        while (Date.now() - started < 2 * TTL_MS + 1_500) {
          const text = `call ${calls} via Codex and the gateway`;
          const res = await codex.request('mcpServer/tool/call', { threadId: thread.id, server: NAME, tool: 'echo', arguments: { text } });
          assert.notEqual(res.isError, true, `call ${calls}: ${JSON.stringify(res)}\n${codex.stderr()}`);
          assert.deepEqual(res.content, [{ type: 'text', text }]);
          calls += 1;
          await sleep(700);
        }
        return calls;
      } finally {
        await codex.close();
      }
    };
    const claudeRun = async () => {
      if (claudeMissing) return 0;
      const config = JSON.parse(await readFile(join(workDir, '.claude.json'), 'utf8'));
      assert.equal(config.mcpServers?.[NAME]?.type, 'http');
      for (let round = 0; round < 3; round++) {
        if (round) await sleep(TTL_MS + 500);
        const listed = await runClaude(['mcp', 'list'], { env: clientEnv, cwd: workDir });
        assert.match(listed.stdout, new RegExp(`^${NAME}: .*✔ Connected`, 'm'), `round ${round}:\n${listed.stdout}\n${listed.stderr}`);
        const text = `round ${round} via Claude Code and the gateway`;
        messagesApi.callTool(`mcp__${NAME}__echo`, { text });
        const called = await runClaude(['-p', 'Call the echo tool.', '--allowedTools', `mcp__${NAME}__echo`, '--output-format', 'json'], { env: clientEnv, cwd: workDir });
        assert.equal(called.code, 0, `round ${round}: claude -p exited ${called.code}\n${called.stdout}\n${called.stderr}`);
        const result = messagesApi.results[round];
        assert.deepEqual({ isError: result?.isError, echoed: result?.text }, { isError: false, echoed: text }, `round ${round}: the tool result`);
      }
      return 3;
    };
    const [codexCalls, claudeCalls] = await Promise.all([codexRun(), claudeRun()]);
    const c = sandbox.counters;
    t.diagnostic(`Codex ${codexCalls} calls, Claude Code ${claudeCalls} rounds; ${c.tokenRequests.refresh_token ?? 0} refreshes, ${c.mcpRequests} MCP requests`);
    assert.ok((c.tokenRequests.refresh_token ?? 0) >= 2, 'the gateway refreshed the token at least twice');
    assertCleanRun(world, 'Codex and Claude Code through the gateway', () => serve.stderr());
  });
});
