import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMcpOAuthError, type McpOAuthError } from '../src/errors.ts';
import type { AuthorizationServerMetadata } from '../src/oauth/discovery.ts';
import { redirectUriCovered, resolveClientRegistration } from '../src/oauth/registration.ts';
import type { ClientRegistration, FetchLike } from '../src/types.ts';

interface Captured {
  url: string;
  method: string;
  headers: Headers;
  json: unknown;
}

function stubFetch(...responses: Array<Response | Error>): { fetch: FetchLike; requests: Captured[] } {
  const requests: Captured[] = [];
  const fetch: FetchLike = async (input, init) => {
    const raw = init?.body ? String(init.body) : '';
    requests.push({ url: String(input), method: init?.method ?? 'GET', headers: new Headers(init?.headers), json: raw ? JSON.parse(raw) : undefined });
    const next = responses.shift();
    if (next === undefined) throw new Error('unexpected request');
    if (next instanceof Error) throw next;
    return next;
  };
  return { fetch, requests };
}

const json = (body: unknown, status = 201) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const NOW = 1_800_000_000_000;
const ISSUER = 'https://as.example.com';
const REDIRECT = 'http://127.0.0.1:43123/callback';
const SECRET = 'dcr-SECRET-client-secret-0987654321';
const metadata: AuthorizationServerMetadata = {
  issuer: ISSUER,
  authorization_endpoint: `${ISSUER}/authorize`,
  token_endpoint: `${ISSUER}/token`,
  registration_endpoint: `${ISSUER}/register`,
  code_challenge_methods_supported: ['S256'],
};

type Opts = Parameters<typeof resolveClientRegistration>[0];
function resolve(fetch: FetchLike, overrides: Partial<Opts> = {}) {
  return resolveClientRegistration({ issuer: ISSUER, metadata, redirectUri: REDIRECT, clientName: 'mcp-oauth', fetch, now: NOW, ...overrides });
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

const existing: ClientRegistration = {
  issuer: ISSUER,
  clientId: 'dcr-old',
  tokenEndpointAuthMethod: 'none',
  redirectUris: ['http://127.0.0.1:50000/callback'],
  source: 'dynamic_registration',
  registeredAt: NOW - 1000,
};

describe('dynamic client registration (RFC 7591)', () => {
  it('posts the native public-client metadata and returns a public registration', async () => {
    const { fetch, requests } = stubFetch(json({ client_id: 'dcr-1', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }));
    const reg = await resolve(fetch);
    assert.equal(requests.length, 1);
    assert.equal(requests[0].url, `${ISSUER}/register`);
    assert.equal(requests[0].method, 'POST');
    assert.equal(requests[0].headers.get('content-type'), 'application/json');
    assert.deepEqual(requests[0].json, {
      client_name: 'mcp-oauth',
      application_type: 'native',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    assert.deepEqual(reg, {
      issuer: ISSUER,
      clientId: 'dcr-1',
      tokenEndpointAuthMethod: 'none',
      redirectUris: [REDIRECT],
      source: 'dynamic_registration',
      registeredAt: NOW,
    });
  });

  it('a secret-issuing server: method from the response, client_secret_basic by default', async () => {
    const post = await resolve(
      stubFetch(json({ client_id: 'c', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_post', client_secret_expires_at: 2_000_000_000 })).fetch,
    );
    assert.equal(post.tokenEndpointAuthMethod, 'client_secret_post');
    assert.equal(post.clientSecret, SECRET);
    assert.equal(post.clientSecretExpiresAt, 2_000_000_000_000);
    const basic = await resolve(stubFetch(json({ client_id: 'c', client_secret: SECRET, client_secret_expires_at: 0 })).fetch);
    assert.equal(basic.tokenEndpointAuthMethod, 'client_secret_basic');
    assert.equal(basic.clientSecretExpiresAt, undefined);
  });

  it('RFC 7591 §3.2.2 error → registration_failed with the server error code and the pre-register hint', async () => {
    const { fetch } = stubFetch(json({ error: 'invalid_redirect_uri', error_description: 'loopback not allowed' }, 400));
    const e = await rejection(resolve(fetch, { serverName: 'notion' }));
    assert.equal(e.code, 'registration_failed');
    assert.equal(e.oauthError, 'invalid_redirect_uri');
    assert.match(e.message, /invalid_redirect_uri \(loopback not allowed\)/);
    assert.equal(e.hint, 'pre-register a client and set client_id in [mcp_servers.notion.oauth]');
  });

  it('a response without client_id → registration_failed, never echoing the secret', async () => {
    const e = await rejection(resolve(stubFetch(json({ client_secret: SECRET })).fetch));
    assert.equal(e.code, 'registration_failed');
    assert.match(e.message, /client_id/);
    assert.ok(!JSON.stringify(e.toJSON()).includes(SECRET));
  });

  it('5xx → server_unavailable; fetch throwing → network_error', async () => {
    assert.equal((await rejection(resolve(stubFetch(new Response('x', { status: 503 })).fetch))).code, 'server_unavailable');
    assert.equal((await rejection(resolve(stubFetch(new TypeError('fetch failed')).fetch))).code, 'network_error');
  });

  it('no registration endpoint and nothing configured → registration_failed with the hint, no request', async () => {
    const { fetch, requests } = stubFetch();
    const e = await rejection(resolve(fetch, { metadata: { ...metadata, registration_endpoint: undefined } }));
    assert.equal(e.code, 'registration_failed');
    assert.match(e.hint ?? '', /pre-register a client and set client_id in \[mcp_servers\.NAME\.oauth\]/);
    assert.equal(requests.length, 0);
  });
});

describe('reusing an earlier registration', () => {
  it('reuses it for the same issuer on another loopback port (RFC 8252 §7.3)', async () => {
    const { fetch, requests } = stubFetch();
    assert.equal(await resolve(fetch, { existing }), existing);
    assert.equal(requests.length, 0);
  });

  it('registers again for another issuer, another loopback host or path, or an expired secret', async () => {
    const cases: ClientRegistration[] = [
      { ...existing, issuer: 'https://other.example.com' },
      { ...existing, redirectUris: ['http://localhost:50000/callback'] },
      { ...existing, redirectUris: ['http://127.0.0.1:50000/other'] },
      { ...existing, clientSecret: SECRET, clientSecretExpiresAt: NOW - 1, tokenEndpointAuthMethod: 'client_secret_basic' },
      { ...existing, source: 'preregistered' },
    ];
    for (const old of cases) {
      const { fetch, requests } = stubFetch(json({ client_id: 'dcr-new' }));
      const reg = await resolve(fetch, { existing: old });
      assert.equal(reg.clientId, 'dcr-new', JSON.stringify(old));
      assert.equal(requests.length, 1);
    }
  });

  it('non-loopback redirect URIs must match exactly', () => {
    assert.equal(redirectUriCovered(['https://app.example.com/cb'], 'https://app.example.com/cb'), true);
    assert.equal(redirectUriCovered(['https://app.example.com:8443/cb'], 'https://app.example.com:9443/cb'), false);
    assert.equal(redirectUriCovered(['http://[::1]:1/cb'], 'http://[::1]:2/cb'), true);
  });
});

describe('pre-registered clients and CIMD', () => {
  it('pre-registered client wins over everything and makes no request', async () => {
    const { fetch, requests } = stubFetch();
    const reg = await resolve(fetch, {
      preregistered: { clientId: 'pre-1' },
      existing,
      clientMetadataUrl: 'https://app.example.com/client.json',
      metadata: { ...metadata, client_id_metadata_document_supported: true },
    });
    assert.equal(reg.clientId, 'pre-1');
    assert.equal(reg.source, 'preregistered');
    assert.equal(reg.tokenEndpointAuthMethod, 'none');
    assert.equal(requests.length, 0);
  });

  it('auth method choice for a pre-registered secret', async () => {
    const { fetch } = stubFetch();
    const pick = async (supported?: string[]) =>
      (await resolve(fetch, { preregistered: { clientId: 'p', clientSecret: SECRET }, metadata: { ...metadata, token_endpoint_auth_methods_supported: supported } }))
        .tokenEndpointAuthMethod;
    assert.equal(await pick(undefined), 'client_secret_basic');
    assert.equal(await pick(['client_secret_post', 'client_secret_basic']), 'client_secret_basic');
    assert.equal(await pick(['client_secret_post']), 'client_secret_post');
    const e = await rejection(pick(['private_key_jwt']));
    assert.equal(e.code, 'registration_failed');
    assert.ok(!e.message.includes(SECRET));
  });

  it('CIMD when the AS supports it: client_id is the URL, method none, no request', async () => {
    const { fetch, requests } = stubFetch();
    const reg = await resolve(fetch, {
      clientMetadataUrl: 'https://app.example.com/oauth/client.json',
      metadata: { ...metadata, client_id_metadata_document_supported: true },
      existing,
    });
    assert.equal(reg.clientId, 'https://app.example.com/oauth/client.json');
    assert.equal(reg.source, 'client_id_metadata_document');
    assert.equal(reg.tokenEndpointAuthMethod, 'none');
    assert.equal(requests.length, 0);
  });

  it('CIMD URL configured but not supported by the AS → falls through to DCR', async () => {
    const { fetch, requests } = stubFetch(json({ client_id: 'dcr-2' }));
    const reg = await resolve(fetch, { clientMetadataUrl: 'https://app.example.com/oauth/client.json' });
    assert.equal(reg.clientId, 'dcr-2');
    assert.equal(requests.length, 1);
  });

  it('CIMD URL must be https with a path', async () => {
    const md = { ...metadata, client_id_metadata_document_supported: true };
    const { fetch } = stubFetch();
    assert.equal((await rejection(resolve(fetch, { clientMetadataUrl: 'http://app.example.com/c.json', metadata: md }))).code, 'config_invalid');
    assert.equal((await rejection(resolve(fetch, { clientMetadataUrl: 'https://app.example.com/', metadata: md }))).code, 'config_invalid');
  });

  it('refuses metadata of another issuer', async () => {
    const { fetch } = stubFetch();
    assert.equal((await rejection(resolve(fetch, { issuer: 'https://other.example.com' }))).code, 'issuer_mismatch');
  });
});
