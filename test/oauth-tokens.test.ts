import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMcpOAuthError, type McpOAuthError } from '../src/errors.ts';
import {
  credentialFromTokenSet,
  exchangeAuthorizationCode,
  expiresAtFrom,
  mergeRefreshedCredential,
  refreshAccessToken,
  revokeToken,
  type ClientAuth,
} from '../src/oauth/tokens.ts';
import type { Credential, FetchLike, TokenSet } from '../src/types.ts';

interface Captured {
  url: string;
  method: string;
  headers: Headers;
  body: URLSearchParams;
  rawBody: string;
}

/** In-memory fetch: records every request and answers with the next queued response. */
function stubFetch(...responses: Array<Response | (() => Response) | Error>): { fetch: FetchLike; requests: Captured[] } {
  const requests: Captured[] = [];
  const fetch: FetchLike = async (input, init) => {
    const rawBody = String(init?.body ?? '');
    requests.push({
      url: String(input),
      method: init?.method ?? 'GET',
      headers: new Headers(init?.headers),
      body: new URLSearchParams(rawBody),
      rawBody,
    });
    const next = responses.shift();
    if (next === undefined) throw new Error('unexpected request');
    if (next instanceof Error) throw next;
    return typeof next === 'function' ? next() : next;
  };
  return { fetch, requests };
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers } });

const NOW = 1_800_000_000_000;
const TOKEN_ENDPOINT = 'https://as.example.com/token';
const RESOURCE = 'https://mcp.example.com/mcp';
const REFRESH = 'rt-SECRET-refresh-token-0123456789';
const SECRET = 'cs-SECRET-client-secret-abcdefgh';
const publicClient: ClientAuth = { clientId: 'client-1', method: 'none' };

function refresh(fetch: FetchLike, client: ClientAuth = publicClient) {
  return refreshAccessToken({ tokenEndpoint: TOKEN_ENDPOINT, client, refreshToken: REFRESH, resource: RESOURCE, fetch, now: NOW });
}

async function rejection(p: Promise<unknown>): Promise<McpOAuthError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isMcpOAuthError(e), `expected McpOAuthError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

/** No secret in the message, the JSON form, or the hint. */
function assertNoSecrets(e: McpOAuthError, ...secrets: string[]): void {
  const text = `${e.message} ${JSON.stringify(e.toJSON())} ${e.hint ?? ''}`;
  for (const s of secrets) assert.ok(!text.includes(s), `error leaks a secret: ${text}`);
}

function jwtWithExp(exp: number): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'none' })}.${enc({ sub: 'u', exp })}.sig`;
}

describe('code exchange', () => {
  it('posts a form with grant, code, verifier, redirect_uri, resource once, and parses the response', async () => {
    const { fetch, requests } = stubFetch(
      json({ access_token: 'at-1', token_type: 'bearer', expires_in: 3600, refresh_token: 'rt-1', scope: 'a  b', id_token: 'idt' }),
    );
    const tokens = await exchangeAuthorizationCode({
      tokenEndpoint: TOKEN_ENDPOINT,
      client: publicClient,
      code: 'code-1',
      codeVerifier: 'verifier-1',
      redirectUri: 'http://127.0.0.1:9999/callback',
      resource: RESOURCE,
      fetch,
      now: NOW,
    });
    assert.deepEqual(tokens, {
      accessToken: 'at-1',
      tokenType: 'Bearer',
      refreshToken: 'rt-1',
      expiresAt: NOW + 3_600_000,
      scopes: ['a', 'b'],
      idToken: 'idt',
    });
    const [req] = requests;
    assert.equal(req.url, TOKEN_ENDPOINT);
    assert.equal(req.method, 'POST');
    assert.equal(req.headers.get('content-type'), 'application/x-www-form-urlencoded');
    assert.equal(req.headers.get('accept'), 'application/json');
    assert.equal(req.body.get('grant_type'), 'authorization_code');
    assert.equal(req.body.get('code'), 'code-1');
    assert.equal(req.body.get('code_verifier'), 'verifier-1');
    assert.equal(req.body.get('redirect_uri'), 'http://127.0.0.1:9999/callback');
    assert.equal(req.body.get('client_id'), 'client-1');
    assert.deepEqual(req.body.getAll('resource'), [RESOURCE]);
    assert.equal(req.headers.has('authorization'), false);
  });

  it('refuses a plain-http token endpoint off loopback before sending anything', async () => {
    const { fetch, requests } = stubFetch();
    const e = await rejection(
      refreshAccessToken({ tokenEndpoint: 'http://as.example.com/token', client: publicClient, refreshToken: REFRESH, resource: RESOURCE, fetch, now: NOW }),
    );
    assert.equal(e.code, 'insecure_url');
    assert.equal(requests.length, 0);
  });
});

describe('client authentication (RFC 6749 §2.3.1)', () => {
  it('client_secret_basic form-urlencodes id and secret before base64', async () => {
    const { fetch, requests } = stubFetch(json({ access_token: 'at', token_type: 'Bearer' }));
    await refresh(fetch, { clientId: 'my client:1', clientSecret: 'p@ss:w rd/+', method: 'client_secret_basic' });
    const auth = requests[0].headers.get('authorization') ?? '';
    assert.match(auth, /^Basic /);
    assert.equal(Buffer.from(auth.slice(6), 'base64').toString(), 'my+client%3A1:p%40ss%3Aw+rd%2F%2B');
    assert.equal(requests[0].body.has('client_secret'), false);
    assert.equal(requests[0].body.has('client_id'), false);
  });

  it('client_secret_post puts id and secret in the body', async () => {
    const { fetch, requests } = stubFetch(json({ access_token: 'at', token_type: 'Bearer' }));
    await refresh(fetch, { clientId: 'c', clientSecret: SECRET, method: 'client_secret_post' });
    assert.equal(requests[0].body.get('client_id'), 'c');
    assert.equal(requests[0].body.get('client_secret'), SECRET);
    assert.equal(requests[0].headers.has('authorization'), false);
  });

  it('none sends only client_id', async () => {
    const { fetch, requests } = stubFetch(json({ access_token: 'at', token_type: 'Bearer' }));
    await refresh(fetch);
    assert.equal(requests[0].body.get('client_id'), 'client-1');
    assert.equal(requests[0].body.has('client_secret'), false);
    assert.equal(requests[0].headers.has('authorization'), false);
  });

  it('a secret-based method without a secret is a configuration error, not a request', async () => {
    const { fetch, requests } = stubFetch();
    const e = await rejection(refresh(fetch, { clientId: 'c', method: 'client_secret_basic' }));
    assert.equal(e.code, 'config_invalid');
    assert.equal(requests.length, 0);
  });
});

describe('refresh', () => {
  it('sends resource exactly once and no scope', async () => {
    const { fetch, requests } = stubFetch(json({ access_token: 'at-2', token_type: 'Bearer', expires_in: '60' }));
    const tokens = await refresh(fetch);
    const body = requests[0].body;
    assert.equal(body.get('grant_type'), 'refresh_token');
    assert.equal(body.get('refresh_token'), REFRESH);
    assert.deepEqual(body.getAll('resource'), [RESOURCE]);
    assert.equal(body.has('scope'), false);
    assert.equal(tokens.expiresAt, NOW + 60_000, 'numeric-string expires_in is accepted');
    assert.equal(tokens.refreshToken, undefined);
    assert.equal(tokens.scopes, undefined);
  });
});

describe('expiry', () => {
  it('expires_in wins over the JWT exp', () => {
    assert.equal(expiresAtFrom({ expires_in: 10 }, jwtWithExp(2_000_000_000), NOW), NOW + 10_000);
  });
  it('falls back to the JWT exp', () => {
    assert.equal(expiresAtFrom({}, jwtWithExp(2_000_000_000), NOW), 2_000_000_000_000);
  });
  it('is unknown for opaque tokens and broken JWTs', () => {
    assert.equal(expiresAtFrom({}, 'opaque-token', NOW), undefined);
    assert.equal(expiresAtFrom({}, 'a.!!!notbase64json.c', NOW), undefined);
    assert.equal(expiresAtFrom({}, `${Buffer.from('{}').toString('base64url')}.${Buffer.from('{"exp":"soon"}').toString('base64url')}.s`, NOW), undefined);
  });
  it('token response without expires_in uses the JWT exp', async () => {
    const { fetch } = stubFetch(json({ access_token: jwtWithExp(1_900_000_000), token_type: 'Bearer' }));
    assert.equal((await refresh(fetch)).expiresAt, 1_900_000_000_000);
  });
});

describe('error mapping', () => {
  it('invalid_grant → oauth_error with the server description, no secrets', async () => {
    const { fetch } = stubFetch(
      json({ error: 'invalid_grant', error_description: `token ${REFRESH} expired` }, 400),
    );
    const e = await rejection(refresh(fetch, { clientId: 'c', clientSecret: SECRET, method: 'client_secret_post' }));
    assert.equal(e.code, 'oauth_error');
    assert.equal(e.oauthError, 'invalid_grant');
    assert.equal(e.status, 400);
    assert.match(e.message, /^The authorization server refused the refresh: invalid_grant \(token sha256:[0-9a-f]{12} expired\)$/);
    assert.equal(e.transient, false);
    assertNoSecrets(e, REFRESH, SECRET);
  });

  it('a JSON error mislabelled as text/plain still yields the OAuth error code', async () => {
    const { fetch } = stubFetch(new Response('{"error":"invalid_grant"}', { status: 400, headers: { 'content-type': 'text/plain' } }));
    const e = await rejection(refresh(fetch));
    assert.equal(e.code, 'oauth_error');
    assert.equal(e.oauthError, 'invalid_grant');
  });

  it('invalid_client → oauth_error with oauthError invalid_client', async () => {
    const { fetch } = stubFetch(json({ error: 'invalid_client' }, 401, { 'www-authenticate': 'Basic' }));
    const e = await rejection(refresh(fetch, { clientId: 'c', clientSecret: SECRET, method: 'client_secret_basic' }));
    assert.equal(e.code, 'oauth_error');
    assert.equal(e.oauthError, 'invalid_client');
    assert.equal(e.status, 401);
    assertNoSecrets(e, REFRESH, SECRET);
  });

  it('503 temporarily_unavailable JSON → server_unavailable with Retry-After', async () => {
    const { fetch } = stubFetch(json({ error: 'temporarily_unavailable' }, 503, { 'retry-after': '30' }));
    const e = await rejection(refresh(fetch));
    assert.equal(e.code, 'server_unavailable');
    assert.equal(e.transient, true);
    assert.equal(e.details?.retryAfterSeconds, 30);
  });

  it('400 temporarily_unavailable is transient too', async () => {
    const { fetch } = stubFetch(json({ error: 'temporarily_unavailable' }, 400));
    assert.equal((await rejection(refresh(fetch))).code, 'server_unavailable');
  });

  it('429 → server_unavailable', async () => {
    const { fetch } = stubFetch(new Response('slow down', { status: 429 }));
    assert.equal((await rejection(refresh(fetch))).code, 'server_unavailable');
  });

  it('502 HTML → server_unavailable without the body', async () => {
    const { fetch } = stubFetch(
      new Response('<html>Bad gateway marker-502-body</html>', { status: 502, headers: { 'content-type': 'text/html' } }),
    );
    const e = await rejection(refresh(fetch));
    assert.equal(e.code, 'server_unavailable');
    assert.equal(e.status, 502);
    assertNoSecrets(e, 'marker-502-body');
  });

  it('fetch throwing → network_error', async () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const { fetch } = stubFetch(new TypeError('fetch failed', { cause }));
    const e = await rejection(refresh(fetch));
    assert.equal(e.code, 'network_error');
    assert.equal(e.transient, true);
    assert.match(e.message, /ECONNREFUSED/);
    assert.match(e.message, /as\.example\.com\/token/);
  });

  it('200 HTML → token_response_invalid naming endpoint, status and content type, never the body', async () => {
    const { fetch } = stubFetch(
      new Response('<html>access_token=at-LEAKED-123</html>', { status: 200, headers: { 'content-type': 'text/html' } }),
    );
    const e = await rejection(refresh(fetch));
    assert.equal(e.code, 'token_response_invalid');
    assert.match(e.message, /https:\/\/as\.example\.com\/token/);
    assert.match(e.message, /HTTP 200/);
    assert.match(e.message, /text\/html/);
    assertNoSecrets(e, 'at-LEAKED-123', REFRESH);
  });

  it('200 with a JSON-looking body but a non-JSON content type → token_response_invalid', async () => {
    const { fetch } = stubFetch(
      new Response(JSON.stringify({ access_token: 'at-LEAKED-plain', token_type: 'Bearer' }), { headers: { 'content-type': 'text/plain' } }),
    );
    const e = await rejection(refresh(fetch));
    assert.equal(e.code, 'token_response_invalid');
    assert.match(e.message, /text\/plain/);
    assertNoSecrets(e, 'at-LEAKED-plain');
  });

  it('200 JSON that does not parse → token_response_invalid', async () => {
    const { fetch } = stubFetch(new Response('{"access_token": "at-LEAKED', { headers: { 'content-type': 'application/json' } }));
    const e = await rejection(refresh(fetch));
    assert.equal(e.code, 'token_response_invalid');
    assertNoSecrets(e, 'at-LEAKED');
  });

  it('200 without access_token → token_response_invalid naming the field', async () => {
    const { fetch } = stubFetch(json({ token_type: 'Bearer', refresh_token: 'rt-LEAKED-999' }));
    const e = await rejection(refresh(fetch));
    assert.equal(e.code, 'token_response_invalid');
    assert.match(e.message, /access_token/);
    assertNoSecrets(e, 'rt-LEAKED-999');
  });

  it('token_type mac → token_response_invalid', async () => {
    const { fetch } = stubFetch(json({ access_token: 'at-LEAKED-mac', token_type: 'mac' }));
    const e = await rejection(refresh(fetch));
    assert.equal(e.code, 'token_response_invalid');
    assert.match(e.message, /mac/);
    assertNoSecrets(e, 'at-LEAKED-mac');
  });
});

describe('credentials', () => {
  const key = { serverName: 'notion', resource: RESOURCE, issuer: 'https://as.example.com' };
  const prev: Credential = {
    key,
    accessToken: 'old-at',
    refreshToken: 'old-rt',
    tokenType: 'Bearer',
    expiresAt: NOW - 1000,
    scopes: ['a', 'offline_access'],
    clientId: 'client-1',
    tokenEndpoint: TOKEN_ENDPOINT,
    tokenEndpointAuthMethod: 'none',
    obtainedAt: NOW - 3_600_000,
    needsSignIn: { reason: 'transient', at: NOW - 10 },
  };

  it('refresh without refresh_token/scope keeps the old ones and clears needsSignIn', async () => {
    const { fetch } = stubFetch(json({ access_token: 'new-at', token_type: 'Bearer', expires_in: 100 }));
    const merged = mergeRefreshedCredential(prev, await refresh(fetch), NOW);
    assert.equal(merged.accessToken, 'new-at');
    assert.equal(merged.refreshToken, 'old-rt');
    assert.deepEqual(merged.scopes, ['a', 'offline_access']);
    assert.equal(merged.expiresAt, NOW + 100_000);
    assert.equal(merged.obtainedAt, NOW);
    assert.equal(merged.needsSignIn, undefined);
    assert.deepEqual(merged.key, key);
  });

  it('rotation and narrowed scope replace the old ones; unknown expiry replaces the old expiry', () => {
    const tokens: TokenSet = { accessToken: 'n', tokenType: 'Bearer', refreshToken: 'new-rt', scopes: ['a'] };
    const merged = mergeRefreshedCredential({ ...prev, refreshTokenMissingReason: 'google' }, tokens, NOW);
    assert.equal(merged.refreshToken, 'new-rt');
    assert.deepEqual(merged.scopes, ['a']);
    assert.equal(merged.expiresAt, undefined);
    assert.equal(merged.refreshTokenMissingReason, undefined);
  });

  it('refreshTokenMissingReason stays when there is still no refresh token', () => {
    const noRt = { ...prev, refreshToken: undefined, refreshTokenMissingReason: 'google' };
    const merged = mergeRefreshedCredential(noRt, { accessToken: 'n', tokenType: 'Bearer' }, NOW);
    assert.equal(merged.refreshTokenMissingReason, 'google');
  });

  it('credentialFromTokenSet uses requested scopes when the response has none', () => {
    const c = credentialFromTokenSet({
      key,
      tokens: { accessToken: 'at', tokenType: 'Bearer', refreshToken: 'rt', expiresAt: NOW + 5 },
      requestedScopes: ['x', 'y'],
      client: { clientId: 'cid', clientSecret: SECRET, method: 'client_secret_basic' },
      tokenEndpoint: TOKEN_ENDPOINT,
      revocationEndpoint: 'https://as.example.com/revoke',
      now: NOW,
    });
    assert.deepEqual(c, {
      key,
      accessToken: 'at',
      refreshToken: 'rt',
      tokenType: 'Bearer',
      expiresAt: NOW + 5,
      scopes: ['x', 'y'],
      clientId: 'cid',
      tokenEndpoint: TOKEN_ENDPOINT,
      revocationEndpoint: 'https://as.example.com/revoke',
      tokenEndpointAuthMethod: 'client_secret_basic',
      obtainedAt: NOW,
    });
    assert.ok(!JSON.stringify(c).includes(SECRET), 'the client secret is not part of the credential');
  });
});

describe('revocation (RFC 7009)', () => {
  const revoke = (fetch: FetchLike) =>
    revokeToken({ revocationEndpoint: 'https://as.example.com/revoke', client: publicClient, token: REFRESH, tokenTypeHint: 'refresh_token', fetch });

  it('posts token and hint; 200 is success', async () => {
    const { fetch, requests } = stubFetch(new Response(null, { status: 200 }));
    await revoke(fetch);
    assert.equal(requests[0].url, 'https://as.example.com/revoke');
    assert.equal(requests[0].body.get('token'), REFRESH);
    assert.equal(requests[0].body.get('token_type_hint'), 'refresh_token');
    assert.equal(requests[0].body.get('client_id'), 'client-1');
  });

  it('503 → server_unavailable', async () => {
    const { fetch } = stubFetch(new Response('', { status: 503, headers: { 'retry-after': '5' } }));
    const e = await rejection(revoke(fetch));
    assert.equal(e.code, 'server_unavailable');
    assert.equal(e.details?.retryAfterSeconds, 5);
  });

  it('400 unsupported_token_type → oauth_error without the token', async () => {
    const { fetch } = stubFetch(json({ error: 'unsupported_token_type' }, 400));
    const e = await rejection(revoke(fetch));
    assert.equal(e.code, 'oauth_error');
    assert.equal(e.oauthError, 'unsupported_token_type');
    assertNoSecrets(e, REFRESH);
  });
});
