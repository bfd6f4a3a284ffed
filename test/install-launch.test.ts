/**
 * An installed entry, started the way Codex starts stdio servers (only its short list of inherited
 * variables, plus the entry's `env` and the variables its `env_vars` names:
 * codex-rs/rmcp-client/src/utils.rs), finds the sign-in that `mcp-oauth login` made in this shell.
 * Here the shell picks the file store with MCP_OAUTH_STORE while config.toml says "keychain": the
 * proxy only finds the credential if install carried MCP_OAUTH_STORE into the entry.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { browserLaunches, makeHome, ok, runCli, writeConfig, type TestHome } from './helpers/e2e.ts';
import { toml } from './helpers/install.ts';
import { proxyLogs } from './fixtures/proxy-helpers.ts';

/** What Codex passes to a stdio server from its own environment on Unix (DEFAULT_ENV_VARS). */
const CODEX_INHERITED = ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'USER', '__CF_USER_TEXT_ENCODING', 'LANG', 'LC_ALL', 'TERM', 'TMPDIR', 'TZ'];

function codexLaunchEnv(parent: NodeJS.ProcessEnv, entry: { env?: Record<string, string>; env_vars?: string[] }): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...CODEX_INHERITED, ...(entry.env_vars ?? [])]) {
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...(entry.env ?? {}) };
}

let sandbox: Sandbox;
let home: TestHome;

before(async () => {
  sandbox = await startSandbox();
  home = await makeHome();
  await writeConfig(home.home, `[settings]\nstore = "keychain"\n\n[mcp_servers.demo]\nurl = "${sandbox.mcpUrl}"\n`);
  ok(await runCli(['login', 'demo'], { env: home.env }), 'login');
});

after(async () => {
  await sandbox?.close();
  await home?.cleanup();
});

it('codex: the entry, started with Codex\'s filtered environment, uses the store login wrote to (MCP_OAUTH_STORE carried)', async () => {
  ok(await runCli(['install', 'codex', 'demo'], { env: home.env }), 'install');
  const entry = toml(await readFile(join(home.env.CODEX_HOME!, 'config.toml'), 'utf8')).mcp_servers.demo;
  assert.equal(entry.env.MCP_OAUTH_STORE, 'file');
  const launches = await browserLaunches(home.browserLog);
  const transport = new StdioClientTransport({ command: entry.command, args: entry.args, env: codexLaunchEnv(home.env, entry), stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const client = new Client({ name: 'codex-like', version: '0' });
  try {
    await client.connect(transport, { timeout: 30_000 });
    const { tools } = await client.listTools(undefined, { timeout: 30_000 });
    assert.ok(tools.some((t) => t.name === 'echo'), stderr);
    const res = await client.callTool({ name: 'echo', arguments: { text: 'same store' } }, undefined, { timeout: 30_000 });
    assert.deepEqual(res.content, [{ type: 'text', text: 'same store' }], stderr);
  } finally {
    await client.close();
  }
  // No new sign-in: the credential from `login` was found.
  assert.equal(await browserLaunches(home.browserLog), launches);
  assert.equal(sandbox.counters.tokenRequests.authorization_code, 1);
  // The proxy's log went to the home the entry names.
  assert.match((await proxyLogs(home.home)).text, /proxy started/);
});
