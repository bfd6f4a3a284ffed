// The pure parts of `mcp-oauth install`: per-platform paths, the JSON/JSONC and TOML text edits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLI_SCRIPT_PATH, clientConfigPath, proxyLaunch, type PlatformInfo } from '../src/install/install.ts';
import { launchWarnings } from '../src/install/launch.ts';
import type { ServerConfig } from '../src/types.ts';
import { applyCodexEntry, headerPath } from '../src/install/codex.ts';
import { applyJsonEntry, lineColumn } from '../src/install/json-config.ts';
import { jsonc, rejectsWith, toml } from './helpers/install.ts';
import { cliPath } from './helpers/e2e.ts';

describe('install: pure parts', () => {
  const info = (platform: NodeJS.Platform, env: NodeJS.ProcessEnv): PlatformInfo => ({ platform, env, homedir: '/fallback' });

  it('per-platform config paths', () => {
    const linux = info('linux', { HOME: '/home/u' });
    assert.equal(clientConfigPath('claude-desktop', linux), '/home/u/.config/Claude/claude_desktop_config.json');
    assert.equal(clientConfigPath('vscode', linux), '/home/u/.config/Code/User/mcp.json');
    assert.equal(clientConfigPath('cursor', linux), '/home/u/.cursor/mcp.json');
    assert.equal(clientConfigPath('codex', linux), '/home/u/.codex/config.toml');
    assert.equal(clientConfigPath('claude-code', linux), '/home/u/.claude.json');
    // Claude Code keeps .claude.json inside $CLAUDE_CONFIG_DIR when that is set.
    assert.equal(clientConfigPath('claude-code', info('linux', { HOME: '/home/u', CLAUDE_CONFIG_DIR: '/cc' })), '/cc/.claude.json');
    const xdg = info('linux', { HOME: '/home/u', XDG_CONFIG_HOME: '/xdg', CODEX_HOME: '/cx' });
    assert.equal(clientConfigPath('claude-desktop', xdg), '/xdg/Claude/claude_desktop_config.json');
    assert.equal(clientConfigPath('vscode', xdg), '/xdg/Code/User/mcp.json');
    assert.equal(clientConfigPath('codex', xdg), '/cx/config.toml');
    // XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored.
    assert.equal(clientConfigPath('vscode', info('linux', { HOME: '/home/u', XDG_CONFIG_HOME: 'rel' })), '/home/u/.config/Code/User/mcp.json');
    assert.equal(clientConfigPath('cursor', info('linux', {})), '/fallback/.cursor/mcp.json');

    const mac = info('darwin', { HOME: '/Users/u', XDG_CONFIG_HOME: '/xdg' });
    assert.equal(clientConfigPath('claude-desktop', mac), '/Users/u/Library/Application Support/Claude/claude_desktop_config.json');
    assert.equal(clientConfigPath('vscode', mac), '/Users/u/Library/Application Support/Code/User/mcp.json');
    assert.equal(clientConfigPath('cursor', mac), '/Users/u/.cursor/mcp.json');

    const win = info('win32', { USERPROFILE: 'C:\\Users\\u', APPDATA: 'C:\\Users\\u\\AppData\\Roaming' });
    assert.equal(clientConfigPath('claude-desktop', win), 'C:\\Users\\u\\AppData\\Roaming\\Claude\\claude_desktop_config.json');
    assert.equal(clientConfigPath('vscode', win), 'C:\\Users\\u\\AppData\\Roaming\\Code\\User\\mcp.json');
    assert.equal(clientConfigPath('cursor', win), 'C:\\Users\\u\\.cursor\\mcp.json');
    assert.equal(clientConfigPath('codex', win), 'C:\\Users\\u\\.codex\\config.toml');
    assert.equal(clientConfigPath('claude-code', win), 'C:\\Users\\u\\.claude.json');
    assert.equal(clientConfigPath('claude-code', mac), '/Users/u/.claude.json');
    assert.equal(clientConfigPath('vscode', info('win32', { USERPROFILE: 'C:\\Users\\v' })), 'C:\\Users\\v\\AppData\\Roaming\\Code\\User\\mcp.json');
  });

  const entry = { command: '/n', args: ['/c.js', 'proxy', 'demo'] };
  const jsonEdit = (existing: string, force = false) =>
    applyJsonEntry({ existing, file: '/cfg/mcp.json', containerKey: 'servers', entryName: 'demo', entry, force, clientTitle: 'VS Code' });

  it('JSON edit: tabs, CRLF and a BOM are kept; a comment after the last member stays on its line', () => {
    const tabs = jsonEdit('\uFEFF{\r\n\t"servers": {\r\n\t\t"a": 1 // note\r\n\t}\r\n}\r\n');
    assert.equal(
      tabs.text,
      '\uFEFF{\r\n\t"servers": {\r\n\t\t"a": 1, // note\r\n\t\t"demo": {\r\n\t\t\t"command": "/n",\r\n\t\t\t"args": [\r\n\t\t\t\t"/c.js",\r\n\t\t\t\t"proxy",\r\n\t\t\t\t"demo"\r\n\t\t\t]\r\n\t\t}\r\n\t}\r\n}\r\n',
    );
    assert.equal(tabs.status, 'created');
  });

  it('JSON edit: a missing, empty, null or commented-out-only container gets the entry; nothing else moves', () => {
    const four = '{\n    "other": true\n}\n';
    assert.equal(jsonEdit(four).text, '{\n    "other": true,\n    "servers": {\n        "demo": {\n            "command": "/n",\n            "args": [\n                "/c.js",\n                "proxy",\n                "demo"\n            ]\n        }\n    }\n}\n');
    const emptyDoc = jsonc(jsonEdit('{\n  "servers": {}\n}\n').text);
    assert.deepEqual(emptyDoc, { servers: { demo: entry } });
    assert.deepEqual(jsonc(jsonEdit('{"servers": null, "x": 1}').text), { servers: { demo: entry }, x: 1 });
    const commented = jsonEdit('{\n  "servers": {\n    // "old": {}\n  }\n}\n').text;
    assert.ok(commented.startsWith('{\n  "servers": {\n    // "old": {}\n    "demo": {\n'), commented);
    assert.deepEqual(jsonc(commented), { servers: { demo: entry } });
    // A new (or blank) file is just the entry, pretty-printed, with a trailing newline.
    assert.equal(jsonEdit(' \n').text, JSON.stringify({ servers: { demo: entry } }, null, 2) + '\n');
    const same = '{ "servers": { "demo": { "args": ["/c.js", "proxy", "demo"], "command": "/n" } } } // mine';
    assert.deepEqual(jsonEdit(same), { text: same, status: 'unchanged', commentsDropped: false });
  });

  it('JSON edit: malformed files name line and column (never the content); shapes it cannot edit are refused', () => {
    const refuses = (text: string, pattern: RegExp, force = false) =>
      assert.throws(() => jsonEdit(text, force), (e: unknown) => {
        rejectsWith(3, pattern)(e);
        assert.ok(!(e as Error).message.includes('secret'));
        return true;
      });
    refuses('{\n  "a": "secret"\n  "b": 2\n}', /\/cfg\/mcp\.json: not valid JSON \(line 3, column 3: CommaExpected\)/);
    refuses('// only a comment\n', /not valid JSON \(line 2, column 1/);
    refuses('["secret"]', /top level must be a JSON object/);
    refuses('{"servers": ["secret"]}', /"servers" must be a JSON object/);
    // Duplicate keys: the edit would land on the copy that does not count; refused, not guessed.
    refuses('{"servers": {"demo": "secret", "demo": 2}}', /duplicate keys/, true);
    assert.deepEqual(lineColumn('ab\ncd', 4), { line: 2, column: 2 });
  });

  it('TOML headers are parsed into key paths', () => {
    assert.deepEqual(headerPath('[mcp_servers.demo]'), ['mcp_servers', 'demo']);
    assert.deepEqual(headerPath('  [ mcp_servers . "a.b" ]  # note'), ['mcp_servers', 'a.b']);
    assert.deepEqual(headerPath("[[x.'y z']]\r"), ['x', 'y z']);
    assert.equal(headerPath('args = ["a"]'), undefined);
  });

  const launch = { command: '/n', args: ['/c.js', 'proxy', 'demo'] };

  it('codex: --force replaces the table and its sub-tables in place, comments around kept', () => {
    const text = '# top\n[mcp_servers.demo]\nurl = "https://a"\n[mcp_servers.demo.env]\nX = "1"\n\n# about other\n[mcp_servers.other]\nurl = "https://b"\n';
    const edit = applyCodexEntry({ existing: text, file: 'f', entryName: 'demo', launch, force: true });
    assert.equal(edit.status, 'replaced');
    assert.equal(edit.commentsDropped, false);
    assert.equal(
      edit.text,
      '# top\n[mcp_servers.demo]\ncommand = "/n"\nargs = ["/c.js", "proxy", "demo"]\n\n# about other\n[mcp_servers.other]\nurl = "https://b"\n',
    );
  });

  it('codex: an entry the text edit cannot place (inline table) falls back to a full rewrite that still parses', () => {
    const text = '# c\nmcp_servers = { other = { url = "https://b" } }\n';
    const edit = applyCodexEntry({ existing: text, file: 'f', entryName: 'demo', launch, force: false });
    assert.equal(edit.commentsDropped, true);
    const doc = toml(edit.text);
    assert.equal(doc.mcp_servers.other.url, 'https://b');
    assert.deepEqual(doc.mcp_servers.demo.args, launch.args);
  });

  it('codex: env_vars (passed on from Codex\'s own environment) is written and read back', () => {
    const withForward = { ...launch, env: { MCP_OAUTH_STORE: 'file' }, forwardEnv: ['DBUS_SESSION_BUS_ADDRESS'] };
    const edit = applyCodexEntry({ existing: '', file: 'f', entryName: 'demo', launch: withForward, force: false });
    assert.equal(edit.text, '[mcp_servers.demo]\ncommand = "/n"\nargs = ["/c.js", "proxy", "demo"]\nenv = { MCP_OAUTH_STORE = "file" }\nenv_vars = ["DBUS_SESSION_BUS_ADDRESS"]\n');
    assert.deepEqual(toml(edit.text).mcp_servers.demo.env_vars, ['DBUS_SESSION_BUS_ADDRESS']);
    // Installing the same again is "unchanged" (env_vars is part of the comparison).
    assert.equal(applyCodexEntry({ existing: edit.text, file: 'f', entryName: 'demo', launch: withForward, force: false }).status, 'unchanged');
  });

  it('an existing remote (url) entry is named as the client\'s own, without its query string', () => {
    const existing = '{"mcpServers": {"demo": {"type": "http", "url": "https://mcp.example.com/mcp?key=secret-ish"}}}';
    assert.throws(
      () => applyJsonEntry({ existing, file: '/h/.claude.json', containerKey: 'mcpServers', entryName: 'demo', entry, force: false, clientTitle: 'Claude Code' }),
      (e: unknown) => {
        rejectsWith(2, /Claude Code's own remote entry, url = https:\/\/mcp\.example\.com\/mcp\?…/)(e);
        assert.ok(!(e as Error).message.includes('secret-ish'));
        return true;
      },
    );
  });

  describe('the launch line carries what selects the credential store', () => {
    const server: ServerConfig = { name: 'demo', url: 'https://mcp.example.com/mcp', source: 'config', httpHeaders: {}, envHttpHeaders: {}, oauth: { authorizeParams: {} } };
    const launchFor = (env: NodeJS.ProcessEnv, o: { client?: 'codex' | 'cursor'; platform?: NodeJS.Platform; storeSetting?: 'auto' | 'keychain' | 'file' } = {}) =>
      proxyLaunch({ target: 'demo', server, env, home: '/h/mcp-oauth', execPath: '/n', cliPath: '/c.js', client: o.client ?? 'cursor', platform: o.platform ?? 'linux', ...(o.storeSetting ? { storeSetting: o.storeSetting } : {}) });

    it('MCP_OAUTH_STORE is passed on when set; nothing when every choice is the default', () => {
      assert.deepEqual(launchFor({ MCP_OAUTH_STORE: 'file' }).env, { MCP_OAUTH_STORE: 'file' });
      assert.deepEqual(launchFor({ MCP_OAUTH_STORE: 'keychain', MCP_OAUTH_HOME: '/h/mcp-oauth' }).env, { MCP_OAUTH_HOME: '/h/mcp-oauth', MCP_OAUTH_STORE: 'keychain' });
      assert.equal(launchFor({}).env, undefined);
      assert.deepEqual(launchWarnings(launchFor({})), []);
      assert.match(launchWarnings(launchFor({ MCP_OAUTH_STORE: 'memory' })).join('\n'), /forgets every sign-in/);
    });

    it('codex on Linux passes DBUS_SESSION_BUS_ADDRESS on by name when the keychain may be the store', () => {
      assert.deepEqual(launchFor({}, { client: 'codex' }).forwardEnv, ['DBUS_SESSION_BUS_ADDRESS']);
      assert.deepEqual(launchFor({ MCP_OAUTH_STORE: 'keychain' }, { client: 'codex', storeSetting: 'file' }).forwardEnv, ['DBUS_SESSION_BUS_ADDRESS']);
      // The file store needs no session bus; other platforms' keychains need no variable; the
      // other clients start servers with their whole environment.
      assert.equal(launchFor({ MCP_OAUTH_STORE: 'file' }, { client: 'codex' }).forwardEnv, undefined);
      assert.equal(launchFor({}, { client: 'codex', storeSetting: 'file' }).forwardEnv, undefined);
      assert.equal(launchFor({}, { client: 'codex', platform: 'darwin' }).forwardEnv, undefined);
      assert.equal(launchFor({}, { client: 'cursor' }).forwardEnv, undefined);
      // Its value is never frozen into the file.
      assert.equal(launchFor({ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1/bus' }, { client: 'codex' }).env, undefined);
    });
  });

  it('the CLI script path is the real bin/mcp-oauth.js', () => {
    assert.equal(CLI_SCRIPT_PATH, cliPath);
  });
});
