/**
 * Discovery as deployed servers do it (issue "Every real server and identity provider"): resource
 * metadata for a path prefix, the 2025-03-26 fallback, trailing-slash issuers, and documents that
 * never end. Pure: every response comes from an in-memory fetch.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { discoverAll, findProtectedResource, resourceCovering, sameIssuer, listsIssuer } from '../src/oauth/discovery.ts';
import { withTimeout } from '../src/oauth/http.ts';
import { isMcpOAuthError } from '../src/errors.ts';
import type { FetchLike } from '../src/types.ts';

function stubFetch(routes: Record<string, () => Response>) {
  const calls: string[] = [];
  const fetch: FetchLike = async (input) => {
    const url = String(input);
    calls.push(url);
    const route = routes[url];
    return route ? route() : new Response('not found', { status: 404 });
  };
  return { fetch, calls };
}
const json = (body: unknown) => () => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
const asMetadata = (issuer: string) => ({
  issuer,
  authorization_endpoint: `${issuer}/authorize`,
  token_endpoint: `${issuer}/token`,
  code_challenge_methods_supported: ['S256'],
});
const SERVER = 'https://host.example.com/mcp';
const ROOT_PRM = 'https://host.example.com/.well-known/oauth-protected-resource';
const AS = 'https://auth.example.com';

describe('resourceCovering', () => {
  it('accepts the server URL itself and same-origin path prefixes at a segment boundary', () => {
    assert.equal(resourceCovering('https://host.example.com/mcp', SERVER), 'https://host.example.com/mcp');
    assert.equal(resourceCovering('https://HOST.example.com/', SERVER), 'https://host.example.com');
    assert.equal(resourceCovering('https://host.example.com', SERVER), 'https://host.example.com');
    assert.equal(resourceCovering('https://host.example.com/a', 'https://host.example.com/a/mcp'), 'https://host.example.com/a');
  });
  it('refuses another origin, a non-prefix path, and a longer path', () => {
    assert.equal(resourceCovering('https://other.example.com', SERVER), undefined);
    assert.equal(resourceCovering('http://host.example.com/mcp', SERVER), undefined);
    assert.equal(resourceCovering('https://host.example.com:8443/mcp', SERVER), undefined);
    assert.equal(resourceCovering('https://host.example.com/a', 'https://host.example.com/ab/mcp'), undefined);
    assert.equal(resourceCovering('https://host.example.com/mcp/v2', SERVER), undefined);
    assert.equal(resourceCovering('not a url', SERVER), undefined);
  });
});

describe('sameIssuer', () => {
  it('forgives only a trailing slash on an empty path', () => {
    assert.ok(sameIssuer('https://accounts.google.com/', 'https://accounts.google.com'));
    assert.ok(sameIssuer('https://accounts.google.com', 'https://accounts.google.com/'));
    assert.ok(!sameIssuer('https://login.example.com/t/', 'https://login.example.com/t'));
    assert.ok(!sameIssuer('https://Accounts.google.com', 'https://accounts.google.com'));
    assert.ok(!sameIssuer('https://accounts.google.com//', 'https://accounts.google.com'));
    assert.ok(!sameIssuer('https://accounts.google.com:443', 'https://accounts.google.com'));
  });
  it('listsIssuer applies it to authorization_servers', () => {
    const prm = { resource: SERVER, authorization_servers: ['https://accounts.google.com/'] };
    assert.ok(listsIssuer(prm, 'https://accounts.google.com'));
    assert.ok(!listsIssuer(prm, 'https://other.example.com'));
  });
});

describe('discoverAll on deployed servers', () => {
  it('root-only metadata naming the origin: the origin becomes the resource parameter', async () => {
    const stub = stubFetch({ [ROOT_PRM]: json({ resource: 'https://host.example.com', authorization_servers: [AS] }), [`${AS}/.well-known/oauth-authorization-server`]: json(asMetadata(AS)) });
    const found = await discoverAll({ serverUrl: SERVER, fetch: stub.fetch });
    assert.equal(found.resource, 'https://host.example.com');
    assert.equal(found.issuer, AS);
    assert.equal(found.via, 'resource_metadata');
  });

  it('a resource on another origin is refused before any authorization server request', async () => {
    const stub = stubFetch({ [ROOT_PRM]: json({ resource: 'https://evil.example.com', authorization_servers: [AS] }), [`${AS}/.well-known/oauth-authorization-server`]: json(asMetadata(AS)) });
    await assert.rejects(discoverAll({ serverUrl: SERVER, fetch: stub.fetch }), (e) => isMcpOAuthError(e, 'resource_mismatch'));
    assert.ok(!stub.calls.some((u) => u.startsWith(AS)), 'no request reached the authorization server');
  });

  it('a per-tool metadata URL from the challenge, and a trailing-slash issuer keyed by the metadata issuer', async () => {
    const prmUrl = 'https://host.example.com/.well-known/oauth-protected-resource/list_calendars';
    const google = 'https://accounts.google.com';
    const stub = stubFetch({
      [prmUrl]: json({ resource: SERVER, authorization_servers: [`${google}/`] }),
      [`${google}/.well-known/openid-configuration`]: json(asMetadata(google)),
    });
    const found = await discoverAll({ serverUrl: SERVER, challenge: { resourceMetadata: prmUrl }, fetch: stub.fetch });
    assert.equal(stub.calls[0], prmUrl, 'the challenge URL is asked first');
    assert.equal(found.issuer, google);
  });

  it('an issuer that differs by more than the slash is refused', async () => {
    const stub = stubFetch({
      [ROOT_PRM]: json({ resource: SERVER, authorization_servers: [AS] }),
      [`${AS}/.well-known/oauth-authorization-server`]: json(asMetadata('https://auth.example.com/other')),
    });
    await assert.rejects(discoverAll({ serverUrl: SERVER, fetch: stub.fetch }), (e) => isMcpOAuthError(e, 'issuer_mismatch'));
  });

  it('2025-03-26 fallback: no resource metadata, the AS metadata at the origin', async () => {
    const origin = 'https://host.example.com';
    const stub = stubFetch({ [`${origin}/.well-known/oauth-authorization-server`]: json(asMetadata(origin)) });
    const found = await discoverAll({ serverUrl: SERVER, fetch: stub.fetch });
    assert.equal(found.via, 'origin_metadata');
    assert.equal(found.issuer, origin);
    assert.equal(found.resource, SERVER);
    assert.equal(found.resourceMetadata, undefined);
  });

  it('2025-03-26 fallback: no metadata at all, the default endpoints', async () => {
    const stub = stubFetch({});
    const found = await discoverAll({ serverUrl: SERVER, fetch: stub.fetch });
    assert.equal(found.via, 'default_endpoints');
    assert.equal(found.authorizationServer.authorization_endpoint, 'https://host.example.com/authorize');
    assert.equal(found.authorizationServer.token_endpoint, 'https://host.example.com/token');
    assert.equal(found.authorizationServer.registration_endpoint, 'https://host.example.com/register');
  });

  it('the fallback is not used when resource metadata exists but is broken', async () => {
    const stub = stubFetch({ [ROOT_PRM]: () => new Response('<html>hi</html>', { status: 200, headers: { 'content-type': 'text/html' } }) });
    await assert.rejects(discoverAll({ serverUrl: SERVER, fetch: stub.fetch }), (e) => isMcpOAuthError(e, 'metadata_invalid') && /not JSON/.test(e.message));
  });

  it('missing code_challenge_methods_supported passes only with the opt-in', async () => {
    const meta = { ...asMetadata(AS), code_challenge_methods_supported: undefined };
    const routes = { [ROOT_PRM]: json({ resource: SERVER, authorization_servers: [AS] }), [`${AS}/.well-known/oauth-authorization-server`]: json(meta) };
    await assert.rejects(discoverAll({ serverUrl: SERVER, fetch: stubFetch(routes).fetch }), (e) => isMcpOAuthError(e, 'pkce_unsupported') && /assume_pkce|entra/.test(e.hint ?? ''));
    const found = await discoverAll({ serverUrl: SERVER, fetch: stubFetch(routes).fetch, pkceOptIn: (issuer) => issuer === AS });
    assert.equal(found.issuer, AS);
  });
});

describe('documents that never end', () => {
  const endless = () =>
    new Response(new ReadableStream({ pull(c) { c.enqueue(new TextEncoder().encode(' '.repeat(64 * 1024))); } }), { status: 200, headers: { 'content-type': 'application/json' } });

  it('a document larger than 1 MiB is refused without reading it all', async () => {
    const stub = stubFetch({ [ROOT_PRM]: endless });
    await assert.rejects(findProtectedResource({ serverUrl: SERVER, fetch: stub.fetch }), (e) => isMcpOAuthError(e, 'metadata_invalid') && /larger than/.test(e.message));
  });

  it('a document that trickles is cut off by the deadline', async () => {
    const trickle: FetchLike = async (_input, init) =>
      new Response(new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode('{'));
          init?.signal?.addEventListener('abort', () => c.error(init.signal!.reason));
        },
      }), { status: 200, headers: { 'content-type': 'application/json' } });
    const started = Date.now();
    await assert.rejects(findProtectedResource({ serverUrl: SERVER, fetch: withTimeout(trickle, 200) }), (e) => isMcpOAuthError(e, 'network_error') && /in time/.test(e.message));
    assert.ok(Date.now() - started < 5000);
  });
});
