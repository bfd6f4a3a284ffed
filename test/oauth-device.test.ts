// The device grant's protocol core (src/oauth/device.ts), pure: an in-memory fetch, a fake clock
// and a sleep that only advances that clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMcpOAuthError, type McpOAuthError } from '../src/errors.ts';
import {
  DEVICE_CODE_GRANT, deviceAuthorizationEndpointOf, pollDeviceToken, requestDeviceAuthorization, type DeviceAuthorization, type PollEvent,
} from '../src/oauth/device.ts';
import type { ClientAuth } from '../src/oauth/tokens.ts';
import type { AuthorizationServerMetadata } from '../src/oauth/discovery.ts';
import type { FetchLike } from '../src/types.ts';

interface Captured { url: string; headers: Headers; body: URLSearchParams; raw: string; at: number }

const NOW = 1_800_000_000_000;
const DEVICE_ENDPOINT = 'https://as.example.com/device/auth';
const TOKEN_ENDPOINT = 'https://as.example.com/token';
const RESOURCE = 'https://mcp.example.com/mcp';
const DEVICE_CODE = 'dc-SECRET-device-code-0123456789';
const ACCESS = 'at-SECRET-access-token-0123456789';
const PUBLIC: ClientAuth = { clientId: 'client-1', method: 'none' };

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const oauthError = (error: string, status = 400) => json({ error, error_description: `sandbox says ${error}` }, status);
const tokens = () => json({ access_token: ACCESS, token_type: 'Bearer', expires_in: 3600, refresh_token: 'rt-SECRET-refresh-0123456789' });

/** A fake world: the clock only moves when the code under test sleeps. */
function world(...responses: Array<Response | Error>) {
  let now = NOW;
  const requests: Captured[] = [];
  const sleeps: number[] = [];
  const fetch: FetchLike = async (input, init) => {
    const raw = String(init?.body ?? '');
    requests.push({ url: String(input), headers: new Headers(init?.headers), body: new URLSearchParams(raw), raw, at: now });
    const next = responses.shift();
    if (next === undefined) throw new Error('unexpected request');
    if (next instanceof Error) throw next;
    return next;
  };
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    now += ms;
  };
  return { fetch, sleep, clock: () => now, requests, sleeps };
}

function authorization(overrides: Partial<DeviceAuthorization> = {}): DeviceAuthorization {
  return { deviceCode: DEVICE_CODE, userCode: 'WDJB-MJHT', verificationUri: 'https://as.example.com/device', expiresAt: NOW + 600_000, intervalSeconds: 5, ...overrides };
}

async function poll(w: ReturnType<typeof world>, auth = authorization(), events: PollEvent[] = []) {
  return pollDeviceToken({ tokenEndpoint: TOKEN_ENDPOINT, client: PUBLIC, authorization: auth, resource: RESOURCE, fetch: w.fetch, clock: w.clock, sleep: w.sleep, onPoll: (e) => events.push(e) });
}

async function rejection(p: Promise<unknown>): Promise<McpOAuthError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isMcpOAuthError(e), `expected an McpOAuthError, got ${String(e)}`);
    assert.ok(!e.message.includes(DEVICE_CODE) && !(e.hint ?? '').includes(DEVICE_CODE), 'the device code never appears in an error');
    return e;
  }
  assert.fail('expected a rejection');
}

describe('requestDeviceAuthorization (RFC 8628 §3.1–3.2)', () => {
  it('sends client_id, scope and resource; parses the response; the interval defaults to 5 s', async () => {
    const w = world(json({ device_code: DEVICE_CODE, user_code: 'WDJB-MJHT', verification_uri: 'https://as.example.com/device', verification_uri_complete: 'https://as.example.com/device?user_code=WDJB-MJHT', expires_in: 1800 }));
    const got = await requestDeviceAuthorization({ endpoint: DEVICE_ENDPOINT, client: PUBLIC, scopes: ['mcp:tools', 'offline_access'], resource: RESOURCE, fetch: w.fetch, now: NOW });
    assert.deepEqual(got, {
      deviceCode: DEVICE_CODE, userCode: 'WDJB-MJHT', verificationUri: 'https://as.example.com/device',
      verificationUriComplete: 'https://as.example.com/device?user_code=WDJB-MJHT', expiresAt: NOW + 1_800_000, intervalSeconds: 5,
    });
    const [req] = w.requests;
    assert.equal(req.url, DEVICE_ENDPOINT);
    assert.deepEqual(Object.fromEntries(req.body), { client_id: 'client-1', scope: 'mcp:tools offline_access', resource: RESOURCE });
  });

  it('authenticates a confidential client as at the token endpoint (client_secret_basic), and omits an empty scope', async () => {
    const w = world(json({ device_code: DEVICE_CODE, user_code: 'ABCD', verification_url: 'https://www.google.com/device', expires_in: '1800', interval: 7 }));
    const got = await requestDeviceAuthorization({ endpoint: DEVICE_ENDPOINT, client: { clientId: 'c', clientSecret: 's:1', method: 'client_secret_basic' }, scopes: [], resource: RESOURCE, fetch: w.fetch, now: NOW });
    assert.equal(got.verificationUri, 'https://www.google.com/device', "Google's verification_url is accepted");
    assert.equal(got.intervalSeconds, 7);
    const [req] = w.requests;
    assert.equal(req.headers.get('authorization'), `Basic ${Buffer.from('c:s%3A1').toString('base64')}`);
    assert.equal(req.body.has('scope'), false);
    assert.equal(req.body.has('client_secret'), false);
  });

  it('refuses responses it could not show safely or use', async () => {
    const cases: unknown[] = [
      { device_code: DEVICE_CODE, user_code: 'AB\u001b[2JCD', verification_uri: 'https://as.example.com/device', expires_in: 600 },
      { device_code: DEVICE_CODE, user_code: 'ABCD', verification_uri: 'javascript:alert(1)', expires_in: 600 },
      { device_code: DEVICE_CODE, user_code: 'ABCD', verification_uri: 'https://as.example.com/device', expires_in: 0 },
      { device_code: DEVICE_CODE, user_code: 'ABCD', expires_in: 600 },
    ];
    for (const body of cases) {
      const w = world(json(body));
      const err = await rejection(requestDeviceAuthorization({ endpoint: DEVICE_ENDPOINT, client: PUBLIC, scopes: [], resource: RESOURCE, fetch: w.fetch, now: NOW }));
      assert.equal(err.code, 'token_response_invalid');
    }
  });

  it('an OAuth error (unauthorized_client) is an oauth_error naming it', async () => {
    const w = world(oauthError('unauthorized_client'));
    const err = await rejection(requestDeviceAuthorization({ endpoint: DEVICE_ENDPOINT, client: PUBLIC, scopes: [], resource: RESOURCE, fetch: w.fetch, now: NOW }));
    assert.equal(err.code, 'oauth_error');
    assert.equal(err.oauthError, 'unauthorized_client');
  });

  it('deviceAuthorizationEndpointOf reads the metadata member (RFC 8628 §4)', () => {
    const base = { issuer: 'https://as.example.com', authorization_endpoint: 'https://as.example.com/auth', token_endpoint: TOKEN_ENDPOINT } as AuthorizationServerMetadata;
    assert.equal(deviceAuthorizationEndpointOf(base), undefined);
    assert.equal(deviceAuthorizationEndpointOf({ ...base, device_authorization_endpoint: DEVICE_ENDPOINT } as AuthorizationServerMetadata), DEVICE_ENDPOINT);
  });
});

describe('pollDeviceToken (RFC 8628 §3.4–3.5)', () => {
  it('waits the interval before each poll, keeps polling on authorization_pending, returns the tokens', async () => {
    const w = world(oauthError('authorization_pending'), oauthError('authorization_pending'), tokens());
    const events: PollEvent[] = [];
    const got = await poll(w, authorization(), events);
    assert.equal(got.accessToken, ACCESS);
    assert.equal(got.expiresAt, NOW + 15_000 + 3_600_000, 'expires_in counts from the receipt of the token');
    assert.deepEqual(w.sleeps, [5000, 5000, 5000]);
    assert.deepEqual(events.map((e) => e.type), ['pending', 'pending']);
    for (const req of w.requests) {
      assert.deepEqual(Object.fromEntries(req.body), { grant_type: DEVICE_CODE_GRANT, device_code: DEVICE_CODE, resource: RESOURCE, client_id: 'client-1' });
    }
  });

  it('slow_down adds 5 s to the interval for that and every later poll', async () => {
    const w = world(oauthError('slow_down'), oauthError('authorization_pending'), oauthError('slow_down'), oauthError('authorization_pending'), tokens());
    await poll(w, authorization({ intervalSeconds: 2 }));
    assert.deepEqual(w.sleeps, [2000, 7000, 7000, 12000, 12000]);
  });

  it('slow_down sent with 429 still means slow down, not a transient failure', async () => {
    const w = world(oauthError('slow_down', 429), tokens());
    await poll(w);
    assert.deepEqual(w.sleeps, [5000, 10000]);
  });

  it('access_denied → signin_denied (exit 4)', async () => {
    const w = world(oauthError('authorization_pending'), oauthError('access_denied'));
    const err = await rejection(poll(w));
    assert.equal(err.code, 'signin_denied');
    assert.equal(err.exitCode, 4);
  });

  it('expired_token → signin_timeout (exit 4)', async () => {
    const err = await rejection(poll(world(oauthError('expired_token'))));
    assert.equal(err.code, 'signin_timeout');
    assert.equal(err.exitCode, 4);
  });

  it('stops at expires_in even when the server keeps saying pending, without polling past it', async () => {
    const w = world(oauthError('authorization_pending'), oauthError('authorization_pending'));
    const err = await rejection(poll(w, authorization({ expiresAt: NOW + 12_000 })));
    assert.equal(err.code, 'signin_timeout');
    assert.equal(w.requests.length, 2);
    assert.ok(w.requests.every((r) => r.at < NOW + 12_000));
  });

  it('retries transient failures (network, 503) with a doubling wait, honouring Retry-After', async () => {
    const w = world(new TypeError('fetch failed'), oauthError('temporarily_unavailable', 503), json({}, 503, { 'retry-after': '50' }), oauthError('authorization_pending'), tokens());
    const events: PollEvent[] = [];
    const got = await poll(w, authorization(), events);
    assert.equal(got.accessToken, ACCESS);
    assert.deepEqual(w.sleeps, [5000, 10000, 20000, 50000, 5000]);
    assert.deepEqual(events.map((e) => e.type), ['retry', 'retry', 'retry', 'pending']);
  });

  it('other errors end the polling as tokens.ts classifies them (invalid_client → oauth_error)', async () => {
    const w = world(oauthError('invalid_client', 401));
    const err = await rejection(poll(w));
    assert.equal(err.code, 'oauth_error');
    assert.equal(err.oauthError, 'invalid_client');
    assert.equal(w.requests.length, 1);
  });

  it('a 200 that is not a Bearer token response is token_response_invalid', async () => {
    const err = await rejection(poll(world(json({ access_token: ACCESS, token_type: 'mac' }))));
    assert.equal(err.code, 'token_response_invalid');
  });
});

describe('client registration for the device grant (registration.ts extraGrantTypes)', async () => {
  const { resolveClientRegistration } = await import('../src/oauth/registration.ts');
  const ISSUER = 'https://as.example.com';
  const metadata = { issuer: ISSUER, authorization_endpoint: `${ISSUER}/auth`, token_endpoint: TOKEN_ENDPOINT, registration_endpoint: `${ISSUER}/reg` } as AuthorizationServerMetadata;
  const REDIRECT = 'http://127.0.0.1/callback';
  const register = (fetch: FetchLike, existing?: Awaited<ReturnType<typeof resolveClientRegistration>>) =>
    resolveClientRegistration({ issuer: ISSUER, metadata, redirectUri: REDIRECT, clientName: 'mcp-oauth', fetch, now: NOW, existing, extraGrantTypes: [DEVICE_CODE_GRANT] });

  it('asks for the device grant besides the usual ones and records what was registered', async () => {
    const w = world(json({ client_id: 'dev-client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', DEVICE_CODE_GRANT, 'refresh_token'] }, 201));
    const reg = await register(w.fetch);
    const sent = JSON.parse(w.requests[0].raw);
    assert.deepEqual(sent.grant_types, ['authorization_code', DEVICE_CODE_GRANT, 'refresh_token']);
    assert.deepEqual(sent.redirect_uris, [REDIRECT]);
    assert.deepEqual(reg.grantTypes, ['authorization_code', DEVICE_CODE_GRANT, 'refresh_token']);
  });

  it('registers again when the stored registration lacks the device grant, reuses one that has it', async () => {
    const old = { issuer: ISSUER, clientId: 'browser-client', tokenEndpointAuthMethod: 'none' as const, redirectUris: ['http://127.0.0.1:5000/callback'], source: 'dynamic_registration' as const, registeredAt: NOW };
    const w = world(json({ client_id: 'dev-client', redirect_uris: [REDIRECT] }, 201));
    const fresh = await register(w.fetch, old);
    assert.equal(fresh.clientId, 'dev-client');
    assert.deepEqual(fresh.grantTypes, ['authorization_code', DEVICE_CODE_GRANT, 'refresh_token'], 'the requested grants when the response omits them');
    assert.equal(await register(world().fetch, fresh), fresh, 'no request: reused');
  });
});
