// Enterprise-managed authorization (SEP-990), the client side (src/signin/enterprise.ts) against the
// sandbox's enterprise IdP (src/sandbox/enterprise-idp.ts): one IdP sign-in for every MCP server
// configured with that IdP, ID tokens refreshed at the IdP without a browser (once for concurrent
// callers), refusals that name the IdP and lose nothing, and signin_required when nobody can sign in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { startSandbox, TOKEN_EXCHANGE_GRANT, type Sandbox } from '../src/sandbox/index.ts';
import { followAuthorizeUrl } from '../src/sandbox/headless-browser.ts';
import { FileCredentialStore } from '../src/store/file-store.ts';
import { MemoryCredentialStore } from '../src/store/memory-store.ts';
import { requestJwtBearerToken } from '../src/oauth/grants.ts';
import { idpCredentialKey, obtainIdJag, type ObtainIdJagOptions } from '../src/signin/enterprise.ts';
import { isMcpOAuthError, type McpOAuthError } from '../src/errors.ts';
import type { BrowserMode } from '../src/signin/flow.ts';
import type { CredentialStore, FetchLike, Logger, ServerConfig } from '../src/types.ts';
import { whoami } from './fixtures/sandbox-grant-helpers.ts';
import { sleep } from './fixtures/conc-helpers.ts';

const SECRET_VAR = 'TEST_IDP_CLIENT_SECRET';

function enterpriseServer(name: string, sb: Sandbox, idpIssuer: string, clientId: string): ServerConfig {
  return {
    name, url: sb.mcpUrl, source: 'config', httpHeaders: {}, envHttpHeaders: {},
    oauth: { authorizeParams: {}, grant: 'enterprise', enterprise: { issuer: idpIssuer, clientId, clientSecretEnvVar: SECRET_VAR } },
  };
}

/** The sandbox's auto-approve "browser", counting the authorize URLs it was given. */
function countingBrowser(): { browser: BrowserMode; opened: string[] } {
  const opened: string[] = [];
  return { opened, browser: { mode: 'custom', open: async (url) => void (opened.push(url), await followAuthorizeUrl(url)) } };
}

function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
  return { lines, logger: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') } };
}

async function tempStore(t: { after(fn: () => Promise<void>): void }): Promise<FileCredentialStore> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-oauth-enterprise-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return new FileCredentialStore(dir);
}

/** One MCP server of the enterprise sandbox, ready for obtainIdJag. */
function callerFor(sb: Sandbox, server: ServerConfig, base: { store: CredentialStore; env: NodeJS.ProcessEnv; logger: Logger }) {
  return (extra: Partial<ObtainIdJagOptions> = {}) => obtainIdJag({
    server, store: base.store, fetch, env: base.env, logger: base.logger,
    mcpIssuer: sb.issuer, resource: sb.resource, scopes: ['mcp:tools'], interactive: false, ...extra,
  });
}

async function rejection(p: Promise<unknown>): Promise<McpOAuthError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isMcpOAuthError(err), `expected an McpOAuthError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

test('one IdP sign-in serves two MCP servers; an expired ID token is refreshed at the IdP without a browser, once for concurrent callers', async (t) => {
  const sb = await startSandbox({ grant: 'enterprise', idTokenTtlSeconds: 3 });
  t.after(() => sb.close());
  const idp = sb.idp!;
  const sb2 = await startSandbox({ grant: 'enterprise', enterpriseIdp: idp });
  t.after(() => sb2.close());
  const store = await tempStore(t);
  const { logger, lines } = recordingLogger();
  const env = { [SECRET_VAR]: idp.client.clientSecret };
  const alpha = callerFor(sb, enterpriseServer('alpha', sb, idp.issuer, idp.client.clientId), { store, env, logger });
  const beta = callerFor(sb2, enterpriseServer('beta', sb2, idp.issuer, idp.client.clientId), { store, env, logger });
  const { browser, opened } = countingBrowser();

  // 1. No IdP session yet: one browser sign-in at the IdP (openid + offline_access, PKCE), then the exchange.
  const first = await alpha({ interactive: { browser } });
  assert.equal(opened.length, 1);
  assert.equal(idp.counters.authorizeRequests.length, 1);
  const authorize = idp.counters.authorizeRequests[0];
  assert.deepEqual(authorize.scope.split(' '), ['openid', 'offline_access']);
  assert.equal(authorize.code_challenge_method, 'S256');
  assert.ok(authorize.nonce && authorize.state);
  assert.equal(authorize.resource, undefined, 'no RFC 8707 resource at the IdP');
  const jag = decodeJwt(first.assertion);
  assert.equal(jag.iss, idp.issuer);
  assert.equal(jag.aud, sb.issuer, 'the ID-JAG is for the MCP authorization server');
  assert.equal(jag.resource, sb.resource);
  assert.equal(jag.client_id, sb.grantClients.enterprise!.clientId);
  assert.equal(jag.scope, 'mcp:tools');
  assert.ok(first.expiresAt && first.expiresAt > Date.now());

  // The ID-JAG gets an MCP access token with the JWT bearer grant, and the MCP server takes it.
  const mcpClient = sb.grantClients.enterprise!;
  const tokens = await requestJwtBearerToken({
    tokenEndpoint: `${sb.issuer}/token`, assertion: first.assertion, scopes: ['mcp:tools'], resource: sb.resource, fetch, now: Date.now(),
    client: { clientId: mcpClient.clientId, clientSecret: mcpClient.clientSecret, method: 'client_secret_basic' },
  });
  assert.equal((await whoami(sb, { token: tokens.accessToken })).sub, jag.sub);

  // The IdP credential: one per IdP, ID token + refresh token, no IdP access token kept.
  const stored = await store.get(idpCredentialKey(idp.issuer));
  assert.ok(stored?.idToken && stored.refreshToken);
  assert.equal(stored.accessToken, undefined);
  assert.equal(stored.clientId, idp.client.clientId);
  assert.equal(stored.tokenEndpointAuthMethod, 'client_secret_basic');
  assert.equal(stored.expiresAt, (decodeJwt(stored.idToken).exp as number) * 1000);
  assert.equal((await store.list()).length, 1);

  // 2. Another MCP server with the same IdP: the IdP session is reused (no browser, no authorize).
  const second = await beta();
  assert.equal(decodeJwt(second.assertion).aud, sb2.issuer);
  assert.equal(decodeJwt(second.assertion).sub, jag.sub);
  assert.equal(opened.length, 1);
  assert.equal(idp.counters.authorizeRequests.length, 1);
  assert.equal(idp.counters.tokenRequests.refresh_token, undefined);
  assert.equal(idp.counters.tokenRequests[TOKEN_EXCHANGE_GRANT], 2);

  // 3. The ID token expires: both servers at once need a new one; one refresh at the IdP serves both.
  await sleep(stored.expiresAt! - Date.now() + 200);
  const [a2, b2] = await Promise.all([alpha(), beta()]);
  assert.equal(decodeJwt(a2.assertion).aud, sb.issuer);
  assert.equal(decodeJwt(b2.assertion).aud, sb2.issuer);
  assert.equal(idp.counters.tokenRequests.refresh_token, 1, 'one refresh for two concurrent callers');
  assert.equal(idp.counters.refreshReuseDetected, 0);
  assert.equal(idp.counters.authorizeRequests.length, 1, 'no browser while the IdP session lasts');
  const refreshed = await store.get(idpCredentialKey(idp.issuer));
  assert.notEqual(refreshed!.idToken, stored.idToken);
  assert.notEqual(refreshed!.refreshToken, stored.refreshToken, 'the rotated refresh token is persisted');
  assert.ok(refreshed!.expiresAt! > Date.now());

  // Secrets never reach the log; what happened does.
  assert.ok(lines.some((l) => l.includes('signed in to the enterprise identity provider')));
  assert.ok(lines.some((l) => l.includes('refreshed the enterprise identity provider session')));
  for (const secret of [stored.idToken, stored.refreshToken, refreshed!.idToken!, refreshed!.refreshToken!, first.assertion, second.assertion, idp.client.clientSecret]) {
    assert.ok(!lines.some((l) => l.includes(secret)), 'no secret in the log');
  }
});

test('an exchange the IdP refuses is a clear error naming the IdP, and the IdP session is kept', async (t) => {
  const sb = await startSandbox({ grant: 'enterprise' });
  t.after(() => sb.close());
  const idp = sb.idp!;
  const store = await tempStore(t);
  const alpha = callerFor(sb, enterpriseServer('alpha', sb, idp.issuer, idp.client.clientId), { store, env: { [SECRET_VAR]: idp.client.clientSecret }, logger: recordingLogger().logger });
  const { browser, opened } = countingBrowser();
  await alpha({ interactive: { browser } });
  const before = await store.get(idpCredentialKey(idp.issuer));

  // The administrator's policy no longer lets this client reach the MCP server (the sandbox says invalid_grant).
  idp.denyExchange = true;
  const err = await rejection(alpha({ interactive: { browser } }));
  assert.equal(err.code, 'signin_denied');
  assert.equal(err.oauthError, 'invalid_grant');
  assert.match(err.message, new RegExp(`identity provider ${idp.issuer} refused .*alpha.*${sb.issuer}`));
  assert.match(err.message, /policy does not allow/, 'the IdP\'s own words');
  assert.match(err.hint!, new RegExp(`ask the administrator of ${idp.issuer}`));
  assert.match(err.hint!, /mcp-oauth login alpha/);
  assert.equal(err.details?.idp, idp.issuer);
  // A refusal of the stored ID token is tried once more with a refreshed one; still no browser.
  assert.equal(idp.counters.grants[TOKEN_EXCHANGE_GRANT].refused.denied, 2);
  assert.equal(idp.counters.tokenRequests.refresh_token, 1);
  assert.equal(opened.length, 1);

  // Nothing lost: the IdP credential is there, not marked, and works once the policy allows it again.
  const after = await store.get(idpCredentialKey(idp.issuer));
  assert.ok(after?.idToken && after.refreshToken);
  assert.equal(after.needsSignIn, undefined);
  assert.notEqual(after.refreshToken, before!.refreshToken);
  idp.denyExchange = false;
  const ok = await alpha();
  assert.equal(decodeJwt(ok.assertion).aud, sb.issuer);
  assert.equal(opened.length, 1);

  // An MCP authorization server the IdP has no trust relationship with (invalid_target): the same kind of error.
  const unknown = await rejection(alpha({ mcpIssuer: 'https://unknown-as.example' }));
  assert.equal(unknown.code, 'signin_denied');
  assert.equal(unknown.oauthError, 'invalid_target');
  assert.equal(idp.counters.tokenRequests.refresh_token, 1, 'only invalid_grant is retried with a refreshed ID token');
});

test('no IdP session: signin_required naming the login command; a session the IdP ended is marked, then replaced by a browser sign-in', async (t) => {
  const sb = await startSandbox({ grant: 'enterprise' });
  t.after(() => sb.close());
  const idp = sb.idp!;
  const store = new MemoryCredentialStore();
  const alpha = callerFor(sb, enterpriseServer('alpha', sb, idp.issuer, idp.client.clientId), { store, env: { [SECRET_VAR]: idp.client.clientSecret }, logger: recordingLogger().logger });
  const { browser, opened } = countingBrowser();

  const none = await rejection(alpha());
  assert.equal(none.code, 'signin_required');
  assert.match(none.message, new RegExp(`alpha.*sign in to the identity provider ${idp.issuer}.*not signed in`));
  assert.equal(none.hint, 'mcp-oauth login alpha');
  assert.equal(idp.counters.authorizeRequests.length + Object.keys(idp.counters.tokenRequests).length, 0, 'not a single request to the IdP');

  await alpha({ interactive: { browser } });
  assert.equal(opened.length, 1);

  // The IdP no longer takes the refresh token (here: a bogus one) when the ID token has expired.
  const key = idpCredentialKey(idp.issuer);
  await store.put({ ...(await store.get(key))!, refreshToken: 'revoked-refresh-token' });
  const later = () => Date.now() + 2 * 3600_000;
  const ended = await rejection(alpha({ clock: later }));
  assert.equal(ended.code, 'signin_required');
  assert.match(ended.message, /ended the session \(invalid_grant/);
  assert.equal(ended.hint, 'mcp-oauth login alpha');
  const marked = await store.get(key);
  assert.equal(marked?.needsSignIn?.oauthError, 'invalid_grant');
  // Marked: even with a clock that finds the ID token valid, a sign-in is needed.
  assert.equal((await rejection(alpha())).code, 'signin_required');
  assert.equal(opened.length, 1);

  // Interactive: the browser sign-in replaces the session; forceSignIn signs in although one exists.
  await alpha({ interactive: { browser }, clock: later });
  assert.equal(opened.length, 2);
  assert.equal((await store.get(key))?.needsSignIn, undefined);
  await alpha({ interactive: { browser }, forceSignIn: true });
  assert.equal(opened.length, 3);
  await alpha();
  assert.equal(opened.length, 3);
  assert.equal(idp.counters.authorizeRequests.length, 3);
});

// Faults the sandbox's IdP does not produce, with a fake token endpoint (no network at all).
const fakeIdp = 'http://127.0.0.1:9';
const unsignedJwt = (claims: Record<string, unknown>) =>
  `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
const fakeServer: ServerConfig = {
  name: 'gamma', url: 'http://127.0.0.1:9/mcp', source: 'config', httpHeaders: {}, envHttpHeaders: {},
  oauth: { authorizeParams: {}, enterprise: { issuer: fakeIdp, clientId: 'idp-client' } },
};

async function storedSession(store: CredentialStore, idTokenClaims: Record<string, unknown>) {
  const now = Math.floor(Date.now() / 1000);
  await store.put({
    key: idpCredentialKey(fakeIdp), idToken: unsignedJwt({ iss: fakeIdp, sub: 'u1', aud: 'idp-client', iat: now - 7200, exp: now - 3600, ...idTokenClaims }),
    refreshToken: 'r1', tokenType: 'Bearer', scopes: ['openid'], clientId: 'idp-client', tokenEndpoint: `${fakeIdp}/token`, tokenEndpointAuthMethod: 'none', obtainedAt: Date.now(),
  });
}

function fakeTokenEndpoint(body: Record<string, unknown>): { fetch: FetchLike; grants: string[] } {
  const grants: string[] = [];
  return {
    grants,
    fetch: async (_url, init) => {
      grants.push(new URLSearchParams(String(init?.body)).get('grant_type')!);
      return Response.json(body);
    },
  };
}

test('a refresh without a new ID token keeps the rotated refresh token and asks for a sign-in', async () => {
  const store = new MemoryCredentialStore();
  await storedSession(store, {});
  const idp = fakeTokenEndpoint({ access_token: 'at', token_type: 'Bearer', refresh_token: 'r2' });
  const err = await rejection(obtainIdJag({
    server: fakeServer, store, fetch: idp.fetch, env: {}, logger: recordingLogger().logger, mcpIssuer: 'http://127.0.0.1:9/as', resource: undefined, scopes: [], interactive: false,
  }));
  assert.equal(err.code, 'signin_required');
  assert.match(err.message, /refresh gave no new ID token/);
  assert.deepEqual(idp.grants, ['refresh_token'], 'no exchange with the expired ID token');
  const after = await store.get(idpCredentialKey(fakeIdp));
  assert.equal(after?.refreshToken, 'r2');
  assert.ok(after?.needsSignIn);
});

test('a refreshed ID token for another user is refused and never exchanged; the rotated refresh token is kept', async () => {
  const store = new MemoryCredentialStore();
  await storedSession(store, {});
  const now = Math.floor(Date.now() / 1000);
  const idp = fakeTokenEndpoint({ access_token: 'at', token_type: 'Bearer', refresh_token: 'r2', id_token: unsignedJwt({ iss: fakeIdp, sub: 'someone-else', aud: 'idp-client', iat: now, exp: now + 3600 }) });
  const err = await rejection(obtainIdJag({
    server: fakeServer, store, fetch: idp.fetch, env: {}, logger: recordingLogger().logger, mcpIssuer: 'http://127.0.0.1:9/as', resource: undefined, scopes: [], interactive: false,
  }));
  assert.equal(err.code, 'token_response_invalid');
  assert.match(err.message, /names another user/);
  assert.deepEqual(idp.grants, ['refresh_token']);
  assert.equal((await store.get(idpCredentialKey(fakeIdp)))?.refreshToken, 'r2');
});

test('configuration problems are reported before any request', async () => {
  const idp = fakeTokenEndpoint({});
  const call = (server: ServerConfig) => obtainIdJag({
    server, store: new MemoryCredentialStore(), fetch: idp.fetch, env: {}, logger: recordingLogger().logger, mcpIssuer: 'http://127.0.0.1:9/as', resource: undefined, scopes: [], interactive: false,
  });
  const noSecret = await rejection(call({ ...fakeServer, oauth: { authorizeParams: {}, enterprise: { issuer: fakeIdp, clientId: 'c', clientSecretEnvVar: 'UNSET_IDP_SECRET' } } }));
  assert.equal(noSecret.code, 'config_invalid');
  assert.match(noSecret.message, /\$UNSET_IDP_SECRET, which is not set/);
  const noIdp = await rejection(call({ ...fakeServer, oauth: { authorizeParams: {} } }));
  assert.equal(noIdp.code, 'config_invalid');
  assert.match(noIdp.hint!, /\[mcp_servers\.gamma\.oauth\.enterprise\]/);
  assert.deepEqual(idp.grants, []);
});
