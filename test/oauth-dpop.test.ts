// DPoP (RFC 9449, src/oauth/dpop.ts): keys, thumbprints, proofs (verified with the key embedded in
// them, as a server does), nonces at the authorization server and the resource server, the retry cap.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { EmbeddedJWK, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { isMcpOAuthError, type McpOAuthError } from '../src/errors.ts';
import {
  chooseDpopAlg,
  createDpopProof,
  dpopNonceFrom,
  dpopThumbprint,
  generateDpopKey,
  isUseDpopNonceError,
  sendWithDpop,
} from '../src/oauth/dpop.ts';
import { requestClientCredentialsToken } from '../src/oauth/grants.ts';
import { refreshAccessToken, type ClientAuth } from '../src/oauth/tokens.ts';
import { json, stubFetch } from './fixtures/token-endpoint-stub.ts';

const NOW = 1_800_000_000_000;
const TOKEN_ENDPOINT = 'https://as.example.com/token';
const RESOURCE = 'https://mcp.example.com/mcp';
const ACCESS = 'at-SECRET-access-token-0123456789';
const PUBLIC: ClientAuth = { clientId: 'client-1', method: 'none' };

const useNonce = (nonce?: string) => json({ error: 'use_dpop_nonce', error_description: 'Authorization server requires nonce in DPoP proof' }, 400, nonce ? { 'DPoP-Nonce': nonce } : {});
const dpopTokens = (nonce?: string) => json({ access_token: ACCESS, token_type: 'DPoP', expires_in: 60, refresh_token: 'rt-2' }, 200, nonce ? { 'DPoP-Nonce': nonce } : {});

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<McpOAuthError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(isMcpOAuthError(e), `expected McpOAuthError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

/** Verifies a proof with the key in its own header (RFC 9449 §4.3 steps 5–7) and returns it. */
async function verifyProof(proof: string) {
  const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', currentDate: new Date(NOW) });
  return { payload, protectedHeader };
}

describe('DPoP keys', () => {
  it('generates an exportable private JWK and its public half; the thumbprint is RFC 7638 and stable', async () => {
    const key = await generateDpopKey();
    assert.equal(key.alg, 'ES256');
    assert.equal(key.privateJwk.kty, 'EC');
    assert.equal(typeof key.privateJwk.d, 'string');
    assert.deepEqual(Object.keys(key.publicJwk).sort(), ['crv', 'kty', 'x', 'y']);
    assert.equal(key.thumbprint, await calculateJwkThumbprint(key.publicJwk, 'sha256'));
    // The stored private JWK (after a JSON round trip, as the store keeps it) has the same thumbprint.
    assert.equal(await dpopThumbprint(JSON.parse(JSON.stringify(key.privateJwk))), key.thumbprint);
    assert.equal(await dpopThumbprint(key.publicJwk), key.thumbprint);
    assert.notEqual((await generateDpopKey()).thumbprint, key.thumbprint);
  });

  it('EdDSA and RSA keys too', async () => {
    for (const alg of ['EdDSA', 'PS256'] as const) {
      const key = await generateDpopKey(alg);
      const proof = await createDpopProof({ privateJwk: key.privateJwk, htm: 'POST', htu: TOKEN_ENDPOINT, now: NOW });
      const { protectedHeader } = await verifyProof(proof);
      assert.equal(protectedHeader.alg, alg);
      assert.equal((protectedHeader.jwk as Record<string, unknown> | undefined)?.d, undefined, 'no private member in the header');
    }
  });

  it('chooseDpopAlg: ours in the order we prefer, among what the AS lists', async () => {
    assert.equal(chooseDpopAlg(['RS256', 'ES256']), 'ES256');
    assert.equal(chooseDpopAlg(['PS256', 'RS256']), 'PS256');
    assert.equal(chooseDpopAlg(undefined), 'ES256');
    const err = await rejection(() => chooseDpopAlg(['ES256K', 'Ed448'], 'https://as.example.com'));
    assert.equal(err.code, 'dpop_error');
    assert.match(err.message, /The authorization server https:\/\/as\.example\.com accepts DPoP proofs signed with ES256K, Ed448/);
  });
});

describe('DPoP proofs (RFC 9449 §4.2)', () => {
  it('typ dpop+jwt, the public jwk, jti, htm, htu without query or fragment, iat; nonce only when given', async () => {
    const key = await generateDpopKey();
    const proof = await createDpopProof({ privateJwk: key.privateJwk, htm: 'post', htu: 'https://user:pw@as.example.com/token?x=1#frag', now: NOW + 999 });
    const { payload, protectedHeader } = await verifyProof(proof);
    assert.equal(protectedHeader.typ, 'dpop+jwt');
    assert.equal(protectedHeader.alg, 'ES256');
    assert.deepEqual(protectedHeader.jwk, key.publicJwk);
    assert.equal(payload.htm, 'POST');
    assert.equal(payload.htu, 'https://as.example.com/token');
    assert.equal(payload.iat, NOW / 1000);
    assert.match(String(payload.jti), /^[\w-]{22,}$/);
    assert.equal('nonce' in payload, false);
    assert.equal('ath' in payload, false);
    const again = decodeJwt(await createDpopProof({ privateJwk: key.privateJwk, htm: 'POST', htu: TOKEN_ENDPOINT, nonce: 'n-1', now: NOW }));
    assert.notEqual(again.jti, payload.jti);
    assert.equal(again.nonce, 'n-1');
  });

  it('ath is base64url(SHA-256(access token)) on resource requests; content_digest for a body', async () => {
    const key = await generateDpopKey();
    const body = '{"jsonrpc":"2.0","method":"tools/list","id":1}';
    const proof = await createDpopProof({ privateJwk: key.privateJwk, htm: 'POST', htu: RESOURCE, accessToken: ACCESS, body, now: NOW });
    const { payload } = await verifyProof(proof);
    assert.equal(payload.ath, createHash('sha256').update(ACCESS).digest('base64url'));
    assert.equal(payload.content_digest, `sha-256=:${createHash('sha256').update(body).digest('base64')}:`);
  });
});

describe('DPoP nonces', () => {
  it('dpopNonceFrom reads DPoP-Nonce and ignores malformed values', () => {
    assert.equal(dpopNonceFrom(new Headers({ 'DPoP-Nonce': 'eyJ7S_zG.eyJH0-Z.HX4w-7v' })), 'eyJ7S_zG.eyJH0-Z.HX4w-7v');
    assert.equal(dpopNonceFrom(new Headers({ 'DPoP-Nonce': 'has space' })), undefined);
    assert.equal(dpopNonceFrom(new Headers({ 'DPoP-Nonce': 'quote"d' })), undefined);
    assert.equal(dpopNonceFrom(new Response(null, { headers: { 'dpop-nonce': 'n' } })), 'n');
  });

  it('isUseDpopNonceError: the AS 400 (§8) and the RS 401 challenge (§9, next to a Bearer one); the body stays readable', async () => {
    const as = useNonce('n1');
    assert.equal(await isUseDpopNonceError(as), true);
    assert.equal((await as.json()).error, 'use_dpop_nonce');
    const rs = new Response(null, { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="x", DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"' } });
    assert.equal(await isUseDpopNonceError(rs), true);
    assert.equal(await isUseDpopNonceError(new Response(null, { status: 401, headers: { 'WWW-Authenticate': 'Bearer error="use_dpop_nonce", DPoP error="invalid_token"' } })), false);
    assert.equal(await isUseDpopNonceError(json({ error: 'invalid_grant' }, 400)), false);
  });

  it('token request: retries once with the fresh nonce, reports every new nonce, keeps token_type DPoP', async () => {
    const key = await generateDpopKey();
    const nonces: string[] = [];
    const { fetch, requests } = stubFetch(useNonce('n1'), dpopTokens('n2'));
    const got = await refreshAccessToken({
      tokenEndpoint: TOKEN_ENDPOINT, client: PUBLIC, refreshToken: 'rt-1', resource: RESOURCE, fetch, now: NOW,
      dpop: { privateJwk: key.privateJwk, onNonce: (n) => nonces.push(n) },
    });
    assert.equal(got.tokenType, 'DPoP');
    assert.equal(got.accessToken, ACCESS);
    assert.deepEqual(nonces, ['n1', 'n2']);
    assert.equal(requests.length, 2);
    const proofs = await Promise.all(requests.map((r) => verifyProof(r.headers.get('dpop')!)));
    assert.equal('nonce' in proofs[0].payload, false);
    assert.equal(proofs[1].payload.nonce, 'n1');
    for (const p of proofs) {
      assert.equal(p.payload.htm, 'POST');
      assert.equal(p.payload.htu, TOKEN_ENDPOINT);
      assert.equal('ath' in p.payload, false, 'no ath at the token endpoint');
      assert.equal(await calculateJwkThumbprint(p.protectedHeader.jwk!), key.thumbprint);
    }
    assert.notEqual(proofs[0].payload.jti, proofs[1].payload.jti);
    assert.equal(requests[1].body.get('refresh_token'), 'rt-1', 'the same request again');
  });

  it('a cached nonce goes into the first proof', async () => {
    const key = await generateDpopKey();
    const { fetch, requests } = stubFetch(dpopTokens());
    await requestClientCredentialsToken({ tokenEndpoint: TOKEN_ENDPOINT, client: { clientId: 'svc', clientSecret: 's', method: 'client_secret_post' }, scopes: [], fetch, now: NOW, dpop: { privateJwk: key.privateJwk, nonce: 'cached' } });
    assert.equal(decodeJwt(requests[0].headers.get('dpop')!).nonce, 'cached');
  });

  it('a nonce loop stops after 2 retries with a dpop_error naming the server', async () => {
    const key = await generateDpopKey();
    const { fetch, requests } = stubFetch(useNonce('n1'), useNonce('n2'), useNonce('n3'), dpopTokens());
    const err = await rejection(refreshAccessToken({ tokenEndpoint: TOKEN_ENDPOINT, client: PUBLIC, refreshToken: 'rt-1', fetch, now: NOW, dpop: { privateJwk: key.privateJwk } }));
    assert.equal(requests.length, 3);
    assert.equal(err.code, 'dpop_error');
    assert.equal(err.exitCode, 5);
    assert.equal(err.oauthError, 'use_dpop_nonce');
    assert.match(err.message, /^The token endpoint https:\/\/as\.example\.com\/token kept refusing the DPoP proof with use_dpop_nonce \(2 retries/);
    assert.ok(!JSON.stringify(err.toJSON()).includes('rt-1'));
  });

  it('the same nonce again is a loop at once; use_dpop_nonce without a nonce is the server\'s error as is', async () => {
    const key = await generateDpopKey();
    const same = stubFetch(useNonce('n1'), useNonce('n1'));
    const loop = await rejection(refreshAccessToken({ tokenEndpoint: TOKEN_ENDPOINT, client: PUBLIC, refreshToken: 'rt', fetch: same.fetch, now: NOW, dpop: { privateJwk: key.privateJwk } }));
    assert.equal(same.requests.length, 2);
    assert.match(loop.message, /then the same nonce again/);
    const bare = stubFetch(useNonce());
    const err = await rejection(refreshAccessToken({ tokenEndpoint: TOKEN_ENDPOINT, client: PUBLIC, refreshToken: 'rt', fetch: bare.fetch, now: NOW, dpop: { privateJwk: key.privateJwk } }));
    assert.equal(bare.requests.length, 1);
    assert.equal(err.code, 'oauth_error');
    assert.equal(err.oauthError, 'use_dpop_nonce');
  });

  it('token_type DPoP without a proof sent is refused; Bearer after a proof is kept as Bearer', async () => {
    const err = await rejection(refreshAccessToken({ tokenEndpoint: TOKEN_ENDPOINT, client: PUBLIC, refreshToken: 'rt', fetch: stubFetch(dpopTokens()).fetch, now: NOW }));
    assert.equal(err.code, 'token_response_invalid');
    assert.match(err.message, /token_type "DPoP" is not supported \(expected Bearer: no DPoP proof was sent\)/);
    const key = await generateDpopKey();
    const bearer = json({ access_token: ACCESS, token_type: 'bearer' });
    const got = await refreshAccessToken({ tokenEndpoint: TOKEN_ENDPOINT, client: PUBLIC, refreshToken: 'rt', fetch: stubFetch(bearer).fetch, now: NOW, dpop: { privateJwk: key.privateJwk } });
    assert.equal(got.tokenType, 'Bearer');
  });

  it('a private_key_jwt client signs a new client assertion for the retry (no replayed jti)', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { importSigningKey, privateKeyJwtClient } = await import('../src/oauth/client-assertion.ts');
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const client = privateKeyJwtClient({ clientId: 'svc', key: importSigningKey(String(pair.privateKey.export({ format: 'pem', type: 'pkcs8' }))), issuer: 'https://as.example.com' });
    const key = await generateDpopKey();
    const { fetch, requests } = stubFetch(useNonce('n1'), dpopTokens());
    await requestClientCredentialsToken({ tokenEndpoint: TOKEN_ENDPOINT, client, scopes: [], fetch, now: NOW, dpop: { privateJwk: key.privateJwk } });
    const [a, b] = requests.map((r) => decodeJwt(r.body.get('client_assertion')!).jti);
    assert.notEqual(a, b);
  });

  it('resource requests: sendWithDpop answers the RS 401 nonce challenge with ath in every proof', async () => {
    const key = await generateDpopKey();
    const challenge = new Response(null, { status: 401, headers: { 'WWW-Authenticate': 'DPoP error="use_dpop_nonce"', 'DPoP-Nonce': 'rs-1' } });
    const proofs: string[] = [];
    const nonces: string[] = [];
    const res = await sendWithDpop({
      privateJwk: key.privateJwk, htm: 'POST', url: `${RESOURCE}?session=1`, accessToken: ACCESS, now: NOW, server: `the MCP server ${RESOURCE}`,
      onNonce: (n) => nonces.push(n),
      send: async (proof) => {
        proofs.push(proof);
        return proofs.length === 1 ? challenge : new Response('{}', { status: 200 });
      },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(nonces, ['rs-1']);
    const [first, second] = await Promise.all(proofs.map(verifyProof));
    assert.equal(first.payload.ath, createHash('sha256').update(ACCESS).digest('base64url'));
    assert.equal(second.payload.ath, first.payload.ath);
    assert.equal(second.payload.nonce, 'rs-1');
    assert.equal(second.payload.htu, RESOURCE);
    assert.equal(decodeProtectedHeader(proofs[1]).typ, 'dpop+jwt');
  });
});

describe('a damaged stored key', () => {
  it('is a dpop_error saying to sign in again, not a crash', async () => {
    const key = await generateDpopKey();
    const damaged = { ...key.privateJwk, d: 'AAAA' };
    const err = await rejection(createDpopProof({ privateJwk: damaged, htm: 'POST', htu: TOKEN_ENDPOINT, now: NOW }));
    assert.equal(err.code, 'dpop_error');
    assert.match(err.hint ?? '', /sign in again/);
    const wrongType = await rejection(createDpopProof({ privateJwk: { kty: 'oct', k: 'c2VjcmV0', d: 'x' }, htm: 'POST', htu: TOKEN_ENDPOINT, now: NOW }));
    assert.equal(wrongType.code, 'dpop_error');
  });
});
