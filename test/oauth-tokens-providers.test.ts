/**
 * Token endpoint answers as identity providers give them (src/oauth/tokens.ts): GitHub's
 * form-encoded bodies and errors with HTTP 200, the refresh token's own lifetime (Keycloak
 * `refresh_expires_in`, GitHub `refresh_token_expires_in`), and no `resource` for Entra.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMcpOAuthError, type McpOAuthError } from '../src/errors.ts';
import { credentialFromTokenSet, exchangeAuthorizationCode, mergeRefreshedCredential, refreshAccessToken, type ClientAuth } from '../src/oauth/tokens.ts';
import type { Credential, FetchLike } from '../src/types.ts';

const NOW = 1_800_000_000_000;
const TOKEN_ENDPOINT = 'https://github.com/login/oauth/access_token';
const RESOURCE = 'https://mcp.example.com/mcp';
const REFRESH = 'ghr_SECRET-refresh-token-0123456789';
const SECRET = 'cs-SECRET-client-secret-abcdefgh';
const client: ClientAuth = { clientId: 'Iv1.abc', clientSecret: SECRET, method: 'client_secret_post' };

function stub(...responses: Response[]): { fetch: FetchLike; requests: Array<{ headers: Headers; body: URLSearchParams }> } {
  const requests: Array<{ headers: Headers; body: URLSearchParams }> = [];
  const fetch: FetchLike = async (_input, init) => {
    requests.push({ headers: new Headers(init?.headers), body: new URLSearchParams(String(init?.body ?? '')) });
    const next = responses.shift();
    if (!next) throw new Error('unexpected request');
    return next;
  };
  return { fetch, requests };
}

const form = (body: Record<string, string>, status = 200, contentType = 'application/x-www-form-urlencoded; charset=utf-8') =>
  new Response(new URLSearchParams(body).toString(), { status, headers: { 'content-type': contentType } });
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

function refresh(fetch: FetchLike, opts: { resource?: string } = { resource: RESOURCE }) {
  return refreshAccessToken({ tokenEndpoint: TOKEN_ENDPOINT, client, refreshToken: REFRESH, resource: opts.resource, fetch, now: NOW });
}

async function rejection(p: Promise<unknown>): Promise<McpOAuthError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isMcpOAuthError(e), String(e));
    return e;
  }
  assert.fail('expected a rejection');
}

describe('GitHub-style answers', () => {
  it('asks for JSON (Accept: application/json) on every token request', async () => {
    const { fetch, requests } = stub(json({ access_token: 'gho_x', token_type: 'bearer' }));
    await refresh(fetch);
    assert.match(requests[0].headers.get('accept') ?? '', /^application\/json/);
  });

  it('reads a form-encoded success (numbers as strings, refresh_token_expires_in, empty scope)', async () => {
    const { fetch } = stub(form({ access_token: 'ghu_new', expires_in: '28800', refresh_token: 'ghr_new', refresh_token_expires_in: '15811200', scope: '', token_type: 'bearer' }));
    const tokens = await refresh(fetch);
    assert.equal(tokens.accessToken, 'ghu_new');
    assert.equal(tokens.refreshToken, 'ghr_new');
    assert.equal(tokens.expiresAt, NOW + 28800_000);
    assert.equal(tokens.refreshTokenExpiresAt, NOW + 15811200_000);
    assert.equal(tokens.scopes, undefined, 'an empty scope says nothing: the requested scopes stand');
  });

  it('reads a form body labelled application/json', async () => {
    const { fetch } = stub(form({ access_token: 'gho_x', token_type: 'bearer', scope: 'repo' }, 200, 'application/json; charset=utf-8'));
    assert.deepEqual((await refresh(fetch)).scopes, ['repo']);
  });

  it('an error with HTTP 200 (JSON or form) is an OAuth error, not an invalid token response; no secrets', async () => {
    for (const response of [
      json({ error: 'bad_refresh_token', error_description: `The refresh token ${REFRESH} passed is incorrect or expired.` }),
      form({ error: 'bad_refresh_token', error_description: `The refresh token ${REFRESH} passed is incorrect or expired.` }),
    ]) {
      const e = await rejection(refresh(stub(response).fetch));
      assert.equal(e.code, 'oauth_error');
      assert.equal(e.oauthError, 'bad_refresh_token');
      assert.equal(e.status, 200);
      assert.match(String(e.details?.errorDescription), /passed is incorrect or expired/);
      const text = `${e.message} ${JSON.stringify(e.toJSON())}`;
      assert.ok(!text.includes(REFRESH) && !text.includes(SECRET), text);
    }
  });

  it('a form-encoded 400 error keeps its OAuth error code', async () => {
    const e = await rejection(refresh(stub(form({ error: 'invalid_grant' }, 400)).fetch));
    assert.equal(e.oauthError, 'invalid_grant');
  });

  it('a text/plain 200 is still refused (not JSON, not a form)', async () => {
    const e = await rejection(refresh(stub(new Response('access_token=at-LEAKED&token_type=bearer', { headers: { 'content-type': 'text/plain' } })).fetch));
    assert.equal(e.code, 'token_response_invalid');
    assert.ok(!e.message.includes('at-LEAKED'));
  });
});

describe('the refresh token\'s lifetime', () => {
  it('Keycloak refresh_expires_in; 0 (an offline token) means no known expiry', async () => {
    const one = await refresh(stub(json({ access_token: 'a', token_type: 'Bearer', refresh_token: 'r2', refresh_expires_in: 1800 })).fetch);
    assert.equal(one.refreshTokenExpiresAt, NOW + 1800_000);
    const offline = await refresh(stub(json({ access_token: 'a', token_type: 'Bearer', refresh_token: 'r2', refresh_expires_in: 0 })).fetch);
    assert.equal(offline.refreshTokenExpiresAt, undefined);
    const none = await refresh(stub(json({ access_token: 'a', token_type: 'Bearer', refresh_expires_in: 1800 })).fetch);
    assert.equal(none.refreshTokenExpiresAt, undefined, 'no refresh token in the answer: nothing expires');
  });

  const prev: Credential = {
    key: { serverName: 'kc', resource: RESOURCE, issuer: 'https://sso.example.com/realms/x' },
    accessToken: 'old',
    refreshToken: 'r1',
    refreshTokenExpiresAt: NOW + 1000,
    tokenType: 'Bearer',
    scopes: ['mcp'],
    clientId: 'c',
    tokenEndpoint: TOKEN_ENDPOINT,
    tokenEndpointAuthMethod: 'none',
    obtainedAt: NOW - 10,
  };

  it('merge: a new lifetime replaces it, a kept refresh token keeps it, a rotated one without a lifetime drops it', () => {
    assert.equal(mergeRefreshedCredential(prev, { accessToken: 'a', tokenType: 'Bearer', refreshToken: 'r2', refreshTokenExpiresAt: NOW + 5000 }, NOW).refreshTokenExpiresAt, NOW + 5000);
    assert.equal(mergeRefreshedCredential(prev, { accessToken: 'a', tokenType: 'Bearer' }, NOW).refreshTokenExpiresAt, NOW + 1000);
    assert.equal(mergeRefreshedCredential(prev, { accessToken: 'a', tokenType: 'Bearer', refreshToken: 'r2' }, NOW).refreshTokenExpiresAt, undefined);
  });

  it('a sign-in stores it', () => {
    const credential = credentialFromTokenSet({
      key: prev.key, tokens: { accessToken: 'a', tokenType: 'Bearer', refreshToken: 'r', refreshTokenExpiresAt: NOW + 9 }, requestedScopes: [], client, tokenEndpoint: TOKEN_ENDPOINT, now: NOW,
    });
    assert.equal(credential.refreshTokenExpiresAt, NOW + 9);
  });
});

describe('no resource for providers that refuse it', () => {
  it('refresh and code exchange omit `resource` when it is undefined, send it once otherwise', async () => {
    const { fetch, requests } = stub(json({ access_token: 'a', token_type: 'Bearer' }), json({ access_token: 'a', token_type: 'Bearer' }), json({ access_token: 'a', token_type: 'Bearer' }));
    await refresh(fetch, {});
    await refresh(fetch);
    await exchangeAuthorizationCode({ tokenEndpoint: TOKEN_ENDPOINT, client, code: 'c', codeVerifier: 'v', redirectUri: 'http://127.0.0.1:1/callback', fetch, now: NOW });
    assert.deepEqual(requests[0].body.getAll('resource'), []);
    assert.deepEqual(requests[1].body.getAll('resource'), [RESOURCE]);
    assert.deepEqual(requests[2].body.getAll('resource'), []);
  });
});
