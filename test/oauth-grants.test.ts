// The grants without a browser (src/oauth/grants.ts): client credentials (RFC 6749 §4.4), JWT
// bearer (RFC 7523 §2.1: workload identity, ID-JAG), and the RFC 8693 exchange of an ID token for
// an ID-JAG at the enterprise IdP. An in-memory fetch checks what is sent.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignJWT, jwtVerify } from 'jose';
import { isMcpOAuthError, type McpOAuthError } from '../src/errors.ts';
import { importSigningKey, privateKeyJwtClient } from '../src/oauth/client-assertion.ts';
import {
  ID_JAG_TOKEN_TYPE,
  ID_TOKEN_TYPE,
  JWT_BEARER_GRANT,
  TOKEN_EXCHANGE_GRANT,
  checkAssertion,
  exchangeTokenForIdJag,
  requestClientCredentialsToken,
  requestJwtBearerToken,
} from '../src/oauth/grants.ts';
import type { ClientAuth } from '../src/oauth/tokens.ts';
import type { FetchLike } from '../src/types.ts';
import { json, stubFetch } from './fixtures/token-endpoint-stub.ts';

const NOW = 1_800_000_000_000;
const SEC = NOW / 1000;
const ISSUER = 'https://auth.chat.example';
const TOKEN_ENDPOINT = 'https://auth.chat.example/token';
const IDP_TOKEN_ENDPOINT = 'https://acme.idp.example/oauth2/token';
const RESOURCE = 'https://mcp.chat.example/mcp';
const SECRET = 'cs-SECRET-client-secret-0123456789';
const ACCESS = 'at-SECRET-access-token-0123456789';
const SOURCE = 'the file /var/run/secrets/tokens/mcp-token';

const tokens = (extra: Record<string, unknown> = {}) => json({ access_token: ACCESS, token_type: 'Bearer', expires_in: 3600, ...extra });

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<McpOAuthError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(isMcpOAuthError(e), `expected McpOAuthError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

const issuerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
/** A signed JWT as a workload platform or an IdP would issue it. */
function jwt(claims: Record<string, unknown>, typ = 'JWT'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ }).sign(issuerKey.privateKey);
}
const workloadClaims = { iss: 'https://kubernetes.default.svc', sub: 'system:serviceaccount:ci:agent', aud: ISSUER, iat: SEC - 60, exp: SEC + 540, jti: 'w-1' };

const basic: ClientAuth = { clientId: 'svc', clientSecret: SECRET, method: 'client_secret_basic' };

describe('client credentials (RFC 6749 §4.4)', () => {
  it('posts grant_type, scope and resource with the client authentication, and returns the TokenSet', async () => {
    const { fetch, requests } = stubFetch(tokens({ scope: 'mcp:read' }));
    const got = await requestClientCredentialsToken({ tokenEndpoint: TOKEN_ENDPOINT, client: basic, scopes: ['mcp:read', 'mcp:write'], resource: RESOURCE, fetch, now: NOW });
    assert.deepEqual(got, { accessToken: ACCESS, tokenType: 'Bearer', refreshToken: undefined, expiresAt: NOW + 3_600_000, scopes: ['mcp:read'], idToken: undefined });
    const [{ url, body, headers }] = requests;
    assert.equal(url, TOKEN_ENDPOINT);
    assert.deepEqual([...body.keys()].sort(), ['grant_type', 'resource', 'scope']);
    assert.equal(body.get('grant_type'), 'client_credentials');
    assert.equal(body.get('scope'), 'mcp:read mcp:write');
    assert.equal(body.get('resource'), RESOURCE);
    assert.equal(headers.get('authorization'), `Basic ${Buffer.from(`svc:${SECRET}`).toString('base64')}`);
  });

  it('client_secret_post and private_key_jwt; no scope parameter when none is asked for', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pkjwt = privateKeyJwtClient({ clientId: 'svc', key: importSigningKey(String(key.privateKey.export({ format: 'pem', type: 'pkcs8' }))), issuer: ISSUER, signingAlgValuesSupported: ['ES256'] });
    const { fetch, requests } = stubFetch(tokens(), tokens());
    await requestClientCredentialsToken({ tokenEndpoint: TOKEN_ENDPOINT, client: { ...basic, method: 'client_secret_post' }, scopes: [], fetch, now: NOW });
    await requestClientCredentialsToken({ tokenEndpoint: TOKEN_ENDPOINT, client: pkjwt, scopes: [], resource: RESOURCE, fetch, now: NOW });
    assert.equal(requests[0].body.get('client_secret'), SECRET);
    assert.equal(requests[0].body.get('scope'), null);
    assert.equal(requests[0].body.get('resource'), null);
    await jwtVerify(requests[1].body.get('client_assertion')!, key.publicKey, { issuer: 'svc', subject: 'svc', audience: ISSUER, currentDate: new Date(NOW) });
  });

  it('a public client cannot use it: config error, nothing sent', async () => {
    const { fetch, requests } = stubFetch();
    const err = await rejection(requestClientCredentialsToken({ tokenEndpoint: TOKEN_ENDPOINT, client: { clientId: 'pub', method: 'none' }, scopes: [], fetch, now: NOW }));
    assert.equal(err.code, 'config_invalid');
    assert.match(err.message, /neither a client secret nor a private key/);
    assert.equal(requests.length, 0);
  });

  it('a wrong secret (invalid_client) says to check the id and secret, and never shows the secret', async () => {
    const { fetch } = stubFetch(json({ error: 'invalid_client', error_description: `bad secret ${SECRET}` }, 401));
    const err = await rejection(requestClientCredentialsToken({ tokenEndpoint: TOKEN_ENDPOINT, client: basic, scopes: [], fetch, now: NOW }));
    assert.equal(err.oauthError, 'invalid_client');
    assert.match(err.hint ?? '', /check the client id "svc" and the client secret/);
    assert.ok(!JSON.stringify(err.toJSON()).includes(SECRET));
  });
});

describe('checkAssertion', () => {
  it('returns the readable claims of a current assertion', async () => {
    const claims = checkAssertion(await jwt(workloadClaims), NOW, SOURCE);
    assert.deepEqual(claims, { iss: workloadClaims.iss, sub: workloadClaims.sub, aud: ISSUER, expiresAt: (SEC + 540) * 1000, issuedAt: (SEC - 60) * 1000 });
  });

  it('expired, not yet valid, or malformed: assertion_invalid naming the source', async () => {
    const cases: Array<[string, RegExp]> = [
      [await jwt({ ...workloadClaims, exp: SEC - 300 }), /expired at 2027-01-15T07:55:00\.000Z \(5 min ago\)/],
      [await jwt({ ...workloadClaims, nbf: SEC + 3600 }), /is not valid before .* \(60 min from now\)/],
      [await jwt({ ...workloadClaims, exp: 'tomorrow' }), /malformed "exp" claim/],
      ['only.two', /not a JWT \(expected three dot-separated parts, found 2\)/],
      ['a.bm90IGpzb24.c', /payload does not decode to a JSON object/],
      ['  ', /is empty/],
    ];
    for (const [assertion, message] of cases) {
      const err = await rejection(() => checkAssertion(assertion, NOW, SOURCE));
      assert.equal(err.code, 'assertion_invalid');
      assert.equal(err.exitCode, 3);
      assert.ok(err.message.startsWith(`The assertion from ${SOURCE} `), err.message);
      assert.match(err.message, message);
      assert.equal(err.details?.assertionSource, SOURCE);
    }
  });

  it('forgives a minute of clock skew on nbf and passes an encrypted (JWE) assertion on unread', async () => {
    checkAssertion(await jwt({ ...workloadClaims, nbf: SEC + 30 }), NOW, SOURCE);
    assert.deepEqual(checkAssertion('h.k.iv.ct.tag', NOW, SOURCE), {});
  });
});

describe('JWT bearer grant (RFC 7523 §2.1)', () => {
  it('workload identity: grant_type, the assertion (trimmed), scope, resource, and no client authentication', async () => {
    const assertion = await jwt(workloadClaims);
    const { fetch, requests } = stubFetch(tokens());
    const got = await requestJwtBearerToken({ tokenEndpoint: TOKEN_ENDPOINT, assertion: `${assertion}\n`, assertionSource: SOURCE, scopes: ['mcp:read'], resource: RESOURCE, fetch, now: NOW });
    assert.equal(got.accessToken, ACCESS);
    const [{ body, headers }] = requests;
    assert.deepEqual(Object.fromEntries(body), { grant_type: JWT_BEARER_GRANT, assertion, scope: 'mcp:read', resource: RESOURCE });
    assert.equal(headers.get('authorization'), null);
  });

  it('with a client: its authentication rides along (a public client sends client_id)', async () => {
    const { fetch, requests } = stubFetch(tokens(), tokens());
    await requestJwtBearerToken({ tokenEndpoint: TOKEN_ENDPOINT, assertion: await jwt(workloadClaims), client: { clientId: 'https://client.example/cimd.json', method: 'none' }, scopes: [], fetch, now: NOW });
    await requestJwtBearerToken({ tokenEndpoint: TOKEN_ENDPOINT, assertion: await jwt(workloadClaims), client: basic, scopes: [], fetch, now: NOW });
    assert.equal(requests[0].body.get('client_id'), 'https://client.example/cimd.json');
    assert.match(requests[1].headers.get('authorization') ?? '', /^Basic /);
  });

  it('an expired assertion is reported before anything is sent', async () => {
    const { fetch, requests } = stubFetch();
    const err = await rejection(requestJwtBearerToken({ tokenEndpoint: TOKEN_ENDPOINT, assertion: await jwt({ ...workloadClaims, exp: SEC - 1 }), assertionSource: SOURCE, scopes: [], fetch, now: NOW }));
    assert.equal(err.code, 'assertion_invalid');
    assert.match(err.message, /the file \/var\/run\/secrets\/tokens\/mcp-token expired/);
    assert.equal(requests.length, 0);
  });

  it('refused by the server (invalid_grant): assertion_invalid naming the source, issuer and audience; the assertion never shown', async () => {
    const assertion = await jwt({ ...workloadClaims, aud: 'https://someone-else.example' });
    const { fetch } = stubFetch(json({ error: 'invalid_grant', error_description: `untrusted issuer in ${assertion}` }, 400));
    const err = await rejection(requestJwtBearerToken({ tokenEndpoint: TOKEN_ENDPOINT, assertion, assertionSource: SOURCE, scopes: [], fetch, now: NOW }));
    assert.equal(err.code, 'assertion_invalid');
    assert.equal(err.oauthError, 'invalid_grant');
    assert.equal(err.status, 400);
    assert.match(err.message, /^The authorization server refused the assertion from the file \/var\/run\/secrets\/tokens\/mcp-token: invalid_grant \(untrusted issuer in sha256:[0-9a-f]+\)\.$/);
    assert.match(err.hint ?? '', /https:\/\/kubernetes\.default\.svc.*https:\/\/someone-else\.example/);
    assert.equal(err.details?.assertionSource, SOURCE);
    assert.ok(!JSON.stringify(err.toJSON()).includes(assertion));
  });

  it('other refusals keep their classification (a 503 stays transient)', async () => {
    const { fetch } = stubFetch(json({ error: 'temporarily_unavailable' }, 503));
    const err = await rejection(requestJwtBearerToken({ tokenEndpoint: TOKEN_ENDPOINT, assertion: await jwt(workloadClaims), scopes: [], fetch, now: NOW }));
    assert.equal(err.code, 'server_unavailable');
  });
});

describe('ID token → ID-JAG (RFC 8693 at the enterprise IdP)', () => {
  const idp: ClientAuth = { clientId: 'mcp-client-at-idp', clientSecret: SECRET, method: 'client_secret_post' };
  const idToken = 'eyJ.id-token-SECRET.sig';
  const exchange = (fetch: FetchLike) =>
    exchangeTokenForIdJag({ tokenEndpoint: IDP_TOKEN_ENDPOINT, client: idp, idToken, audience: ISSUER, resource: RESOURCE, scopes: ['chat.read', 'chat.history'], fetch, now: NOW });

  it('sends the token exchange the extension specifies and returns the ID-JAG', async () => {
    const idJag = await jwt({ iss: 'https://acme.idp.example', sub: 'U019488227', aud: ISSUER, resource: RESOURCE, client_id: 'f53f', exp: SEC + 300, iat: SEC, jti: 'j1' }, 'oauth-id-jag+jwt');
    const { fetch, requests } = stubFetch(json({ issued_token_type: ID_JAG_TOKEN_TYPE, access_token: idJag, token_type: 'N_A', scope: 'chat.read chat.history', expires_in: 300 }));
    const got = await exchange(fetch);
    assert.deepEqual(got, { assertion: idJag, expiresAt: NOW + 300_000, scopes: ['chat.read', 'chat.history'] });
    const [{ url, body }] = requests;
    assert.equal(url, IDP_TOKEN_ENDPOINT);
    assert.deepEqual(Object.fromEntries(body), {
      grant_type: TOKEN_EXCHANGE_GRANT,
      requested_token_type: ID_JAG_TOKEN_TYPE,
      audience: ISSUER,
      resource: RESOURCE,
      scope: 'chat.read chat.history',
      subject_token: idToken,
      subject_token_type: ID_TOKEN_TYPE,
      client_id: 'mcp-client-at-idp',
      client_secret: SECRET,
    });

    // …and the ID-JAG is then the JWT bearer grant's assertion at the MCP authorization server.
    const as = stubFetch(tokens());
    await requestJwtBearerToken({ tokenEndpoint: TOKEN_ENDPOINT, assertion: got.assertion, assertionSource: 'the ID-JAG from https://acme.idp.example', client: { clientId: 'mcp-client', method: 'none' }, scopes: ['chat.read'], resource: RESOURCE, fetch: as.fetch, now: NOW });
    assert.equal(as.requests[0].body.get('assertion'), idJag);
    assert.equal(as.requests[0].body.get('grant_type'), JWT_BEARER_GRANT);
  });

  it('the expiry falls back to the ID-JAG\'s exp', async () => {
    const idJag = await jwt({ exp: SEC + 120 });
    const { fetch } = stubFetch(json({ issued_token_type: ID_JAG_TOKEN_TYPE, access_token: idJag, token_type: 'N_A' }));
    assert.equal((await exchange(fetch)).expiresAt, NOW + 120_000);
  });

  it('validates the response: issued_token_type must be id-jag, access_token a JWT', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', access_token: await jwt({}), token_type: 'Bearer' }, /issued_token_type is "urn:ietf:params:oauth:token-type:access_token", not urn:ietf:params:oauth:token-type:id-jag/],
      [{ access_token: await jwt({}), token_type: 'N_A' }, /missing or malformed issued_token_type/],
      [{ issued_token_type: ID_JAG_TOKEN_TYPE, token_type: 'N_A' }, /missing or malformed access_token/],
      [{ issued_token_type: ID_JAG_TOKEN_TYPE, access_token: 'opaque-SECRET', token_type: 'N_A' }, /the issued ID-JAG is not a JWT/],
    ];
    for (const [body, message] of cases) {
      const err = await rejection(exchange(stubFetch(json(body)).fetch));
      assert.equal(err.code, 'token_response_invalid');
      assert.match(err.message, message);
      assert.ok(!err.message.includes('opaque-SECRET'));
    }
  });

  it('an IdP refusal is worded as the IdP\'s, with the next step', async () => {
    const expired = await rejection(exchange(stubFetch(json({ error: 'invalid_grant', error_description: 'id token expired' }, 400)).fetch));
    assert.equal(expired.code, 'oauth_error');
    assert.equal(expired.oauthError, 'invalid_grant');
    assert.match(expired.message, /^The identity provider refused the token exchange of the ID token for an ID-JAG for https:\/\/auth\.chat\.example: invalid_grant \(id token expired\)/);
    assert.match(expired.hint ?? '', /sign in to the identity provider again/);
    const policy = await rejection(exchange(stubFetch(json({ error: 'invalid_target' }, 400)).fetch));
    assert.match(policy.hint ?? '', /policy does not let this client reach https:\/\/auth\.chat\.example/);
  });
});
