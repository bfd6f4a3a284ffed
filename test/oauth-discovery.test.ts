import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  authorizationServerMetadataUrls,
  discoverAll,
  discoverAuthorizationServer,
  discoverProtectedResource,
  probeChallenge,
  protectedResourceMetadataUrls,
} from '../src/oauth/discovery.ts';
import { isMcpOAuthError } from '../src/errors.ts';
import type { FetchLike } from '../src/types.ts';

/** An in-memory fetch: URL → response factory; anything else is a 404. Records every call. */
function stubFetch(routes: Record<string, () => Response>) {
  const calls: Array<{ url: string; init?: RequestInit }> = [];
  const fetch: FetchLike = async (input, init) => {
    const url = String(input);
    calls.push({ url, init });
    const route = routes[url];
    return route ? route() : new Response('not found', { status: 404 });
  };
  return { fetch, calls, urls: () => calls.map((c) => c.url) };
}

const json = (body: unknown, status = 200) => () =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const AS = 'https://auth.example.com';
const asMetadata = (issuer = AS, extra: Record<string, unknown> = {}) => ({
  issuer,
  authorization_endpoint: `${issuer}/authorize`,
  token_endpoint: `${issuer}/token`,
  registration_endpoint: `${issuer}/register`,
  code_challenge_methods_supported: ['S256'],
  response_types_supported: ['code'],
  ...extra,
});

describe('protectedResourceMetadataUrls', () => {
  it('puts the header URL first, then path form, then root form', () => {
    assert.deepEqual(protectedResourceMetadataUrls('https://example.com/public/mcp', 'https://example.com/prm'), [
      'https://example.com/prm',
      'https://example.com/.well-known/oauth-protected-resource/public/mcp',
      'https://example.com/.well-known/oauth-protected-resource',
    ]);
  });

  it('has only the root form for a server at the root, and drops a trailing slash', () => {
    assert.deepEqual(protectedResourceMetadataUrls('https://Example.com/'), ['https://example.com/.well-known/oauth-protected-resource']);
    assert.deepEqual(protectedResourceMetadataUrls('https://example.com/mcp/'), [
      'https://example.com/.well-known/oauth-protected-resource/mcp',
      'https://example.com/.well-known/oauth-protected-resource',
    ]);
  });
});

describe('authorizationServerMetadataUrls', () => {
  it('issuer with a path: OAuth insertion, OIDC insertion, OIDC appending', () => {
    assert.deepEqual(authorizationServerMetadataUrls('https://auth.example.com/tenant1'), [
      { url: 'https://auth.example.com/.well-known/oauth-authorization-server/tenant1', kind: 'oauth' },
      { url: 'https://auth.example.com/.well-known/openid-configuration/tenant1', kind: 'oidc' },
      { url: 'https://auth.example.com/tenant1/.well-known/openid-configuration', kind: 'oidc' },
    ]);
  });

  it('issuer without a path: OAuth root, then OIDC root', () => {
    for (const issuer of ['https://auth.example.com', 'https://auth.example.com/']) {
      assert.deepEqual(authorizationServerMetadataUrls(issuer), [
        { url: 'https://auth.example.com/.well-known/oauth-authorization-server', kind: 'oauth' },
        { url: 'https://auth.example.com/.well-known/openid-configuration', kind: 'oidc' },
      ]);
    }
  });
});

describe('discoverProtectedResource', () => {
  const server = 'https://mcp.example.com/mcp';
  const prm = { resource: server, authorization_servers: [AS], scopes_supported: ['read'] };

  it('tries the path form before the root form', async () => {
    const stub = stubFetch({ 'https://mcp.example.com/.well-known/oauth-protected-resource': json(prm) });
    const metadata = await discoverProtectedResource({ serverUrl: server, fetch: stub.fetch });
    assert.deepEqual(metadata.authorization_servers, [AS]);
    assert.deepEqual(stub.urls(), [
      'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
      'https://mcp.example.com/.well-known/oauth-protected-resource',
    ]);
  });

  it('uses the path form when it exists and keeps unknown members', async () => {
    const stub = stubFetch({
      'https://mcp.example.com/.well-known/oauth-protected-resource/mcp': json({ ...prm, extra_member: 1 }),
      'https://mcp.example.com/.well-known/oauth-protected-resource': json({ ...prm, authorization_servers: ['https://wrong.example'] }),
    });
    const metadata = await discoverProtectedResource({ serverUrl: server, fetch: stub.fetch });
    assert.deepEqual(metadata.authorization_servers, [AS]);
    assert.equal((metadata as Record<string, unknown>).extra_member, 1);
    assert.equal(stub.calls.length, 1);
    assert.equal(new Headers(stub.calls[0].init?.headers).get('accept'), 'application/json');
  });

  it('asks the header URL first', async () => {
    const stub = stubFetch({
      'https://meta.example.com/prm': json(prm),
      'https://mcp.example.com/.well-known/oauth-protected-resource/mcp': json({ ...prm, authorization_servers: ['https://wrong.example'] }),
    });
    const metadata = await discoverProtectedResource({ serverUrl: server, resourceMetadataUrl: 'https://meta.example.com/prm', fetch: stub.fetch });
    assert.deepEqual(metadata.authorization_servers, [AS]);
    assert.deepEqual(stub.urls(), ['https://meta.example.com/prm']);
  });

  it('compares canonical forms of resource', async () => {
    const stub = stubFetch({
      'https://mcp.example.com/.well-known/oauth-protected-resource/mcp': json({ ...prm, resource: 'HTTPS://MCP.EXAMPLE.COM:443/mcp/' }),
    });
    const metadata = await discoverProtectedResource({ serverUrl: 'https://mcp.example.com/mcp#x', fetch: stub.fetch });
    assert.equal(metadata.resource, 'HTTPS://MCP.EXAMPLE.COM:443/mcp/');
  });

  it('compares against the configured resource override when given', async () => {
    const stub = stubFetch({
      'https://mcp.example.com/.well-known/oauth-protected-resource/mcp': json({ ...prm, resource: 'https://mcp.example.com' }),
    });
    const metadata = await discoverProtectedResource({ serverUrl: server, expectedResource: 'https://mcp.example.com/', fetch: stub.fetch });
    assert.equal(metadata.resource, 'https://mcp.example.com');
    // With an override, the metadata must name exactly the override (no prefix rule).
    await assert.rejects(discoverProtectedResource({ serverUrl: server, expectedResource: 'https://mcp.example.com/mcp', fetch: stub.fetch }), (e) => isMcpOAuthError(e, 'resource_mismatch'));
  });

  it('refuses a resource mismatch and makes no further request', async () => {
    const stub = stubFetch({
      'https://mcp.example.com/.well-known/oauth-protected-resource/mcp': json({ ...prm, resource: 'https://other.example.com/mcp' }),
      'https://mcp.example.com/.well-known/oauth-protected-resource': json(prm),
      [`${AS}/.well-known/oauth-authorization-server`]: json(asMetadata()),
    });
    await assert.rejects(discoverAll({ serverUrl: server, fetch: stub.fetch }), (e) => {
      assert.ok(isMcpOAuthError(e, 'resource_mismatch'));
      assert.match(e.message, /other\.example\.com\/mcp/);
      assert.match(e.message, /mcp\.example\.com\/mcp/);
      assert.match(e.message, /misconfigured or impersonated/);
      assert.match(e.hint ?? '', /check the URL/);
      return true;
    });
    assert.deepEqual(stub.urls(), ['https://mcp.example.com/.well-known/oauth-protected-resource/mcp']);
    assert.ok(!stub.urls().some((u) => u.startsWith(AS)), 'the authorization server metadata must never be fetched');
  });

  it('refuses a plain http server URL before any request', async () => {
    const stub = stubFetch({});
    await assert.rejects(discoverProtectedResource({ serverUrl: 'http://mcp.example.com/mcp', fetch: stub.fetch }), (e) => isMcpOAuthError(e, 'insecure_url'));
    await assert.rejects(probeChallenge({ serverUrl: 'http://mcp.example.com/mcp', fetch: stub.fetch }), (e) => isMcpOAuthError(e, 'insecure_url'));
    assert.equal(stub.calls.length, 0);
  });

  it('reports metadata_invalid with a hint when every location is 404 or 410', async () => {
    const stub = stubFetch({ 'https://mcp.example.com/.well-known/oauth-protected-resource': () => new Response('', { status: 410 }) });
    await assert.rejects(discoverProtectedResource({ serverUrl: server, fetch: stub.fetch }), (e) => {
      assert.ok(isMcpOAuthError(e, 'metadata_invalid'));
      assert.match(e.message, /oauth-protected-resource\/mcp/);
      assert.ok(e.hint);
      return true;
    });
    assert.equal(stub.calls.length, 2);
  });

  it('stops at an error status other than 404/410', async () => {
    const forbidden = stubFetch({ 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp': json({}, 403) });
    await assert.rejects(discoverProtectedResource({ serverUrl: server, fetch: forbidden.fetch }), (e) => isMcpOAuthError(e, 'metadata_invalid') && e.status === 403);
    assert.equal(forbidden.calls.length, 1);
    const down = stubFetch({ 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp': json({}, 503) });
    await assert.rejects(discoverProtectedResource({ serverUrl: server, fetch: down.fetch }), (e) => isMcpOAuthError(e, 'server_unavailable') && e.status === 503);
  });

  it('rejects malformed JSON and missing fields, naming URL and field', async () => {
    const url = 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp';
    const html = stubFetch({ [url]: () => new Response('<html>hi</html>', { headers: { 'content-type': 'text/html' } }) });
    await assert.rejects(discoverProtectedResource({ serverUrl: server, fetch: html.fetch }), (e) => isMcpOAuthError(e, 'metadata_invalid') && e.message.includes(url) && /not JSON/.test(e.message));
    const noServers = stubFetch({ [url]: json({ resource: server }) });
    await assert.rejects(
      discoverProtectedResource({ serverUrl: server, fetch: noServers.fetch }),
      (e) => isMcpOAuthError(e, 'metadata_invalid') && e.message.includes(url) && e.message.includes('authorization_servers'),
    );
    const wrongType = stubFetch({ [url]: json({ ...prm, scopes_supported: 'read write' }) });
    await assert.rejects(discoverProtectedResource({ serverUrl: server, fetch: wrongType.fetch }), (e) => isMcpOAuthError(e, 'metadata_invalid') && e.message.includes('scopes_supported'));
  });

  it('treats null members as absent', async () => {
    const stub = stubFetch({ 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp': json({ ...prm, scopes_supported: null }) });
    const metadata = await discoverProtectedResource({ serverUrl: server, fetch: stub.fetch });
    assert.equal(metadata.scopes_supported, undefined);
  });

  it('turns a throwing fetch into network_error naming the host', async () => {
    const fetch: FetchLike = async () => {
      throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') });
    };
    await assert.rejects(discoverProtectedResource({ serverUrl: server, fetch }), (e) => {
      assert.ok(isMcpOAuthError(e, 'network_error'));
      assert.equal(e.hint, 'check that mcp.example.com is reachable, then retry');
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
  });
});

describe('discoverAuthorizationServer', () => {
  it('tries every variant in order for an issuer with a path', async () => {
    const issuer = 'https://auth.example.com/tenant1';
    const stub = stubFetch({ 'https://auth.example.com/tenant1/.well-known/openid-configuration': json(asMetadata(issuer)) });
    const metadata = await discoverAuthorizationServer({ issuer, fetch: stub.fetch });
    assert.equal(metadata.token_endpoint, `${issuer}/token`);
    assert.deepEqual(stub.urls(), [
      'https://auth.example.com/.well-known/oauth-authorization-server/tenant1',
      'https://auth.example.com/.well-known/openid-configuration/tenant1',
      'https://auth.example.com/tenant1/.well-known/openid-configuration',
    ]);
  });

  it('tries OAuth then OIDC for an issuer without a path, and the first valid document wins', async () => {
    const stub = stubFetch({ [`${AS}/.well-known/openid-configuration`]: json(asMetadata()) });
    await discoverAuthorizationServer({ issuer: AS, fetch: stub.fetch });
    assert.deepEqual(stub.urls(), [`${AS}/.well-known/oauth-authorization-server`, `${AS}/.well-known/openid-configuration`]);

    const both = stubFetch({
      [`${AS}/.well-known/oauth-authorization-server`]: json(asMetadata(AS, { scopes_supported: ['from-oauth'] })),
      [`${AS}/.well-known/openid-configuration`]: json(asMetadata(AS, { scopes_supported: ['from-oidc'] })),
    });
    const metadata = await discoverAuthorizationServer({ issuer: AS, fetch: both.fetch });
    assert.deepEqual(metadata.scopes_supported, ['from-oauth']);
    assert.equal(both.calls.length, 1);
  });

  it('skips an HTML page answered with 200 and uses the next location', async () => {
    const stub = stubFetch({
      [`${AS}/.well-known/oauth-authorization-server`]: () => new Response('<!doctype html>', { headers: { 'content-type': 'text/html' } }),
      [`${AS}/.well-known/openid-configuration`]: json(asMetadata()),
    });
    const metadata = await discoverAuthorizationServer({ issuer: AS, fetch: stub.fetch });
    assert.equal(metadata.issuer, AS);
  });

  it('refuses an issuer mismatch', async () => {
    const stub = stubFetch({ [`${AS}/.well-known/oauth-authorization-server`]: json(asMetadata('https://evil.example.com')) });
    await assert.rejects(discoverAuthorizationServer({ issuer: AS, fetch: stub.fetch }), (e) => {
      assert.ok(isMcpOAuthError(e, 'issuer_mismatch'));
      assert.match(e.message, /evil\.example\.com/);
      return true;
    });
    // A trailing slash on an empty path is the same issuer (RFC 3986 §6.2.3), and the metadata's
    // own spelling is what the result carries; anything more is a different issuer.
    const slash = stubFetch({ [`${AS}/.well-known/oauth-authorization-server`]: json(asMetadata(`${AS}/`)) });
    assert.equal((await discoverAuthorizationServer({ issuer: AS, fetch: slash.fetch })).issuer, `${AS}/`);
    const pathSlash = stubFetch({ [`${AS}/.well-known/oauth-authorization-server/t`]: json(asMetadata(`${AS}/t/`)) });
    await assert.rejects(discoverAuthorizationServer({ issuer: `${AS}/t`, fetch: pathSlash.fetch }), (e) => isMcpOAuthError(e, 'issuer_mismatch'));
  });

  it('refuses when S256 is missing or code_challenge_methods_supported is absent', async () => {
    for (const methods of [['plain'], undefined]) {
      const stub = stubFetch({ [`${AS}/.well-known/oauth-authorization-server`]: json(asMetadata(AS, { code_challenge_methods_supported: methods })) });
      await assert.rejects(discoverAuthorizationServer({ issuer: AS, fetch: stub.fetch }), (e) => isMcpOAuthError(e, 'pkce_unsupported') && !!e.hint);
    }
  });

  it('refuses an insecure endpoint in the metadata', async () => {
    for (const field of ['authorization_endpoint', 'token_endpoint', 'registration_endpoint', 'revocation_endpoint']) {
      const stub = stubFetch({ [`${AS}/.well-known/oauth-authorization-server`]: json(asMetadata(AS, { [field]: 'http://auth.example.com/x' })) });
      await assert.rejects(discoverAuthorizationServer({ issuer: AS, fetch: stub.fetch }), (e) => isMcpOAuthError(e, 'insecure_url') && e.message.includes(field), field);
    }
    const loopback = 'http://127.0.0.1:9999';
    const ok = stubFetch({ [`${loopback}/.well-known/oauth-authorization-server`]: json(asMetadata(loopback)) });
    assert.equal((await discoverAuthorizationServer({ issuer: loopback, fetch: ok.fetch })).issuer, loopback);
  });

  it('refuses an insecure issuer before any request', async () => {
    const stub = stubFetch({});
    await assert.rejects(discoverAuthorizationServer({ issuer: 'http://auth.example.com', fetch: stub.fetch }), (e) => isMcpOAuthError(e, 'insecure_url'));
    assert.equal(stub.calls.length, 0);
  });

  it('reports malformed JSON and wrong types as metadata_invalid naming the URL and field', async () => {
    const url = `${AS}/.well-known/oauth-authorization-server`;
    const bad = stubFetch({ [url]: () => new Response('{"issuer": ', { status: 200 }) });
    await assert.rejects(discoverAuthorizationServer({ issuer: AS, fetch: bad.fetch }), (e) => isMcpOAuthError(e, 'metadata_invalid') && e.message.includes(url));
    const wrong = stubFetch({ [url]: json(asMetadata(AS, { code_challenge_methods_supported: 'S256' })) });
    await assert.rejects(
      discoverAuthorizationServer({ issuer: AS, fetch: wrong.fetch }),
      (e) => isMcpOAuthError(e, 'metadata_invalid') && e.message.includes(url) && e.message.includes('code_challenge_methods_supported'),
    );
    const missing = stubFetch({ [url]: json({ issuer: AS, authorization_endpoint: `${AS}/a` }) });
    await assert.rejects(discoverAuthorizationServer({ issuer: AS, fetch: missing.fetch }), (e) => isMcpOAuthError(e, 'metadata_invalid') && e.message.includes('token_endpoint'));
  });

  it('maps 5xx to server_unavailable and all-404 to metadata_invalid', async () => {
    const down = stubFetch({ [`${AS}/.well-known/oauth-authorization-server`]: json({}, 502) });
    await assert.rejects(discoverAuthorizationServer({ issuer: AS, fetch: down.fetch }), (e) => isMcpOAuthError(e, 'server_unavailable') && e.status === 502);
    const none = stubFetch({});
    await assert.rejects(discoverAuthorizationServer({ issuer: AS, fetch: none.fetch }), (e) => isMcpOAuthError(e, 'metadata_invalid') && !!e.hint);
  });

  it('maps a throwing fetch to network_error with a reachability hint', async () => {
    const fetch: FetchLike = async () => {
      throw new TypeError('fetch failed');
    };
    await assert.rejects(discoverAuthorizationServer({ issuer: AS, fetch }), (e) => isMcpOAuthError(e, 'network_error') && e.hint === 'check that auth.example.com is reachable, then retry');
  });
});

describe('discoverAll and probeChallenge', () => {
  const server = 'https://mcp.example.com/mcp';

  it('follows the challenge URL to the first authorization server', async () => {
    const stub = stubFetch({
      'https://mcp.example.com/prm': json({ resource: server, authorization_servers: [AS, 'https://second.example.com'] }),
      [`${AS}/.well-known/oauth-authorization-server`]: json(asMetadata()),
    });
    const result = await discoverAll({ serverUrl: server, challenge: { resourceMetadata: 'https://mcp.example.com/prm' }, fetch: stub.fetch });
    assert.equal(result.issuer, AS);
    assert.equal(result.authorizationServer.token_endpoint, `${AS}/token`);
    assert.deepEqual(stub.urls(), ['https://mcp.example.com/prm', `${AS}/.well-known/oauth-authorization-server`]);
  });

  it('sends an unauthenticated ping (no session is opened) and parses the 401 challenge', async () => {
    let cancelled = false;
    const stub = stubFetch({
      [server]: () =>
        new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode('{"error":"unauthorized"}'));
            },
            cancel() {
              cancelled = true;
            },
          }),
          { status: 401, headers: { 'www-authenticate': 'Bearer resource_metadata="https://mcp.example.com/prm", scope="a b"' } },
        ),
    });
    const challenge = await probeChallenge({ serverUrl: server, fetch: stub.fetch });
    assert.deepEqual(challenge, { resourceMetadata: 'https://mcp.example.com/prm', scope: ['a', 'b'] });
    assert.ok(cancelled, 'the response body is cancelled');
    const init = stub.calls[0].init!;
    assert.equal(init.method, 'POST');
    const headers = new Headers(init.headers);
    assert.equal(headers.get('content-type'), 'application/json');
    assert.equal(headers.get('accept'), 'application/json, text/event-stream');
    assert.equal(headers.get('authorization'), null);
    const body = JSON.parse(String(init.body));
    assert.equal(body.jsonrpc, '2.0');
    assert.equal(body.method, 'ping');
  });

  it('returns undefined when the server does not answer 401, and {} for a 401 without Bearer', async () => {
    assert.equal(await probeChallenge({ serverUrl: server, fetch: stubFetch({ [server]: json({ result: {} }) }).fetch }), undefined);
    assert.deepEqual(await probeChallenge({ serverUrl: server, fetch: stubFetch({ [server]: () => new Response('', { status: 401 }) }).fetch }), {});
  });
});
