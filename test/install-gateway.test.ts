/**
 * `mcp-oauth install CLIENT NAME --gateway` (issue 9): an HTTP entry for the gateway's endpoint,
 * with the gateway secret as `Authorization: Bearer …`, instead of the stdio proxy — for every
 * client whose config holds HTTP servers. The real CLI writes each client's file; the file is
 * parsed back; the secret is in the file and nowhere in the output.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { jsonc, toml } from './helpers/install.ts';
import { readStore, runCli, type CliResult } from './helpers/e2e.ts';
import { secretOf, startServe } from './helpers/gateway.ts';
import { backupsOf, pathOf, sandbox, type Sandbox } from './fixtures/install-cases.ts';
import { fingerprint } from '../src/secrets.ts';
import { ownEntryKind } from '../src/install/gateway-entry.ts';
import { CLI_SCRIPT_PATH, type ClientId } from '../src/install/install.ts';

const ENDPOINT = 'http://127.0.0.1:7319/servers/demo/mcp';

/** Per HTTP client: where its entry lives and how it names the header table. */
const HTTP_CLIENTS: Array<{ id: ClientId; read: (text: string) => Record<string, any>; container: string; headers: string; type?: string }> = [
  { id: 'codex', read: toml, container: 'mcp_servers', headers: 'http_headers' },
  { id: 'claude-code', read: jsonc, container: 'mcpServers', headers: 'headers', type: 'http' },
  { id: 'cursor', read: jsonc, container: 'mcpServers', headers: 'headers' },
  { id: 'vscode', read: jsonc, container: 'servers', headers: 'headers', type: 'http' },
];

async function cli(sb: Sandbox, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(args, { env: { ...sb.env, ...env } });
}

function assertGatewayEntry(c: (typeof HTTP_CLIENTS)[number], doc: Record<string, any>, secret: string, url = ENDPOINT): void {
  const entry = doc[c.container]?.demo;
  assert.ok(entry, `entry demo under ${c.container}`);
  assert.equal(entry.url, url);
  assert.deepEqual(entry[c.headers], { Authorization: `Bearer ${secret}` });
  assert.equal(entry.command, undefined, 'no stdio launch line');
  assert.equal(entry.type, c.type);
}

/** The stored gateway secret, or undefined (the file store keeps it as a credential). */
async function storedSecret(home: string): Promise<string | undefined> {
  const { credentials } = await readStore(home);
  return Object.values(credentials).find((c: any) => c.tokenType === 'gateway-secret')?.accessToken;
}

describe('install --gateway', { concurrency: 4 }, () => {
  for (const c of HTTP_CLIENTS) {
    it(`${c.id}: an HTTP entry for the gateway endpoint with the secret header, 0600, secret never printed`, async () => {
      const sb = await sandbox();
      const file = pathOf(c.id, sb);
      const r = await cli(sb, ['install', c.id, 'demo', '--gateway']);
      assert.equal(r.code, 0, r.stderr);
      const secret = await storedSecret(sb.mcpHome);
      assert.ok(secret && secret.length >= 40, 'install created the gateway secret in the store');
      assertGatewayEntry(c, c.read(await readFile(file, 'utf8')), secret);
      if (process.platform !== 'win32') assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'the secret is not printed');
      assert.ok(r.stdout.includes(ENDPOINT), r.stdout);
      assert.ok(r.stdout.includes(fingerprint(secret)), 'the fingerprint tells secrets apart');
      assert.match(r.stdout, /not running/);
      assert.match(r.stdout, /mcp-oauth serve --service/);

      // Again: the same entry is there, nothing written; --json says so, and shows no secret either.
      const j = await cli(sb, ['install', c.id, 'demo', '--gateway', '--json']);
      assert.equal(j.code, 0, j.stderr);
      assert.ok(!j.stdout.includes(secret) && !j.stderr.includes(secret));
      const out = JSON.parse(j.stdout);
      assert.equal(out.status, 'unchanged');
      assert.equal(out.transport, 'http');
      assert.equal(out.endpoint, ENDPOINT);
      assert.deepEqual(out.headers, ['Authorization']);
      assert.equal(out.secret_fingerprint, fingerprint(secret));
      assert.deepEqual(out.gateway, { base: 'http://127.0.0.1:7319', running: false, url: null, pid: null });
      assert.equal(out.command, undefined);
      assertGatewayEntry(c, c.read(out.text), '<gateway secret>');
    });
  }

  it('claude-desktop: refused (exit 2) with the stdio entry as the way; nothing written, no secret created', async () => {
    const sb = await sandbox();
    for (const extra of [[], ['--print']]) {
      const r = await cli(sb, ['install', 'claude-desktop', 'demo', '--gateway', ...extra]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /Claude Desktop's config file cannot hold an HTTP server/);
      assert.match(r.stderr, /next: .*mcp-oauth install claude-desktop demo \(without --gateway\)/);
    }
    await assert.rejects(stat(pathOf('claude-desktop', sb)), { code: 'ENOENT' });
    assert.equal(await storedSecret(sb.mcpHome), undefined);
  });

  it('a bare URL: refused (exit 2) naming `add` — the gateway serves configured names', async () => {
    const sb = await sandbox();
    const r = await cli(sb, ['install', 'cursor', 'https://mcp.other.example/mcp', '--gateway']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /mcp-oauth add NAME https:\/\/mcp\.other\.example\/mcp/);
    await assert.rejects(stat(pathOf('cursor', sb)), { code: 'ENOENT' });
  });

  it('--print writes nothing (no file, no secret, same mtime) and predicts: created, then replacing the stdio entry', async () => {
    const sb = await sandbox();
    const file = pathOf('vscode', sb);
    const p = await cli(sb, ['install', 'vscode', 'demo', '--gateway', '--print']);
    assert.equal(p.code, 0, p.stderr);
    await assert.rejects(stat(file), { code: 'ENOENT' });
    assert.equal(await storedSecret(sb.mcpHome), undefined, '--print creates no secret');
    assertGatewayEntry(HTTP_CLIENTS[3], jsonc(p.stdout), '<gateway secret>');
    assert.match(p.stderr, /nothing written; install would add it/);
    assert.match(p.stderr, /install creates it/);

    // The stdio entry first, then --print --gateway: it would replace it (ours; no --force needed).
    assert.equal((await cli(sb, ['install', 'vscode', 'demo'])).code, 0);
    const before = await readFile(file, 'utf8');
    const past = new Date(Date.now() - 3600_000);
    await utimes(file, past, past);
    const mtime = (await stat(file)).mtimeMs;
    const secret = await secretOf(sb.mcpHome);
    const j = await cli(sb, ['install', 'vscode', 'demo', '--gateway', '--print', '--json']);
    assert.equal(j.code, 0, j.stderr);
    const out = JSON.parse(j.stdout);
    assert.equal(out.would_be, 'replaced');
    assert.equal(out.written, false);
    assert.equal(out.secret_fingerprint, fingerprint(secret));
    assert.ok(!j.stdout.includes(secret));
    assert.equal(await readFile(file, 'utf8'), before);
    assert.equal((await stat(file)).mtimeMs, mtime);
    assert.deepEqual(await backupsOf(file), []);
  });

  it('re-running with --gateway replaces the stdio proxy entry mcp-oauth wrote (no --force), and back; a user entry needs --force', async () => {
    const sb = await sandbox();
    const c = HTTP_CLIENTS[0];
    const file = pathOf('codex', sb);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, '# my codex settings\nmodel = "o3"\n');
    assert.equal((await cli(sb, ['install', 'codex', 'demo'])).code, 0);
    assert.equal(toml(await readFile(file, 'utf8')).mcp_servers.demo.command, process.execPath);

    const r = await cli(sb, ['install', 'codex', 'demo', '--gateway', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).status, 'replaced');
    const secret = await secretOf(sb.mcpHome);
    const text = await readFile(file, 'utf8');
    const doc = toml(text);
    assertGatewayEntry(c, doc, secret);
    assert.deepEqual(Object.keys(doc.mcp_servers), ['demo']);
    assert.match(text, /^# my codex settings\nmodel = "o3"\n/, 'comments kept');
    assert.equal((await backupsOf(file)).length, 2);

    // And back to the stdio proxy: the gateway entry is ours too.
    const back = await cli(sb, ['install', 'codex', 'demo', '--json']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(JSON.parse(back.stdout).status, 'replaced');
    const stdio = toml(await readFile(file, 'utf8')).mcp_servers.demo;
    assert.deepEqual(stdio.args, [CLI_SCRIPT_PATH, 'proxy', 'demo']);
    assert.equal(stdio.url, undefined);
    assert.equal(stdio.http_headers, undefined);

    // An entry of the user's own under that name is another matter: exit 2, --force replaces it.
    const cursorFile = pathOf('cursor', sb);
    await mkdir(dirname(cursorFile), { recursive: true });
    const mine = JSON.stringify({ mcpServers: { demo: { command: 'my-own-server', args: ['proxy', 'demo'] } } }, null, 2) + '\n';
    await writeFile(cursorFile, mine);
    const refused = await cli(sb, ['install', 'cursor', 'demo', '--gateway']);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /--force/);
    assert.equal(await readFile(cursorFile, 'utf8'), mine);
    const forced = await cli(sb, ['install', 'cursor', 'demo', '--gateway', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assertGatewayEntry(HTTP_CLIENTS[2], jsonc(await readFile(cursorFile, 'utf8')), secret);
  });

  it('an existing file readable by others keeps its mode and gets a warning; [gateway] port is the entry\'s port', async () => {
    const sb = await sandbox();
    await writeFile(join(sb.mcpHome, 'config.toml'), '[gateway]\nport = 7400\n\n[mcp_servers.demo]\nurl = "https://mcp.example.com/mcp"\n');
    const file = pathOf('claude-code', sb);
    await writeFile(file, '{ "numStartups": 3 }\n');
    await chmod(file, 0o644);
    const r = await cli(sb, ['install', 'claude-code', 'demo', '--gateway']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /readable by other users \(mode 0644\) and holds the gateway secret: chmod 600/);
    if (process.platform !== 'win32') assert.equal((await stat(file)).mode & 0o777, 0o644);
    const doc = jsonc(await readFile(file, 'utf8'));
    assert.equal(doc.numStartups, 3);
    assertGatewayEntry(HTTP_CLIENTS[1], doc, await secretOf(sb.mcpHome), 'http://127.0.0.1:7400/servers/demo/mcp');
  });

  it('with the gateway running: says so, and warns when it listens elsewhere than the configured address', async () => {
    const sb = await sandbox();
    const serve = await startServe(sb.env);
    try {
      const r = await cli(sb, ['install', 'cursor', 'demo', '--gateway']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.includes(`The gateway is running at ${serve.url} (pid ${serve.pid})`), r.stdout);
      // `serve --port 0` took another port than the configured 7319, which the entry names.
      assert.match(r.stderr, /the running gateway listens on http:\/\/127\.0\.0\.1:\d+, but client entries use the configured address http:\/\/127\.0\.0\.1:7319/);
      const secret = await secretOf(sb.mcpHome);
      assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret));
      // The entry carries the secret the gateway itself uses: it accepts it.
      const header = jsonc(await readFile(pathOf('cursor', sb), 'utf8')).mcpServers.demo.headers.Authorization;
      const res = await fetch(`${serve.url}/servers`, { headers: { authorization: header } });
      assert.equal(res.status, 200);
      assert.deepEqual((await res.json()).servers.map((s: { name: string }) => s.name), ['demo']);
    } finally {
      await serve.stop();
    }
  });
});

describe('install --gateway: which entries are mcp-oauth\'s own (replaced without --force)', () => {
  it('recognises its stdio proxy entry and its gateway entries for the same server only', () => {
    assert.equal(ownEntryKind({ command: '/usr/bin/node', args: ['/x/bin/mcp-oauth.js', 'proxy', 'demo'] }, 'demo'), 'stdio');
    assert.equal(ownEntryKind({ command: 'mcp-oauth', args: ['proxy', 'demo'], env: {} }, 'demo'), 'stdio');
    assert.equal(ownEntryKind({ command: 'C:\\node\\node.exe', args: ['C:\\m\\bin\\mcp-oauth.js', 'proxy', 'demo'] }, 'demo'), 'stdio');
    assert.equal(ownEntryKind({ command: '/usr/bin/node', args: ['/x/bin/mcp-oauth.js', 'proxy', 'other'] }, 'demo'), undefined);
    assert.equal(ownEntryKind({ command: 'my-server', args: ['proxy', 'demo'] }, 'demo'), undefined);
    assert.equal(ownEntryKind({ type: 'http', url: 'http://127.0.0.1:7319/servers/demo/mcp', headers: {} }, 'demo'), 'gateway');
    assert.equal(ownEntryKind({ url: 'http://localhost:9000/servers/demo/mcp' }, 'demo'), 'gateway');
    assert.equal(ownEntryKind({ url: 'http://127.0.0.1:7319/servers/other/mcp' }, 'demo'), undefined);
    // A remote server at a path that looks alike is the user's, not a local gateway.
    assert.equal(ownEntryKind({ url: 'https://mcp.example.com/servers/demo/mcp' }, 'demo'), undefined);
    assert.equal(ownEntryKind('x', 'demo'), undefined);
    assert.equal(ownEntryKind(null, 'demo'), undefined);
  });
});
