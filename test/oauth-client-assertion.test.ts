// private_key_jwt (RFC 7523 §2.2, RFC 7521 §4.2): reading keys, choosing the algorithm, and the
// client assertion sent with token requests. Keys are generated here; assertions are verified with
// jose against the public half, as an authorization server would.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { isMcpOAuthError, type McpOAuthError } from '../src/errors.ts';
import {
  CLIENT_ASSERTION_TYPE,
  CLIENT_ASSERTION_TYP,
  chooseSigningAlg,
  createClientAssertion,
  importSigningKey,
  privateKeyJwtClient,
} from '../src/oauth/client-assertion.ts';
import { exchangeAuthorizationCode, refreshAccessToken, revokeToken, type ClientAuth } from '../src/oauth/tokens.ts';
import { json, stubFetch } from './fixtures/token-endpoint-stub.ts';

const NOW = 1_800_000_000_000;
const ISSUER = 'https://as.example.com';
const TOKEN_ENDPOINT = 'https://as.example.com/oauth/token';
const RESOURCE = 'https://mcp.example.com/mcp';

const tokens = () => json({ access_token: 'at-1', token_type: 'Bearer', expires_in: 3600 });

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<McpOAuthError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(isMcpOAuthError(e), `expected McpOAuthError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const ed = generateKeyPairSync('ed25519');
const pem = (k: KeyObject, type: 'pkcs8' | 'sec1' | 'pkcs1') => String(k.export({ format: 'pem', type } as never));

describe('importSigningKey', () => {
  it('reads PKCS#8, SEC1 (after an EC PARAMETERS block, as openssl ecparam writes it) and PKCS#1 PEM', () => {
    const cases: Array<[string, string, string[]]> = [
      [pem(rsa.privateKey, 'pkcs8'), 'RSA 2048-bit', ['RS256', 'PS256', 'RS384', 'PS384', 'RS512', 'PS512']],
      [pem(rsa.privateKey, 'pkcs1'), 'RSA 2048-bit', ['RS256', 'PS256', 'RS384', 'PS384', 'RS512', 'PS512']],
      [`-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${pem(p256.privateKey, 'sec1')}`, 'EC P-256', ['ES256']],
      [pem(p384.privateKey, 'pkcs8'), 'EC P-384', ['ES384']],
      [pem(ed.privateKey, 'pkcs8'), 'Ed25519', ['EdDSA', 'Ed25519']],
    ];
    for (const [text, description, algorithms] of cases) {
      const key = importSigningKey(`\n${text}\n`);
      assert.equal(key.description, description);
      assert.deepEqual(key.algorithms, algorithms);
      assert.equal(key.key.type, 'private');
    }
  });

  it('reads a private JWK (its kid and alg kept) and a JWK Set with one private key', () => {
    const jwk = { ...p256.privateKey.export({ format: 'jwk' }), kid: 'key-2026', alg: 'ES256' };
    const key = importSigningKey(JSON.stringify(jwk));
    assert.equal(key.kid, 'key-2026');
    assert.deepEqual(key.algorithms, ['ES256']);
    const rsaJwk = { ...rsa.privateKey.export({ format: 'jwk' }), alg: 'PS256' };
    assert.deepEqual(importSigningKey(JSON.stringify(rsaJwk)).algorithms, ['PS256'], 'a JWK alg narrows the choice (RFC 7517 §4.4)');
    const set = { keys: [p384.publicKey.export({ format: 'jwk' }), ed.privateKey.export({ format: 'jwk' })] };
    assert.equal(importSigningKey(JSON.stringify(set)).description, 'Ed25519');
  });

  it('refuses what cannot sign, naming the source and never echoing the key', async () => {
    const source = 'the file /etc/mcp/client.pem';
    const encrypted = String(rsa.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw' }));
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey;
    const cases: Array<[string, RegExp]> = [
      ['', /is empty/],
      ['not a key at all', /neither a PEM private key/],
      [String(rsa.publicKey.export({ format: 'pem', type: 'spki' })), /holds a public key \(PUBLIC KEY\)/],
      [encrypted, /encrypted private key/],
      [pem(weak, 'pkcs8'), /1024 bits; RS256\/PS256 need at least 2048/],
      [pem(k1, 'pkcs8'), /curve secp256k1/],
      ['-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----', /could not be read as a PRIVATE KEY/],
      [JSON.stringify(p256.publicKey.export({ format: 'jwk' })), /public EC JWK; the private key \(with "d"\) is needed/],
      [JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' }), /symmetric/],
      [JSON.stringify({ ...p256.privateKey.export({ format: 'jwk' }), alg: 'RS256' }), /says "alg": "RS256", which the EC P-256 key cannot sign with/],
      ['{ nope', /not valid JSON/],
      [JSON.stringify({ keys: [] }), /JWK Set with 0 private keys/],
    ];
    for (const [text, message] of cases) {
      const err = await rejection(() => importSigningKey(text, source));
      assert.equal(err.code, 'config_invalid');
      assert.match(err.message, message);
      assert.ok(err.message.startsWith('The file /etc/mcp/client.pem '), err.message);
      const body = text.split('\n').find((l) => l.length > 40);
      if (body) assert.ok(!JSON.stringify(err.toJSON()).includes(body.slice(0, 40)), 'key material in the error');
    }
  });
});

describe('chooseSigningAlg', () => {
  const ec = importSigningKey(pem(p256.privateKey, 'pkcs8'));
  const rsaKey = importSigningKey(pem(rsa.privateKey, 'pkcs8'));

  it('intersects what the key can do with token_endpoint_auth_signing_alg_values_supported', () => {
    assert.equal(chooseSigningAlg(ec, ['RS256', 'ES256']), 'ES256');
    assert.equal(chooseSigningAlg(rsaKey, ['ES256', 'PS256']), 'PS256');
    assert.equal(chooseSigningAlg(rsaKey, ['PS512', 'RS384']), 'RS384', "the key's preference order decides among the server's");
    assert.equal(chooseSigningAlg(rsaKey, undefined), 'RS256', 'no list: the key\'s preferred algorithm');
    assert.equal(chooseSigningAlg(rsaKey, ['none', 'HS256']), 'RS256', 'none and MAC algorithms are not candidates');
    assert.equal(chooseSigningAlg(rsaKey, ['RS256', 'PS256'], { preferred: 'PS256' }), 'PS256');
  });

  it('no common algorithm: a clear error naming both lists', async () => {
    const err = await rejection(() => chooseSigningAlg(ec, ['RS256', 'PS256'], { issuer: ISSUER }));
    assert.equal(err.code, 'config_invalid');
    assert.match(err.message, /The signing key \(EC P-256\) can sign with ES256, but the authorization server https:\/\/as\.example\.com accepts only RS256, PS256/);
    assert.deepEqual(err.details?.keyAlgorithms, ['ES256']);
    assert.deepEqual(err.details?.serverAlgorithms, ['RS256', 'PS256']);
    const wrong = await rejection(() => chooseSigningAlg(ec, ['ES256'], { preferred: 'RS256' }));
    assert.match(wrong.message, /RS256 cannot be used with the EC P-256 key/);
  });
});

describe('client assertion', () => {
  const jwk = { ...p256.privateKey.export({ format: 'jwk' }), kid: 'k1' };
  const client = privateKeyJwtClient({ clientId: 'svc-client', key: importSigningKey(JSON.stringify(jwk)), issuer: ISSUER, signingAlgValuesSupported: ['RS256', 'ES256'] });

  it('is sent as client_assertion (RFC 7521 §4.2): iss = sub = client_id, aud = the issuer, fresh jti, 60 s, signed with the key', async () => {
    const { fetch, requests } = stubFetch(tokens(), tokens());
    const exchange = () => exchangeAuthorizationCode({ tokenEndpoint: TOKEN_ENDPOINT, client, code: 'c', codeVerifier: 'v', redirectUri: 'http://127.0.0.1:1/cb', resource: RESOURCE, fetch, now: NOW });
    await exchange();
    await exchange();
    const jtis = new Set<unknown>();
    for (const { body, headers } of requests) {
      assert.equal(body.get('client_assertion_type'), CLIENT_ASSERTION_TYPE);
      assert.equal(body.get('client_id'), 'svc-client');
      assert.equal(body.get('client_secret'), null);
      assert.equal(headers.get('authorization'), null);
      const assertion = body.get('client_assertion')!;
      const { payload, protectedHeader } = await jwtVerify(assertion, p256.publicKey, {
        issuer: 'svc-client', subject: 'svc-client', audience: ISSUER, currentDate: new Date(NOW), algorithms: ['ES256'],
      });
      assert.equal(protectedHeader.typ, CLIENT_ASSERTION_TYP);
      assert.equal(protectedHeader.kid, 'k1');
      assert.equal(payload.aud, ISSUER, 'one string, the issuer (RFC 10070), not the token endpoint');
      assert.equal(payload.iat, NOW / 1000);
      assert.equal(payload.exp, NOW / 1000 + 60);
      assert.match(String(payload.jti), /^[\w-]{40,}$/);
      jtis.add(payload.jti);
    }
    assert.equal(jtis.size, 2, 'every request gets a new jti');
  });

  it('signs with the algorithm chosen for an RSA key (PS256 when that is all the server takes)', async () => {
    const rsaClient = privateKeyJwtClient({ clientId: 'c2', key: importSigningKey(pem(rsa.privateKey, 'pkcs1')), issuer: ISSUER, signingAlgValuesSupported: ['PS256'] });
    const assertion = await createClientAssertion({ clientId: 'c2', ...rsaClient.assertion!, now: NOW });
    assert.equal(decodeProtectedHeader(assertion).alg, 'PS256');
    await jwtVerify(assertion, rsa.publicKey, { audience: ISSUER, currentDate: new Date(NOW) });
  });

  it('refresh and revocation authenticate the same way', async () => {
    const { fetch, requests } = stubFetch(tokens(), new Response(null, { status: 200 }));
    await refreshAccessToken({ tokenEndpoint: TOKEN_ENDPOINT, client, refreshToken: 'rt', resource: RESOURCE, fetch, now: NOW });
    await revokeToken({ revocationEndpoint: `${ISSUER}/revoke`, client, token: 'rt', tokenTypeHint: 'refresh_token', fetch, now: NOW });
    for (const r of requests) {
      await jwtVerify(r.body.get('client_assertion')!, p256.publicKey, { audience: ISSUER, currentDate: new Date(NOW) });
    }
  });

  it('private_key_jwt without a key is a config error before anything is sent', async () => {
    const { fetch, requests } = stubFetch();
    const keyless: ClientAuth = { clientId: 'c', method: 'private_key_jwt' };
    const err = await rejection(refreshAccessToken({ tokenEndpoint: TOKEN_ENDPOINT, client: keyless, refreshToken: 'rt', fetch, now: NOW }));
    assert.equal(err.code, 'config_invalid');
    assert.match(err.message, /private_key_jwt but no signing key/);
    assert.equal(requests.length, 0);
  });

  it('an assertion the server refuses (invalid_client) says to check the key, not to register again', async () => {
    const { fetch } = stubFetch(json({ error: 'invalid_client', error_description: 'invalid signature' }, 401));
    const err = await rejection(refreshAccessToken({ tokenEndpoint: TOKEN_ENDPOINT, client, refreshToken: 'rt', fetch, now: NOW }));
    assert.equal(err.oauthError, 'invalid_client');
    assert.match(err.hint ?? '', /private key matches the public key registered/);
  });
});
