/**
 * Bad input end to end (1/2): malformed config, malformed or lying metadata, insecure URLs. Every
 * case runs the real CLI and checks three things: a clear error (exit code per EXIT_CODES, a
 * message naming what is wrong, a `next:` line), that nothing was sent where it must not go (no
 * browser launch, no authorize request, no request at all for refused URLs), and that secrets from
 * the input never appear in the output.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { makeHome, runCli, writeConfig, browserLaunches, readStore, type CliResult } from './helpers/e2e.ts';
import { startFakeServer, sendJson, sendText, forward, closedPort, type FakeServer } from './fixtures/fault-servers.ts';
import { withFetchLog, fetchLog, assertCliError } from './fixtures/fault-assertions.ts';

let sandbox: Sandbox;
let sandboxMetadata: Record<string, unknown>;
const servers: FakeServer[] = [];

before(async () => {
  sandbox = await startSandbox();
  sandboxMetadata = await (await fetch(`${sandbox.issuer}/.well-known/openid-configuration`)).json();
});
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await sandbox.close();
});

/** A fake MCP server: 401 on /mcp pointing at its own PRM, which `prm` answers. */
async function fakeMcp(prm: (origin: string) => { status: number; json?: unknown; text?: string }): Promise<FakeServer> {
  const server = await startFakeServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/mcp') {
      return sendJson(res, 401, { error: 'invalid_token' }, {
        'www-authenticate': `Bearer resource_metadata="${server.origin}/.well-known/oauth-protected-resource/mcp"`,
      });
    }
    if (path.startsWith('/.well-known/oauth-protected-resource')) {
      const answer = prm(server.origin);
      return answer.text !== undefined ? sendText(res, answer.status, answer.text) : sendJson(res, answer.status, answer.json);
    }
    sendJson(res, 404, { error: 'not_found' });
  });
  servers.push(server);
  return server;
}

/** A fake authorization server whose RFC 8414 document is the sandbox's, edited by `edit`. */
async function fakeAs(edit: (metadata: Record<string, unknown>, origin: string) => Record<string, unknown>): Promise<FakeServer> {
  const server = await startFakeServer((req, res) => {
    if (req.url === '/.well-known/oauth-authorization-server') return sendJson(res, 200, edit(structuredClone(sandboxMetadata), server.origin));
    sendJson(res, 404, { error: 'not_found' });
  });
  servers.push(server);
  return server;
}

async function login(target: string, extra: string[] = []): Promise<{ result: CliResult; launches: number; requests: Array<{ url: string; authorization: string | null }> }> {
  const h = await withFetchLog();
  try {
    const result = await runCli(['login', target, ...extra], { env: h.env, timeoutMs: 45_000 });
    return { result, launches: await browserLaunches(h.browserLog), requests: await fetchLog(h) };
  } finally {
    await h.cleanup();
  }
}

function assertNothingAuthorized(launches: number): void {
  assert.equal(launches, 0, 'no browser may be opened');
  assert.equal(sandbox.counters.authorizeRequests.length, 0, 'the authorization server must not see an /auth request');
  assert.equal(sandbox.counters.registrations, 0, 'no client may be registered');
}

// The cases are independent (own home, own fake servers) and nothing in this file ever reaches the
// authorize endpoint, so they run concurrently (a few at a time: each runs CLI processes).
describe('bad input: config and discovery', { concurrency: 4 }, () => {
// ---- 1. malformed config → exit 3 naming file, line and key ----

test('config: a TOML syntax error names the file, the line and the key; exit 3', async () => {
  const h = await makeHome();
  try {
    await writeConfig(h.home, ['[mcp_servers.notes]', 'url = "https://notes.example/mcp"', '', '[mcp_servers.notes.oauth]', 'callback_port = = 8123', ''].join('\n'));
    const r = await runCli(['login', 'notes'], { env: h.env });
    assertCliError(r, 3, [join(h.home, 'config.toml') + ':5', 'invalid TOML', 'mcp_servers.notes.oauth.callback_port']);
    assert.equal(await browserLaunches(h.browserLog), 0);
  } finally {
    await h.cleanup();
  }
});

test('config: a wrong type (callback_port = "abc") names the file, the line and the key; exit 3', async () => {
  const h = await makeHome();
  try {
    await writeConfig(h.home, ['# my servers', '[mcp_servers.notes]', 'url = "https://notes.example/mcp"', '[mcp_servers.notes.oauth]', 'client_id = "abc"', 'callback_port = "abc"', ''].join('\n'));
    const r = await runCli(['login', 'notes'], { env: h.env });
    assertCliError(r, 3, [join(h.home, 'config.toml') + ':6', 'mcp_servers.notes.oauth.callback_port', 'must be a number']);
    const json = await runCli(['login', 'notes', '--json'], { env: h.env });
    assert.equal(json.code, 3);
    const error = JSON.parse(json.stdout).error;
    assert.equal(error.code, 'config_invalid');
    assert.deepEqual(error.details, { file: join(h.home, 'config.toml'), line: 6, key: 'mcp_servers.notes.oauth.callback_port' });
  } finally {
    await h.cleanup();
  }
});

test('config: an inline client_secret is refused without printing it; exit 3', async () => {
  const h = await makeHome();
  const secret = 'inline-client-secret-0123456789abcdef';
  try {
    await writeConfig(h.home, ['[mcp_servers.notes]', 'url = "https://notes.example/mcp"', '', '[mcp_servers.notes.oauth]', 'client_id = "abc"', `client_secret = "${secret}"`, ''].join('\n'));
    const r = await runCli(['login', 'notes'], { env: h.env });
    assertCliError(r, 3, [join(h.home, 'config.toml') + ':6', 'mcp_servers.notes.oauth.client_secret', 'client_secret_env']);
    assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), 'the inline secret must not be echoed');
    // Every command reads the config: `list` fails the same way instead of ignoring the entry.
    const list = await runCli(['list'], { env: h.env });
    assert.equal(list.code, 3);
    assert.ok(!list.stderr.includes(secret) && !list.stdout.includes(secret));
  } finally {
    await h.cleanup();
  }
});

// ---- 2. malformed protected resource metadata / authorization server metadata → exit 5 ----

test('PRM that is not JSON → exit 5 naming the URL; no authorize request', async () => {
  const mcp = await fakeMcp(() => ({ status: 200, text: '<html><body>Welcome to our portal</body></html>' }));
  const { result, launches } = await login(`${mcp.origin}/mcp`);
  assertCliError(result, 5, [`${mcp.origin}/.well-known/oauth-protected-resource/mcp`, 'not JSON']);
  assertNothingAuthorized(launches);
});

test('PRM without authorization_servers → exit 5 naming the field', async () => {
  const mcp = await fakeMcp((origin) => ({ status: 200, json: { resource: `${origin}/mcp`, scopes_supported: ['mcp:tools'] } }));
  const { result, launches } = await login(`${mcp.origin}/mcp`);
  assertCliError(result, 5, [`${mcp.origin}/.well-known/oauth-protected-resource/mcp`, 'authorization_servers']);
  assertNothingAuthorized(launches);
});

test('AS metadata without token_endpoint → exit 5 naming the field and URL', async () => {
  const as = await fakeAs((m, origin) => {
    delete m.token_endpoint;
    return { ...m, issuer: origin };
  });
  const mcp = await fakeMcp((origin) => ({ status: 200, json: { resource: `${origin}/mcp`, authorization_servers: [as.origin] } }));
  const { result, launches } = await login(`${mcp.origin}/mcp`);
  assertCliError(result, 5, [`${as.origin}/.well-known/oauth-authorization-server`, 'token_endpoint']);
  assertNothingAuthorized(launches);
});

test('AS metadata whose issuer differs from the one used to build the URL → exit 5 naming both', async () => {
  // The sandbox's real document, served from another origin: issuer = the sandbox, not this one.
  const as = await fakeAs((m) => m);
  const mcp = await fakeMcp((origin) => ({ status: 200, json: { resource: `${origin}/mcp`, authorization_servers: [as.origin] } }));
  const { result, launches } = await login(`${mcp.origin}/mcp`, ['--json']);
  assert.equal(result.code, 5, result.stdout + result.stderr);
  const error = JSON.parse(result.stdout).error;
  assert.equal(error.code, 'issuer_mismatch');
  assert.ok(error.message.includes(sandbox.issuer) && error.message.includes(as.origin), error.message);
  assert.ok(error.hint);
  assertNothingAuthorized(launches);
});

test('AS metadata without S256 in code_challenge_methods_supported → exit 5 (PKCE required)', async () => {
  const as = await fakeAs((m, origin) => ({ ...m, issuer: origin, code_challenge_methods_supported: ['plain'] }));
  const mcp = await fakeMcp((origin) => ({ status: 200, json: { resource: `${origin}/mcp`, authorization_servers: [as.origin] } }));
  const { result, launches } = await login(`${mcp.origin}/mcp`);
  assertCliError(result, 5, ['S256', 'code_challenge_methods_supported', as.origin]);
  assertNothingAuthorized(launches);
});

// ---- 3. plain http to a non-loopback host → refused before any request ----

test('a plain-http non-loopback server URL is refused before any network request (exit 5, insecure_url)', async () => {
  const h = await withFetchLog({ FETCH_BLOCK: '1' });
  try {
    const r = await runCli(['login', 'http://example.invalid/mcp', '--json'], { env: h.env, timeoutMs: 45_000 });
    assert.equal(r.code, 5, r.stdout + r.stderr);
    const error = JSON.parse(r.stdout).error;
    assert.equal(error.code, 'insecure_url');
    assert.ok(error.message.includes('http://example.invalid/mcp'), error.message);
    assert.ok(error.hint.includes('https'), error.hint);
    assert.deepEqual(await fetchLog(h), [], 'not a single request (hence no DNS lookup) may happen');
    assert.equal(await browserLaunches(h.browserLog), 0);

    // The same from the config, human output: the `next:` line says to use https.
    await writeConfig(h.home, '[mcp_servers.plain]\nurl = "http://example.invalid/mcp"\n');
    const human = await runCli(['login', 'plain'], { env: h.env, timeoutMs: 45_000 });
    assertCliError(human, 5, ['http://example.invalid/mcp', 'https']);
    assert.deepEqual(await fetchLog(h), []);
  } finally {
    await h.cleanup();
  }
});

test('PRM naming a plain-http non-loopback authorization server → exit 5 before contacting it', async () => {
  const mcp = await fakeMcp((origin) => ({ status: 200, json: { resource: `${origin}/mcp`, authorization_servers: ['http://as.example.invalid'] } }));
  const { result, launches, requests } = await login(`${mcp.origin}/mcp`, ['--json']);
  assert.equal(result.code, 5, result.stdout + result.stderr);
  assert.equal(JSON.parse(result.stdout).error.code, 'insecure_url');
  assert.ok(requests.length > 0, 'the recorder saw the discovery requests');
  assert.ok(requests.every((r) => new URL(r.url).hostname === '127.0.0.1'), 'no request may go to the insecure issuer');
  assertNothingAuthorized(launches);
});

// ---- 5. PRM whose resource is another server → refused before any authorization request ----

test('PRM whose resource does not match the server URL → exit 5 naming both; AS never contacted', async () => {
  const other = `http://127.0.0.1:${new URL(sandbox.mcpUrl).port}/other`;
  const mcp = await fakeMcp(() => ({ status: 200, json: { resource: other, authorization_servers: [sandbox.issuer] } }));
  const h = await withFetchLog();
  try {
    const r = await runCli(['login', `${mcp.origin}/mcp`], { env: h.env, timeoutMs: 45_000 });
    assertCliError(r, 5, [other, `${mcp.origin}/mcp`]);
    assertNothingAuthorized(await browserLaunches(h.browserLog));
    const requests = await fetchLog(h);
    assert.ok(requests.every((q) => !q.url.startsWith(sandbox.issuer)), 'the authorization server must not be contacted at all');
    assert.deepEqual((await readStore(h.home)).credentials, {});
  } finally {
    await h.cleanup();
  }
});

// ---- 8. the server is down ----
test('a server that is down (connection refused) → exit 6 naming the host; stored credential unchanged', async () => {
  // Its own sandbox: this case signs in, and the shared one must never see an authorize request.
  const sandbox = await startSandbox();
  const h = await withFetchLog();
  try {
    const port = await closedPort();
    const r = await runCli(['login', `http://127.0.0.1:${port}/mcp`], { env: h.env, timeoutMs: 45_000 });
    assertCliError(r, 6, [`127.0.0.1:${port}`]);
    assert.match(r.stderr, new RegExp(`^next: .*127\\.0\\.0\\.1:${port}.*reachable`, 'm'));
    assert.equal(await browserLaunches(h.browserLog), 0);

    // With a stored credential: sign in through a front, then the front goes away.
    const front = await startFakeServer((req, res, body) => forward(new URL(sandbox.mcpUrl).origin, req, res, body));
    servers.push(front);
    await writeConfig(h.home, `[mcp_servers.gone]\nurl = "${front.origin}/mcp"\noauth_resource = "${sandbox.mcpUrl}"\n`);
    assert.equal((await runCli(['login', 'gone'], { env: h.env, timeoutMs: 45_000 })).code, 0);
    await front.close();
    const before = await readStore(h.home);
    const down = await runCli(['tools', 'gone'], { env: h.env, timeoutMs: 45_000 });
    assertCliError(down, 6, [new URL(front.origin).host]);
    assert.match(down.stderr, /^next: .*reachable/m);
    assert.deepEqual(await readStore(h.home), before, 'the stored credential is unchanged');
  } finally {
    await h.cleanup();
    await sandbox.close();
  }
});
});
