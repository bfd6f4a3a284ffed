/**
 * The sandbox's discovery modes (src/sandbox/discovery-modes.ts), with plain fetch and no
 * mcp-oauth code: each serves its metadata where it should and nowhere else, its 401 names what it
 * should, and a token obtained the way that kind of server expects is accepted by its MCP server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cliPath, makeHome, runCli } from './helpers/e2e.ts';
import { startSandbox, DISCOVERY_MODES, type DiscoveryMode, type Sandbox } from '../src/sandbox/index.ts';
import { fingerprint } from '../src/secrets.ts';
import { TOOL_NAMES } from '../src/sandbox/mcp-server.ts';
import { echoCall, endpointsFrom, initializeBody, mcpPost, obtainToken, openSession, type Endpoints } from './fixtures/sandbox-oauth-client.ts';

const PRM = '/.well-known/oauth-protected-resource';

async function withSandbox(t: { after(fn: () => Promise<void>): void }, discovery: DiscoveryMode, extra: Parameters<typeof startSandbox>[0] = {}): Promise<Sandbox & { origin: string }> {
  const sb = await startSandbox({ discovery, ...extra });
  t.after(() => sb.close());
  return Object.assign(sb, { origin: new URL(sb.mcpUrl).origin });
}

async function status(url: string): Promise<number> {
  const res = await fetch(url);
  await res.body?.cancel();
  return res.status;
}

async function json(url: string): Promise<Record<string, any>> {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  return (await res.json()) as Record<string, any>;
}

/** The WWW-Authenticate of an unauthenticated initialize. */
async function challengeOf(sb: Sandbox, body: unknown = initializeBody): Promise<string> {
  const r = await mcpPost(sb.mcpUrl, body);
  assert.equal(r.status, 401);
  return r.headers.get('www-authenticate') ?? '';
}

/** Signs in the way the mode's metadata says and calls echo with the token. */
async function tokenWorks(sb: Sandbox, endpoints: Endpoints, resource: string): Promise<string> {
  const { accessToken } = await obtainToken(endpoints, { resource, scope: 'mcp:tools offline_access' });
  const session = await openSession(sb.mcpUrl, accessToken);
  const echo = await mcpPost(sb.mcpUrl, echoCall('ok'), { token: accessToken, sessionId: session });
  assert.equal(echo.status, 200);
  assert.deepEqual(echo.message.result.content, [{ type: 'text', text: 'ok' }]);
  return accessToken;
}

test('every mode is listed', () => {
  assert.deepEqual([...DISCOVERY_MODES].sort(), [
    'always-insufficient-scope', 'no-metadata', 'no-oauth', 'no-prm-origin-as', 'per-tool', 'resource-prefix', 'root-only', 'standard', 'trailing-slash-issuer',
  ]);
});

test('standard: metadata at the path-form and root URLs, the 401 names the path form; counters record every fetch', async (t) => {
  const sb = await withSandbox(t, 'standard');
  for (const path of [`${PRM}/mcp`, PRM]) assert.equal((await json(sb.origin + path)).resource, sb.mcpUrl);
  assert.match(await challengeOf(sb), new RegExp(`resource_metadata="${sb.origin}${PRM}/mcp"`));
  const token = await tokenWorks(sb, await endpointsFrom(`${sb.issuer}/.well-known/oauth-authorization-server`), sb.mcpUrl);
  assert.deepEqual(sb.counters.metadataRequests.slice(0, 3).map((m) => [m.url, m.status]), [
    [`${sb.origin}${PRM}/mcp`, 200], [`${sb.origin}${PRM}`, 200], [`${sb.issuer}/.well-known/oauth-authorization-server`, 200],
  ]);
  // The fields this test is about (the protocol-era ones are checked in sandbox-eras.test.ts).
  const log = sb.counters.mcpLog.map(({ method, rpcMethods, authorization, tokenIssuer, tokenFingerprint, status }) =>
    JSON.parse(JSON.stringify({ method, rpcMethods, authorization, tokenIssuer, tokenFingerprint, status })));
  assert.deepEqual(log[0], { method: 'POST', rpcMethods: ['initialize'], authorization: false, status: 401 });
  assert.deepEqual(log.at(-1), { method: 'POST', rpcMethods: ['tools/call'], authorization: true, tokenIssuer: sb.issuer, tokenFingerprint: fingerprint(token), status: 200 });
  const mine = sb.counters.issuers[sb.issuer];
  assert.equal(mine.registrations.length, 1);
  assert.equal(mine.authorizeRequests[0].resource, sb.mcpUrl);
  assert.deepEqual(mine.tokenRequests.map((r) => [r.grantType, r.clientId, r.status]), [['authorization_code', mine.registrations[0], 200]]);
  assert.ok(mine.issued.includes(fingerprint(token)));
});

test('resource-prefix: metadata only at the root, resource = the origin; a token for the origin is accepted', async (t) => {
  const sb = await withSandbox(t, 'resource-prefix');
  assert.equal(await status(`${sb.origin}${PRM}/mcp`), 404);
  const prm = await json(sb.origin + PRM);
  assert.equal(prm.resource, `${sb.origin}/`);
  assert.equal(sb.resource, sb.origin, 'the canonical resource has no trailing slash');
  assert.match(await challengeOf(sb), new RegExp(`resource_metadata="${sb.origin}${PRM}"`));
  const endpoints = await endpointsFrom(`${sb.issuer}/.well-known/oauth-authorization-server`);
  await tokenWorks(sb, endpoints, sb.origin);
  // A token for the MCP URL itself is not one this authorization server issues.
  await assert.rejects(obtainToken(endpoints, { resource: sb.mcpUrl, scope: 'mcp:tools' }));
});

test('root-only: metadata only at the root (resource = the MCP URL); the 401 names no metadata URL', async (t) => {
  const sb = await withSandbox(t, 'root-only');
  assert.equal(await status(`${sb.origin}${PRM}/mcp`), 404);
  assert.equal((await json(sb.origin + PRM)).resource, sb.mcpUrl);
  const www = await challengeOf(sb);
  assert.match(www, /^Bearer scope="mcp:tools"$/);
  await tokenWorks(sb, await endpointsFrom(`${sb.issuer}/.well-known/oauth-authorization-server`), sb.mcpUrl);
});

test('per-tool: initialize and tools/list public; tools/call 401 names the per-tool URL, the only one serving metadata', async (t) => {
  const sb = await withSandbox(t, 'per-tool');
  const session = await openSession(sb.mcpUrl);
  const list = await mcpPost(sb.mcpUrl, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { sessionId: session });
  assert.equal(list.status, 200);
  // Every tool has its metadata URL: the list the MCP server keeps for that is complete.
  assert.deepEqual(list.message.result.tools.map((x: { name: string }) => x.name).sort(), [...TOOL_NAMES].sort());
  const call = await mcpPost(sb.mcpUrl, echoCall('x'), { sessionId: session });
  assert.equal(call.status, 401);
  assert.match(call.headers.get('www-authenticate') ?? '', new RegExp(`resource_metadata="${sb.origin}${PRM}/echo"`));
  for (const path of [`${PRM}/mcp`, PRM, `${PRM}/no_such_tool`]) assert.equal(await status(sb.origin + path), 404, path);
  const prm = await json(`${sb.origin}${PRM}/echo`);
  assert.equal(prm.resource, sb.mcpUrl);
  assert.deepEqual(prm.authorization_servers, [sb.issuer]);
  assert.deepEqual(sb.counters.mcpLog.slice(0, 3).map((e) => [e.rpcMethods[0], e.authorization, e.status]), [
    ['initialize', false, 200], ['notifications/initialized', false, 202], ['tools/list', false, 200],
  ]);

  const { accessToken } = await obtainToken(await endpointsFrom(`${sb.issuer}/.well-known/oauth-authorization-server`), { resource: sb.mcpUrl, scope: 'mcp:tools' });
  const ok = await mcpPost(sb.mcpUrl, echoCall('with token'), { token: accessToken, sessionId: session });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.message.result.content, [{ type: 'text', text: 'with token' }]);
});

test('trailing-slash-issuer: the metadata lists the issuer with a "/", the AS metadata without', async (t) => {
  const sb = await withSandbox(t, 'trailing-slash-issuer');
  assert.deepEqual((await json(`${sb.origin}${PRM}/mcp`)).authorization_servers, [`${sb.issuer}/`]);
  assert.equal((await json(`${sb.issuer}/.well-known/oauth-authorization-server`)).issuer, sb.issuer);
  await tokenWorks(sb, await endpointsFrom(`${sb.issuer}/.well-known/oauth-authorization-server`), sb.mcpUrl);
});

test('no-prm-origin-as: no resource metadata; the AS is the MCP origin with RFC 8414 metadata there', async (t) => {
  const sb = await withSandbox(t, 'no-prm-origin-as');
  assert.equal(sb.issuer, sb.origin);
  for (const path of [`${PRM}/mcp`, PRM]) assert.equal(await status(sb.origin + path), 404, path);
  const meta = await json(`${sb.origin}/.well-known/oauth-authorization-server`);
  assert.equal(meta.issuer, sb.origin);
  assert.ok(meta.authorization_endpoint.startsWith(sb.origin));
  assert.doesNotMatch(await challengeOf(sb), /resource_metadata/);
  await tokenWorks(sb, await endpointsFrom(`${sb.origin}/.well-known/oauth-authorization-server`), sb.mcpUrl);
});

test('no-metadata: every well-known URL 404s; /authorize, /token, /register on the MCP origin work', async (t) => {
  const sb = await withSandbox(t, 'no-metadata');
  assert.equal(sb.issuer, sb.origin);
  for (const path of [`${PRM}/mcp`, PRM, '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    assert.equal(await status(sb.origin + path), 404, path);
  }
  assert.doesNotMatch(await challengeOf(sb), /resource_metadata/);
  const endpoints = { authorization: `${sb.origin}/authorize`, token: `${sb.origin}/token`, registration: `${sb.origin}/register` };
  const { callback } = await obtainToken(endpoints, { resource: sb.mcpUrl, scope: 'mcp:tools' });
  assert.equal(callback.searchParams.get('iss'), sb.origin, 'RFC 9207 iss = the origin');
  await tokenWorks(sb, endpoints, sb.mcpUrl);
  assert.equal(sb.counters.authorizeRequests.length, 2, 'authorize requests counted on the /authorize route');
  assert.equal(sb.counters.issuers[sb.issuer].registrations.length, 2);
});

test('no-oauth: everything is served without a token; no metadata anywhere', async (t) => {
  const sb = await withSandbox(t, 'no-oauth');
  const session = await openSession(sb.mcpUrl);
  const echo = await mcpPost(sb.mcpUrl, echoCall('open'), { sessionId: session });
  assert.equal(echo.status, 200);
  assert.deepEqual(echo.message.result.content, [{ type: 'text', text: 'open' }]);
  for (const path of [`${PRM}/mcp`, PRM, '/.well-known/oauth-authorization-server']) assert.equal(await status(sb.origin + path), 404, path);
  assert.equal(sb.counters.mcp401, 0);
});

test('always-insufficient-scope: each token gets 403 asking for one more scope than it has', async (t) => {
  const sb = await withSandbox(t, 'always-insufficient-scope');
  const endpoints = await endpointsFrom(`${sb.issuer}/.well-known/oauth-authorization-server`);
  let scope = 'mcp:tools';
  for (const next of ['mcp:step1', 'mcp:step2', 'mcp:step3']) {
    const { accessToken } = await obtainToken(endpoints, { resource: sb.mcpUrl, scope });
    const r = await mcpPost(sb.mcpUrl, initializeBody, { token: accessToken });
    assert.equal(r.status, 403);
    assert.match(r.headers.get('www-authenticate') ?? '', new RegExp(`error="insufficient_scope", scope="mcp:tools ${next}"`));
    scope += ` ${next}`;
  }
  assert.ok(!(await json(`${sb.origin}${PRM}/mcp`)).scopes_supported.includes('mcp:step1'), 'the step scopes are not advertised');
});

test('secondIssuer: switchAuthorizationServer changes the listed issuer and which tokens the MCP server accepts', async (t) => {
  const sb = await withSandbox(t, 'standard', { secondIssuer: true });
  assert.ok(sb.secondIssuer && sb.secondIssuer !== sb.issuer);
  const first = await obtainToken(await endpointsFrom(`${sb.issuer}/.well-known/oauth-authorization-server`), { resource: sb.mcpUrl, scope: 'mcp:tools' });
  assert.equal((await mcpPost(sb.mcpUrl, initializeBody, { token: first.accessToken })).status, 200);

  assert.equal(sb.switchAuthorizationServer(), sb.secondIssuer);
  assert.equal(sb.activeIssuer(), sb.secondIssuer);
  assert.deepEqual((await json(`${sb.origin}${PRM}/mcp`)).authorization_servers, [sb.secondIssuer]);
  const refused = await mcpPost(sb.mcpUrl, initializeBody, { token: first.accessToken });
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get('www-authenticate') ?? '', /error="invalid_token"/);

  const second = await obtainToken(await endpointsFrom(`${sb.secondIssuer}/.well-known/oauth-authorization-server`), { resource: sb.mcpUrl, scope: 'mcp:tools' });
  assert.equal((await mcpPost(sb.mcpUrl, initializeBody, { token: second.accessToken })).status, 200);

  const { issuers, mcpLog } = sb.counters;
  assert.deepEqual(Object.keys(issuers).sort(), [sb.issuer, sb.secondIssuer].sort());
  assert.deepEqual(issuers[sb.secondIssuer].registrations, [second.clientId]);
  assert.ok(issuers[sb.issuer].issued.includes(fingerprint(first.accessToken)));
  assert.ok(!issuers[sb.secondIssuer].issued.includes(fingerprint(first.accessToken)));
  assert.deepEqual(mcpLog.map((e) => [e.tokenIssuer, e.status]), [[sb.issuer, 200], [sb.issuer, 401], [sb.secondIssuer, 200]]);
  assert.equal(sb.switchAuthorizationServer(), sb.issuer, 'and back');
});

test('mcp-oauth sandbox --discovery MODE --second-issuer: the mode is served; "switch-as" on stdin moves the MCP server; a bad mode is a usage error', async () => {
  const h = await makeHome(process.env.MCP_OAUTH_SOURCE ? { MCP_OAUTH_SOURCE: process.env.MCP_OAUTH_SOURCE } : {});
  try {
    const bad = await runCli(['sandbox', '--discovery', 'bogus'], { env: h.env });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--discovery takes one of standard, resource-prefix/);

    const child = spawn(process.execPath, [cliPath, 'sandbox', '--discovery', 'trailing-slash-issuer', '--second-issuer', '--json'], { env: h.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    try {
      const started = await new Promise<Record<string, string>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`sandbox did not start: ${out} ${err}`)), 30_000);
        child.stdout.on('data', () => {
          try {
            const info = JSON.parse(out);
            clearTimeout(timer);
            resolve(info);
          } catch {
            // not complete yet
          }
        });
      });
      assert.equal(started.discovery, 'trailing-slash-issuer');
      assert.ok(started.second_issuer);
      const prmUrl = `${new URL(started.mcp_url).origin}${PRM}/mcp`;
      assert.deepEqual((await json(prmUrl)).authorization_servers, [`${started.issuer}/`]);
      child.stdin.write('switch-as\n');
      await new Promise<void>((resolve) => {
        const check = () => /now uses/.test(err) && resolve();
        child.stderr.on('data', check);
        check();
      });
      assert.deepEqual((await json(prmUrl)).authorization_servers, [`${started.second_issuer}/`]);
    } finally {
      child.kill('SIGINT');
      await new Promise((resolve) => child.on('close', resolve));
    }
  } finally {
    await h.cleanup();
  }
});
