import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, listServers, resolveServer } from '../src/config/config.ts';
import { addServer, removeServer } from '../src/config/edit.ts';
import { lineOfKey } from '../src/config/locate-key.ts';
import { codexHome, mcpOAuthHome } from '../src/config/paths.ts';
import { isMcpOAuthError, McpOAuthError } from '../src/errors.ts';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mcp-oauth-config-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let counter = 0;
/** A fresh MCP_OAUTH_HOME and CODEX_HOME per test. */
async function freshEnv(): Promise<{ env: NodeJS.ProcessEnv; home: string; codex: string; file: string }> {
  const dir = join(root, String(++counter));
  const home = join(dir, 'home');
  const codex = join(dir, 'codex');
  await mkdir(codex, { recursive: true });
  return { env: { MCP_OAUTH_HOME: home, CODEX_HOME: codex, HOME: dir }, home, codex, file: join(home, 'config.toml') };
}

async function writeConfig(file: string, text: string): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, text);
}

async function configError(p: Promise<unknown>): Promise<McpOAuthError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof McpOAuthError, `expected McpOAuthError, got ${e}`);
    return e;
  }
  assert.fail('expected an error');
}

describe('paths', () => {
  it('MCP_OAUTH_HOME, then XDG_CONFIG_HOME, then ~/.config', () => {
    assert.equal(mcpOAuthHome({ MCP_OAUTH_HOME: '/a', XDG_CONFIG_HOME: '/x', HOME: '/h' }), '/a');
    assert.equal(mcpOAuthHome({ XDG_CONFIG_HOME: '/x', HOME: '/h' }), '/x/mcp-oauth');
    assert.equal(mcpOAuthHome({ HOME: '/h' }), '/h/.config/mcp-oauth');
    assert.equal(codexHome({ CODEX_HOME: '/c', HOME: '/h' }), '/c');
    assert.equal(codexHome({ HOME: '/h' }), '/h/.codex');
  });
});

describe('loadConfig / resolveServer', () => {
  it('a missing file is an empty config with defaults', async () => {
    const { env, file } = await freshEnv();
    const cfg = await loadConfig({ env });
    assert.deepEqual(cfg, { file, exists: false, servers: {}, settings: { store: 'auto', refreshMarginSeconds: 60 }, gateway: { host: '127.0.0.1', port: 7319, allowedHosts: [] } });
  });

  it('reads every supported key into ServerConfig', async () => {
    const { env, file } = await freshEnv();
    await writeConfig(
      file,
      `[settings]
store = "file"
refresh_margin_seconds = 120

[mcp_servers.notion]
url = "https://mcp.notion.com/mcp"
bearer_token_env_var = "NOTION_TOKEN"
scopes = ["read", "write"]
oauth_resource = "https://mcp.notion.com"
unknown_codex_key = true
http_headers = { "X-Team" = "core" }

[mcp_servers.notion.env_http_headers]
X-Api-Key = "NOTION_KEY"

[mcp_servers.notion.oauth]
client_id = "abc"
client_secret_env = "NOTION_SECRET"
client_metadata_url = "https://app.example/client.json"
callback_port = 8765
provider = "google"
transport = "sse"
authorize_params = { prompt = "consent" }
`,
    );
    const cfg = await loadConfig({ env });
    assert.equal(cfg.exists, true);
    assert.deepEqual(cfg.settings, { store: 'file', refreshMarginSeconds: 120 });
    const expected = {
      name: 'notion',
      url: 'https://mcp.notion.com/mcp',
      source: 'config',
      configFile: file,
      bearerTokenEnvVar: 'NOTION_TOKEN',
      httpHeaders: { 'X-Team': 'core' },
      envHttpHeaders: { 'X-Api-Key': 'NOTION_KEY' },
      scopes: ['read', 'write'],
      oauthResource: 'https://mcp.notion.com',
      oauth: {
        clientId: 'abc',
        clientSecretEnvVar: 'NOTION_SECRET',
        clientMetadataUrl: 'https://app.example/client.json',
        callbackPort: 8765,
        authorizeParams: { prompt: 'consent' },
        provider: 'google',
        transport: 'sse',
      },
    };
    assert.deepEqual(cfg.servers.notion, expected);
    assert.deepEqual(await resolveServer('notion', { env }), expected);
  });

  it('falls back to Codex config (read-only), ours shadows Codex, stdio entries refused', async () => {
    const { env, file, codex } = await freshEnv();
    const codexFile = join(codex, 'config.toml');
    await writeConfig(
      codexFile,
      `model = "o4"
[mcp_servers.linear]
url = "https://mcp.linear.app/mcp"
startup_timeout_sec = 20
[mcp_servers.shared]
url = "https://codex.example/mcp"
[mcp_servers.fs]
command = "npx"
args = ["-y", "server-filesystem"]
`,
    );
    await writeConfig(file, `[mcp_servers.shared]\nurl = "https://ours.example/mcp"\n`);
    const before = await readFile(codexFile, 'utf8');

    const linear = await resolveServer('linear', { env });
    assert.equal(linear.source, 'codex');
    assert.equal(linear.url, 'https://mcp.linear.app/mcp');
    assert.equal(linear.configFile, codexFile);
    assert.equal((await resolveServer('shared', { env })).url, 'https://ours.example/mcp');

    const err = await configError(resolveServer('fs', { env }));
    assert.equal(err.code, 'usage');
    assert.match(err.message, /fs is a stdio server \(command=npx\)/);

    const listed = await listServers({ env });
    assert.deepEqual(
      listed.map((s) => [s.name, s.source, s.url]),
      [
        ['shared', 'config', 'https://ours.example/mcp'],
        ['linear', 'codex', 'https://mcp.linear.app/mcp'],
      ],
    );
    assert.equal(await readFile(codexFile, 'utf8'), before, 'Codex config is never written');
  });

  it('a malformed Codex config names the Codex file', async () => {
    const { env, codex } = await freshEnv();
    await writeConfig(join(codex, 'config.toml'), `[mcp_servers.x]\nurl = \n`);
    const err = await configError(resolveServer('x', { env }));
    assert.equal(err.code, 'config_invalid');
    assert.ok(err.message.startsWith(`${join(codex, 'config.toml')}:2:`), err.message);
  });

  it('a bare URL resolves to an ad-hoc entry', async () => {
    const { env } = await freshEnv();
    const s = await resolveServer('https://mcp.example.com/mcp', { env });
    assert.deepEqual(s, {
      name: 'https://mcp.example.com/mcp',
      url: 'https://mcp.example.com/mcp',
      source: 'url',
      httpHeaders: {},
      envHttpHeaders: {},
      oauth: { authorizeParams: {} },
    });
  });

  it('an unknown name is server_unknown listing known names and the add command', async () => {
    const { env, file, codex } = await freshEnv();
    await writeConfig(file, `[mcp_servers.beta]\nurl = "https://b.example"\n[mcp_servers.alpha]\nurl = "https://a.example"\n`);
    await writeConfig(join(codex, 'config.toml'), `[mcp_servers.gamma]\nurl = "https://g.example"\n`);
    const err = await configError(resolveServer('notion', { env }));
    assert.equal(err.code, 'server_unknown');
    assert.match(err.message, /known servers: alpha, beta, gamma/);
    assert.equal(err.hint, 'mcp-oauth add notion URL');
  });
});

describe('config errors name file, line and key', () => {
  it('malformed TOML: file and parser line, no file content', async () => {
    const { env, file } = await freshEnv();
    await writeConfig(file, `[mcp_servers.a]\nurl = "https://a.example"\nhttp_headers = { Authorization = "Bearer sekrit-token-123" } junk\n[mcp_servers.b]\n`);
    const err = await configError(loadConfig({ env }));
    assert.equal(err.code, 'config_invalid');
    assert.ok(err.message.startsWith(`${file}:3: invalid TOML`), err.message);
    assert.doesNotMatch(err.message, /sekrit/);
    assert.match(err.hint ?? '', /mcp-oauth add/);
  });

  it('wrong type: exact line and key path', async () => {
    const { env, file } = await freshEnv();
    await writeConfig(
      file,
      `# comment
[mcp_servers.other]
url = "https://o.example"
callback_port = "not ours, ignored"

[mcp_servers.notion]
url = "https://mcp.notion.com/mcp"

[mcp_servers.notion.oauth]
client_id = "x"
callback_port = 70000
`,
    );
    const err = await configError(loadConfig({ env }));
    assert.equal(err.code, 'config_invalid');
    assert.equal(err.message, `${file}:11: mcp_servers.notion.oauth.callback_port must be a number from 1 to 65535`);
    assert.deepEqual(err.details, { file, line: 11, key: 'mcp_servers.notion.oauth.callback_port' });
  });

  it('wrong type in a dotted key and in an array element', async () => {
    const { env, file } = await freshEnv();
    await writeConfig(file, `[mcp_servers.a]\nurl = "https://a.example"\noauth.callback_port = 0\n`);
    assert.equal((await configError(loadConfig({ env }))).message, `${file}:3: mcp_servers.a.oauth.callback_port must be a number from 1 to 65535`);
    await writeConfig(file, `[mcp_servers.a]\nurl = "https://a.example"\n\nscopes = ["ok", 3]\n`);
    assert.equal((await configError(loadConfig({ env }))).message, `${file}:4: mcp_servers.a.scopes[1] must be a string`);
    await writeConfig(file, `[settings]\nstore = "cloud"\n`);
    assert.equal((await configError(loadConfig({ env }))).message, `${file}:2: settings.store must be "auto", "keychain", "file" or "redis"`);
    await writeConfig(file, `[mcp_servers.a]\nurl = "ftp://a.example"\n`);
    assert.equal((await configError(loadConfig({ env }))).message, `${file}:2: mcp_servers.a.url must be an http(s) URL`);
    await writeConfig(file, `[mcp_servers.a]\nscopes = []\n`);
    assert.match((await configError(loadConfig({ env }))).message, /:1: mcp_servers\.a needs a url/);
  });

  it('an inline client_secret is rejected without echoing it', async () => {
    const { env, file } = await freshEnv();
    await writeConfig(file, `[mcp_servers.a]\nurl = "https://a.example"\n[mcp_servers.a.oauth]\nclient_id = "x"\nclient_secret = "hunter2-secret"\n`);
    const err = await configError(resolveServer('a', { env }));
    assert.equal(err.code, 'config_invalid');
    assert.ok(err.message.startsWith(`${file}:5: mcp_servers.a.oauth.client_secret is not allowed`), err.message);
    assert.match(err.message, /environment variable/);
    assert.match(err.message, /client_secret_env/);
    assert.doesNotMatch(err.message + err.hint, /hunter2/);
  });

  it('unknown keys: ignored in the server table (Codex compat), rejected in .oauth (typos)', async () => {
    const { env, file } = await freshEnv();
    await writeConfig(file, `[mcp_servers.a]\nurl = "https://a.example"\nenabled = true\n[mcp_servers.a.oauth]\nclient_id = "x"\ncallbak_port = 1234\n`);
    const err = await configError(loadConfig({ env }));
    assert.equal(err.message, `${file}:6: mcp_servers.a.oauth.callbak_port is not a known oauth setting`);
  });
});

describe('addServer / removeServer', () => {
  it('round trip: add, load, add another, remove; other entries and unknown keys are kept', async () => {
    const { env, file, home } = await freshEnv();
    await writeConfig(file, `[settings]\nstore = "file"\n[mcp_servers.keep]\nurl = "https://keep.example"\nenabled = true\n`);
    const added = await addServer({
      env,
      name: 'notion',
      url: 'https://mcp.notion.com/mcp',
      scopes: ['a', 'b'],
      clientId: 'cid',
      clientSecretEnv: 'NOTION_SECRET',
      clientMetadataUrl: 'https://app.example/client.json',
      callbackPort: 9000,
      authorizeParams: { prompt: 'consent' },
      provider: 'google',
      bearerTokenEnvVar: 'NOTION_TOKEN',
    });
    assert.deepEqual(added, { file, created: true });
    const s = await resolveServer('notion', { env });
    assert.deepEqual(s, {
      name: 'notion',
      url: 'https://mcp.notion.com/mcp',
      source: 'config',
      configFile: file,
      bearerTokenEnvVar: 'NOTION_TOKEN',
      httpHeaders: {},
      envHttpHeaders: {},
      scopes: ['a', 'b'],
      oauth: {
        clientId: 'cid',
        clientSecretEnvVar: 'NOTION_SECRET',
        clientMetadataUrl: 'https://app.example/client.json',
        callbackPort: 9000,
        authorizeParams: { prompt: 'consent' },
        provider: 'google',
      },
    });
    const text = await readFile(file, 'utf8');
    assert.match(text, /enabled = true/);
    assert.match(text, /comments are not kept/);
    assert.equal((await loadConfig({ env })).settings.store, 'file');

    assert.equal(await removeServer({ env, name: 'notion' }), true);
    assert.equal(await removeServer({ env, name: 'notion' }), false);
    const cfg = await loadConfig({ env });
    assert.deepEqual(Object.keys(cfg.servers), ['keep']);
    assert.deepEqual((await readdir(home)).filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
  });

  it('refuses to overwrite without force, replaces with force', async () => {
    const { env } = await freshEnv();
    await addServer({ env, name: 'a', url: 'https://one.example' });
    const err = await configError(addServer({ env, name: 'a', url: 'https://two.example' }));
    assert.equal(err.code, 'usage');
    assert.match(err.hint ?? '', /--force/);
    assert.equal((await resolveServer('a', { env })).url, 'https://one.example');
    assert.deepEqual((await addServer({ env, name: 'a', url: 'https://two.example', force: true })).created, false);
    assert.equal((await resolveServer('a', { env })).url, 'https://two.example');
  });

  it('validates name, URL and options before writing', async () => {
    const { env, file } = await freshEnv();
    assert.equal((await configError(addServer({ env, name: 'has space', url: 'https://a.example' }))).code, 'usage');
    assert.equal((await configError(addServer({ env, name: 'a', url: 'not a url' }))).code, 'usage');
    const port = await configError(addServer({ env, name: 'a', url: 'https://a.example', callbackPort: 0 }));
    assert.match(port.message, /mcp_servers\.a\.oauth\.callback_port must be a number from 1 to 65535/);
    await assert.rejects(stat(file), { code: 'ENOENT' });
  });

  it('refuses to rewrite a malformed config', async () => {
    const { env, file } = await freshEnv();
    await writeConfig(file, `[mcp_servers.a\n`);
    assert.equal((await configError(addServer({ env, name: 'b', url: 'https://b.example' }))).code, 'config_invalid');
    assert.equal(await readFile(file, 'utf8'), `[mcp_servers.a\n`);
  });

  it('writes the file 0600 in a 0700 dir', { skip: process.platform === 'win32' }, async () => {
    const { env, file, home } = await freshEnv();
    await addServer({ env, name: 'a', url: 'https://a.example' });
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(home)).mode & 0o777, 0o700);
  });
});

describe('lineOfKey', () => {
  it('finds keys under quoted headers, and falls back to the enclosing inline table', () => {
    const text = `[mcp_servers."my server"]\nurl = "x"\n[mcp_servers."my server".oauth]\n  "client_id" = "y"\n[other]\nt = { a = 1 }\n`;
    assert.equal(lineOfKey(text, ['mcp_servers', 'my server', 'oauth', 'client_id']), 4);
    assert.equal(lineOfKey(text, ['other', 't', 'a']), 6);
    assert.equal(lineOfKey(text, ['nowhere', 'x']), undefined);
    assert.ok(isMcpOAuthError(new McpOAuthError('usage', 'x'), 'usage'));
  });
});
