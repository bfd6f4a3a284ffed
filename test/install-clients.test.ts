/**
 * `mcp-oauth install` through the real CLI, for what came with the real-client work (issue 7):
 * --print predicts install's refusals (same exit code, same error), and the Claude Code target
 * edits ~/.claude.json (Claude Code's state file too) leaving everything else as it was.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { toml } from './helpers/install.ts';
import { runCli } from './helpers/e2e.ts';
import { CLI_SCRIPT_PATH } from '../src/install/install.ts';
import { assertProxyEntry, backupsOf, CASES, pathOf, sandbox } from './fixtures/install-cases.ts';

describe('install: --print predicts, and the Claude Code target', { concurrency: 3 }, () => {
  it('codex --print predicts the refusals of install: same exit code and error, nothing written', async () => {
    const sb = await sandbox();
    const file = pathOf('codex', sb);
    await mkdir(dirname(file), { recursive: true });
    // "notion" exists only as Codex's own url entry; "demo" is ours AND has a Codex url entry.
    const before = '[mcp_servers.notion]\nurl = "https://mcp.notion.example/mcp"\n\n[mcp_servers.demo]\nurl = "https://mcp.example.com/mcp"\n';
    await writeFile(file, before);
    for (const args of [['notion'], ['notion', '--force'], ['demo']]) {
      const real = await runCli(['install', 'codex', ...args], { env: sb.env });
      const printed = await runCli(['install', 'codex', ...args, '--print'], { env: sb.env });
      assert.equal(real.code, 2, real.stderr);
      assert.equal(printed.code, real.code, `--print ${args.join(' ')}: ${printed.stderr}`);
      assert.equal(printed.stderr, real.stderr);
      assert.equal(printed.stdout, '');
    }
    assert.equal(await readFile(file, 'utf8'), before);
    // --print --force shows the entry that would replace Codex's "demo", and says so.
    const p = await runCli(['install', 'codex', 'demo', '--print', '--force'], { env: sb.env });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stderr, /would replace the existing entry/);
    assertProxyEntry(CASES[0], toml(p.stdout), 'demo', 'demo', sb.mcpHome);
    const j = JSON.parse((await runCli(['install', 'codex', 'demo', '--print', '--force', '--json'], { env: sb.env })).stdout);
    assert.equal(j.would_be, 'replaced');
    assert.equal(j.written, false);
    assert.equal(await readFile(file, 'utf8'), before);
    assert.deepEqual(await backupsOf(file), []);
    // And install --force then does exactly that.
    const real = await runCli(['install', 'codex', 'demo', '--force'], { env: sb.env });
    assert.equal(real.code, 0, real.stderr);
    assert.equal(toml(await readFile(file, 'utf8')).mcp_servers.demo.command, process.execPath);
  });

  it("claude-code: ~/.claude.json (Claude Code's state file) keeps every other key byte for byte; CLAUDE_CONFIG_DIR moves it", async () => {
    const sb = await sandbox();
    const file = join(sb.dir, '.claude.json');
    const before = JSON.stringify({
      numStartups: 12,
      projects: { '/work/app': { mcpServers: { local: { type: 'stdio', command: 'x', args: [] } }, allowedTools: [] } },
      mcpServers: { github: { type: 'http', url: 'https://api.githubcopilot.com/mcp/' } },
      oauthAccount: { emailAddress: 'me@example.com' },
    }, null, 2) + '\n';
    await writeFile(file, before, { mode: 0o600 });
    const r = await runCli(['install', 'claude-code', 'demo'], { env: sb.env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(file), r.stdout);
    assert.match(r.stdout, /Claude Code/);
    const after = await readFile(file, 'utf8');
    const doc = JSON.parse(after);
    assertProxyEntry(CASES[4], doc, 'demo', 'demo', sb.mcpHome);
    assert.deepEqual(Object.keys(doc.mcpServers), ['github', 'demo']);
    // Only an insertion after the last user-scope server: the rest of the file is untouched.
    const cut = before.indexOf('}\n  },\n  "oauthAccount"') + 1;
    assert.ok(after.startsWith(before.slice(0, cut)) && after.endsWith(before.slice(cut)), after);
    const backups = await backupsOf(file);
    assert.equal(backups.length, 1);
    assert.equal(await readFile(join(sb.dir, backups[0]), 'utf8'), before);
    if (process.platform !== 'win32') assert.equal((await stat(file)).mode & 0o777, 0o600);

    // Claude Code's own remote entry of that name: exit 2 (named as such), --print the same, --force replaces.
    await writeFile(join(sb.mcpHome, 'config.toml'), '[mcp_servers.demo]\nurl = "https://mcp.example.com/mcp"\n[mcp_servers.github]\nurl = "https://api.githubcopilot.com/mcp/"\n');
    const refused = await runCli(['install', 'claude-code', 'github'], { env: sb.env });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /Claude Code's own remote entry, url = https:\/\/api\.githubcopilot\.com\/mcp\//);
    assert.equal((await runCli(['install', 'claude-code', 'github', '--print'], { env: sb.env })).code, 2);
    assert.equal(await readFile(file, 'utf8'), after);
    const forced = await runCli(['install', 'claude-code', 'github', '--force', '--json'], { env: sb.env });
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(JSON.parse(forced.stdout).status, 'replaced');
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')).mcpServers.github.args, [CLI_SCRIPT_PATH, 'proxy', 'github']);

    // CLAUDE_CONFIG_DIR: Claude Code reads $CLAUDE_CONFIG_DIR/.claude.json instead.
    const dir = join(sb.dir, 'claude-config');
    const moved = await runCli(['install', 'claude-code', 'demo', '--json'], { env: { ...sb.env, CLAUDE_CONFIG_DIR: dir } });
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal(JSON.parse(moved.stdout).file, join(dir, '.claude.json'));
    assertProxyEntry(CASES[4], JSON.parse(await readFile(join(dir, '.claude.json'), 'utf8')), 'demo', 'demo', sb.mcpHome);
  });

  it('"claude" alone is ambiguous: exit 2 naming both clients, nothing written', async () => {
    const sb = await sandbox();
    const r = await runCli(['install', 'claude', 'demo'], { env: sb.env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /claude-code/);
    assert.match(r.stderr, /claude-desktop/);
    await assert.rejects(stat(pathOf('claude-code', sb)), { code: 'ENOENT' });
    await assert.rejects(stat(pathOf('claude-desktop', sb)), { code: 'ENOENT' });
  });
});
