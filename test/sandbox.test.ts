import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startSandbox } from '../src/sandbox/index.ts';
import type { Sandbox } from '../src/sandbox/index.ts';
import { TOOL_NAMES } from '../src/sandbox/tool-catalog.ts';

const REDIRECT_PORT = 53682;
const redirectUri = `http://127.0.0.1:${REDIRECT_PORT}/callback`;

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

async function register(sb: Sandbox, uri = redirectUri): Promise<string> {
  const res = await fetch(`${sb.issuer}/reg`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      application_type: 'native',
      client_name: 'sandbox test',
      redirect_uris: [uri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { client_id: string }).client_id;
}

type CookieJar = Map<string, string>;

/** One request like a browser: send the jar's cookies, keep the ones set (paths ignored: fine here). */
async function browse(jar: CookieJar, url: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, {
    ...init,
    redirect: 'manual',
    headers: { ...(init.headers as Record<string, string>), cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
  });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return res;
}

/** Follow redirects until the redirect_uri (returned, never fetched) or a page (returned as Response). */
async function follow(jar: CookieJar, url: string, init?: RequestInit): Promise<URL | Response> {
  let res = await browse(jar, url, init);
  let current = url;
  for (let hop = 0; hop < 10; hop++) {
    const location = res.headers.get('location');
    if (!location) return res;
    const target = new URL(location, current);
    if (target.pathname === '/callback') return target;
    current = target.href;
    res = await browse(jar, current);
  }
  throw new Error('too many redirects');
}

function authorizeUrl(sb: Sandbox, params: Record<string, string | string[]>): string {
  const url = new URL(`${sb.issuer}/auth`);
  for (const [k, v] of Object.entries(params)) for (const one of [v].flat()) url.searchParams.append(k, one);
  return url.href;
}

/** Headless sign-in against autoApprove: only redirects, like a $BROWSER script using fetch. */
async function authorize(sb: Sandbox, params: Record<string, string | string[]>): Promise<URL> {
  const result = await follow(new Map(), authorizeUrl(sb, params));
  assert.ok(result instanceof URL, `expected the redirect_uri, got ${result instanceof Response ? result.status : ''}`);
  return result;
}

async function tokenRequest(sb: Sandbox, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${sb.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function signIn(sb: Sandbox, scope = 'mcp:tools offline_access') {
  const clientId = await register(sb);
  const { verifier, challenge } = pkce();
  const state = randomBytes(8).toString('hex');
  const callback = await authorize(sb, {
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state,
    code_challenge: challenge, code_challenge_method: 'S256', resource: sb.mcpUrl,
  });
  assert.equal(callback.searchParams.get('state'), state);
  assert.equal(callback.searchParams.get('iss'), sb.issuer, 'RFC 9207 iss in the authorization response');
  const code = callback.searchParams.get('code');
  assert.ok(code, callback.href);
  const tokens = await tokenRequest(sb, {
    grant_type: 'authorization_code', client_id: clientId, code, code_verifier: verifier, redirect_uri: redirectUri, resource: sb.mcpUrl,
  });
  assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
  return { clientId, tokens: tokens.body };
}

function decodeJwt(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

async function mcpPost(sb: Sandbox, token: string | undefined, body: unknown, sessionId?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (sessionId) headers['mcp-session-id'] = sessionId;
  const res = await fetch(sb.mcpUrl, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await res.text();
  // Streamable HTTP answers either JSON or an SSE stream with the JSON-RPC response in a data: line.
  const data = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
  return { res, message: data.at(-1) ?? (text ? JSON.parse(text) : undefined) };
}

const initialize = {
  jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'sandbox-test', version: '0' } },
};

async function openSession(sb: Sandbox, token: string): Promise<string> {
  const { res, message } = await mcpPost(sb, token, initialize);
  assert.equal(res.status, 200);
  assert.equal(message.result.serverInfo.name, 'mcp-oauth-sandbox');
  const sessionId = res.headers.get('mcp-session-id');
  assert.ok(sessionId);
  await mcpPost(sb, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId);
  return sessionId;
}

test('metadata: AS (RFC 8414 + OIDC) and protected resource (RFC 9728)', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.close());
  assert.match(sb.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    const meta = (await (await fetch(sb.issuer + path)).json()) as Record<string, any>;
    assert.equal(meta.issuer, sb.issuer, path);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.ok(meta.scopes_supported.includes('offline_access'));
    assert.ok(meta.scopes_supported.includes('mcp:tools'));
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    assert.ok(meta.registration_endpoint);
    assert.ok(meta.revocation_endpoint);
  }
  const origin = new URL(sb.mcpUrl).origin;
  for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
    const prm = (await (await fetch(origin + path)).json()) as Record<string, any>;
    assert.equal(prm.resource, sb.mcpUrl);
    assert.deepEqual(prm.authorization_servers, [sb.issuer]);
    assert.ok(prm.scopes_supported.includes('mcp:tools'));
  }
  const res = await fetch(sb.mcpUrl, { method: 'POST', body: '{}' });
  assert.equal(res.status, 401);
  const www = res.headers.get('www-authenticate') ?? '';
  assert.match(www, /^Bearer /);
  assert.match(www, new RegExp(`resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`));
  assert.match(www, /scope="mcp:tools"/);
  assert.doesNotMatch(www, /error=/);
  assert.equal(sb.counters.mcp401, 1);
});

test('full flow: DCR, PKCE, resource, MCP calls, rotation, reuse detection', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.close());
  const { clientId, tokens } = await signIn(sb);
  assert.equal(sb.counters.registrations, 1);
  assert.equal(sb.counters.authorizeRequests[0].resource, sb.mcpUrl);
  assert.ok(tokens.refresh_token, 'refresh token issued');
  const claims = decodeJwt(tokens.access_token);
  assert.equal(claims.aud, sb.mcpUrl, 'RFC 8707: audience is the MCP server');
  assert.equal(claims.client_id, clientId);
  assert.deepEqual(sb.counters.tokenRequestLog.map((e) => [e.grantType, e.resource, e.concurrent]), [['authorization_code', [sb.mcpUrl], 1]]);

  const sessionId = await openSession(sb, tokens.access_token);
  const list = await mcpPost(sb, tokens.access_token, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sessionId);
  const names = list.message.result.tools.map((tool: { name: string }) => tool.name).sort();
  assert.deepEqual(names, [...TOOL_NAMES].sort());
  const who = await mcpPost(sb, tokens.access_token, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'whoami', arguments: {} } }, sessionId);
  const me = JSON.parse(who.message.result.content[0].text);
  assert.equal(me.client_id, clientId);
  assert.equal(me.sub, 'demo');
  assert.match(me.scope, /mcp:tools/);
  const big = await mcpPost(sb, tokens.access_token, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'big', arguments: { kb: 3 } } }, sessionId);
  assert.equal(big.message.result.content[0].text.length, 3 * 1024);

  // admin_echo needs mcp:admin → 403 insufficient_scope naming every needed scope.
  const admin = await mcpPost(sb, tokens.access_token, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'admin_echo', arguments: { text: 'x' } } }, sessionId);
  assert.equal(admin.res.status, 403);
  assert.match(admin.res.headers.get('www-authenticate') ?? '', /error="insufficient_scope".*scope="mcp:tools mcp:admin"/);
  assert.equal(sb.counters.mcp403, 1);

  // Rotation: every refresh returns a new refresh token.
  const first = await tokenRequest(sb, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token, resource: sb.mcpUrl });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.ok(first.body.refresh_token);
  assert.notEqual(first.body.refresh_token, tokens.refresh_token);
  assert.equal(decodeJwt(first.body.access_token).aud, sb.mcpUrl);
  assert.equal(sb.counters.tokenRequests.refresh_token, 1);

  // Reuse of the consumed refresh token → invalid_grant, grant revoked (new refresh token dead too).
  const reuse = await tokenRequest(sb, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token, resource: sb.mcpUrl });
  assert.equal(reuse.status, 400);
  assert.equal(reuse.body.error, 'invalid_grant');
  assert.equal(sb.counters.refreshReuseDetected, 1);
  const after = await tokenRequest(sb, { grant_type: 'refresh_token', client_id: clientId, refresh_token: first.body.refresh_token, resource: sb.mcpUrl });
  assert.equal(after.body.error, 'invalid_grant');
  const dead = await mcpPost(sb, first.body.access_token, { jsonrpc: '2.0', id: 6, method: 'tools/list' }, sessionId);
  assert.equal(dead.res.status, 401);
  assert.match(dead.res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  assert.equal(sb.counters.tokenRequests.refresh_token, 3);
  assert.ok(sb.counters.mcpRequests >= 7);
});

test('a loopback redirect on another port than the registered one is accepted (RFC 8252 §7.3)', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.close());
  const clientId = await register(sb, 'http://127.0.0.1:1/callback');
  const { challenge } = pkce();
  const callback = await authorize(sb, {
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'mcp:tools', state: 's',
    code_challenge: challenge, code_challenge_method: 'S256', resource: sb.mcpUrl,
  });
  assert.equal(callback.port, String(REDIRECT_PORT));
  assert.ok(callback.searchParams.get('code'));
});

test('googleMode: no DCR; refresh token only with access_type=offline and prompt=consent', async (t) => {
  const sb = await startSandbox({ googleMode: true });
  t.after(() => sb.close());
  assert.ok(sb.googleClient);
  const meta = (await (await fetch(`${sb.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, any>;
  assert.equal(meta.registration_endpoint, undefined);
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(sb.googleClient.clientId)}:${encodeURIComponent(sb.googleClient.clientSecret)}`).toString('base64')}`;

  async function codeFlow(extra: Record<string, string>) {
    const { verifier, challenge } = pkce();
    const callback = await authorize(sb, {
      response_type: 'code', client_id: sb.googleClient!.clientId, redirect_uri: redirectUri, scope: 'openid mcp:tools', state: 's',
      code_challenge: challenge, code_challenge_method: 'S256', ...extra,
    });
    const code = callback.searchParams.get('code');
    assert.ok(code, callback.href);
    const res = await tokenRequest(sb, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri }, { authorization: basic });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  }
  const plain = await codeFlow({});
  assert.equal(plain.refresh_token, undefined);
  assert.equal(decodeJwt(plain.access_token).aud, sb.mcpUrl);
  assert.equal((await codeFlow({ access_type: 'offline' })).refresh_token, undefined);
  const offline = await codeFlow({ access_type: 'offline', prompt: 'consent' });
  assert.ok(offline.refresh_token);
  assert.equal(sb.counters.authorizeRequests[2].access_type, 'offline');
  // Google does not rotate: the refresh response carries no new refresh token.
  const refreshed = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: offline.refresh_token }, { authorization: basic });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  assert.equal(refreshed.body.refresh_token, undefined);
});

test('revokeAllGrants: MCP answers 401 invalid_token and the token endpoint invalid_grant', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.close());
  const { clientId, tokens } = await signIn(sb);
  await openSession(sb, tokens.access_token);
  await sb.revokeAllGrants();
  const { res } = await mcpPost(sb, tokens.access_token, initialize);
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  const refresh = await tokenRequest(sb, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token, resource: sb.mcpUrl });
  assert.equal(refresh.body.error, 'invalid_grant');
  // A new sign-in works again.
  const again = await signIn(sb);
  await openSession(sb, again.tokens.access_token);
});

test('token endpoint fault injection: 503 N times, then the real provider answers', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.close());
  const { clientId, tokens } = await signIn(sb);
  sb.setTokenEndpointFault({ status: 503, times: 2 });
  const form = { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token, resource: sb.mcpUrl };
  for (let i = 0; i < 2; i++) {
    const res = await tokenRequest(sb, form);
    assert.equal(res.status, 503);
    assert.equal(res.body.error, 'temporarily_unavailable');
  }
  const ok = await tokenRequest(sb, form);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(sb.counters.tokenRequests.refresh_token, 3);
  assert.equal(sb.counters.refreshReuseDetected, 0, 'faulted requests never reached the provider');
  sb.resetCounters();
  assert.deepEqual(sb.counters.tokenRequests, {});
});

test('short access token TTL: the token expires', async (t) => {
  const sb = await startSandbox({ accessTokenTtlSeconds: 1 });
  t.after(() => sb.close());
  const { tokens } = await signIn(sb);
  assert.equal(tokens.expires_in, 1);
  await openSession(sb, tokens.access_token);
  await new Promise((r) => setTimeout(r, 2100));
  const { res } = await mcpPost(sb, tokens.access_token, initialize);
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
});

test('dropSessions: an old Mcp-Session-Id gets 404', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.close());
  const { tokens } = await signIn(sb, 'mcp:tools');
  const sessionId = await openSession(sb, tokens.access_token);
  await sb.dropSessions();
  const { res } = await mcpPost(sb, tokens.access_token, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sessionId);
  assert.equal(res.status, 404);
});

test('autoApprove: false serves a real login form (demo/demo) and a consent page', async (t) => {
  const sb = await startSandbox({ autoApprove: false });
  t.after(() => sb.close());
  const clientId = await register(sb);
  const { challenge } = pkce();
  const jar: CookieJar = new Map();
  const login = await follow(jar, authorizeUrl(sb, {
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'mcp:tools offline_access', state: 'st',
    code_challenge: challenge, code_challenge_method: 'S256', resource: sb.mcpUrl,
  }));
  assert.ok(login instanceof Response);
  assert.equal(login.status, 200);
  const loginHtml = await login.text();
  const loginAction = /action="([^"]+\/login)"/.exec(loginHtml)?.[1];
  assert.ok(loginAction, loginHtml);
  const form = (username: string, password: string) => ({
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ username, password }).toString(),
  });
  const wrong = await browse(jar, sb.issuer + loginAction, form('demo', 'nope'));
  assert.equal(wrong.status, 401);
  assert.match(await wrong.text(), /Wrong username or password/);

  const consent = await follow(jar, sb.issuer + loginAction, form('demo', 'demo'));
  assert.ok(consent instanceof Response);
  const consentHtml = await consent.text();
  assert.match(consentHtml, /Approve/);
  assert.match(consentHtml, /mcp:tools/);
  const confirm = /action="([^"]+\/confirm)"/.exec(consentHtml)?.[1];
  assert.ok(confirm, consentHtml);
  const callback = await follow(jar, sb.issuer + confirm, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'approve=yes' });
  assert.ok(callback instanceof URL);
  assert.equal(callback.searchParams.get('state'), 'st');
  assert.ok(callback.searchParams.get('code'));
  assert.equal(callback.searchParams.get('iss'), sb.issuer);
});

test('MCP tools over the SDK client: progress, elicitation (ask), session DELETE', async (t) => {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  const { ElicitRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
  const sb = await startSandbox();
  t.after(() => sb.close());
  const { tokens } = await signIn(sb, 'mcp:tools');
  const transport = new StreamableHTTPClientTransport(new URL(sb.mcpUrl), {
    requestInit: { headers: { authorization: `Bearer ${tokens.access_token}` } },
  });
  const client = new Client({ name: 'sandbox-test', version: '0' }, { capabilities: { elicitation: { form: {} } } });
  const asked: string[] = [];
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    asked.push(request.params.message);
    return { action: 'accept', content: { answer: 'blue' } };
  });
  await client.connect(transport);
  t.after(() => client.close());

  const progress: number[] = [];
  const slow = await client.callTool({ name: 'slow', arguments: { ms: 50 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
  assert.deepEqual(progress, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal((slow.content as Array<{ text: string }>)[0].text, 'slept 50 ms');

  const ask = await client.callTool({ name: 'ask', arguments: { question: 'Colour?' } });
  assert.deepEqual(asked, ['Colour?']);
  assert.deepEqual(JSON.parse((ask.content as Array<{ text: string }>)[0].text), { action: 'accept', content: { answer: 'blue' } });

  const echo = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
  assert.equal((echo.content as Array<{ text: string }>)[0].text, 'hi');

  const sessionId = transport.sessionId;
  assert.ok(sessionId);
  await transport.terminateSession();
  const { res } = await mcpPost(sb, tokens.access_token, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, sessionId);
  assert.equal(res.status, 404, 'DELETE ended the session');
});
