// DPoP (RFC 9449) in the sandbox, driven with plain HTTP and proofs made here with jose: proofs and
// nonces at the authorization server (oidc-provider, src/sandbox/dpop-as.ts) and at the MCP server
// (src/sandbox/dpop-check.ts), bound tokens refused as Bearer or with another key, rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startSandbox, JWT_BEARER_GRANT } from '../src/sandbox/index.ts';
import { authorizationCode, basic, initialize, mcpPost, post, proof, proofKey, whoami } from './fixtures/sandbox-grant-helpers.ts';

test('DPoP: a proof-bound token works with its proof, fails as Bearer and with another key; nonces challenged and rotated at both servers', async (t) => {
  const sb = await startSandbox({ grant: 'client_credentials', dpop: 'optional', dpopNonce: true });
  t.after(() => sb.close());
  const meta = await (await fetch(`${sb.issuer}/.well-known/oauth-authorization-server`)).json();
  assert.ok(meta.dpop_signing_alg_values_supported.includes('ES256'));
  const prm = await (await fetch(new URL('/.well-known/oauth-protected-resource/mcp', sb.mcpUrl))).json();
  assert.deepEqual(prm.dpop_signing_alg_values_supported, meta.dpop_signing_alg_values_supported);
  assert.equal(prm.dpop_bound_access_tokens_required, false);
  const c = sb.grantClients.clientSecretBasic!;
  const key = await proofKey();
  const tokenRequest = async (nonce?: string) => post(meta.token_endpoint, { grant_type: 'client_credentials', scope: 'mcp:tools', resource: sb.mcpUrl }, {
    authorization: basic(c.clientId, c.clientSecret), dpop: await proof(key, 'POST', meta.token_endpoint, { nonce }),
  });

  // AS (RFC 9449 §8): no nonce → use_dpop_nonce + DPoP-Nonce; with it → a DPoP-bound token.
  const first = await tokenRequest();
  assert.equal(first.status, 400);
  assert.equal(first.body.error, 'use_dpop_nonce');
  const asNonce = first.headers.get('dpop-nonce');
  assert.ok(asNonce);
  const bound = await tokenRequest(asNonce);
  assert.equal(bound.status, 200, JSON.stringify(bound.body));
  assert.equal(bound.body.token_type, 'DPoP');
  const token: string = bound.body.access_token;
  assert.equal((decodeJwt(token).cnf as { jkt: string }).jkt, key.jkt);

  // MCP server (§9): no nonce → 401 use_dpop_nonce + DPoP-Nonce; with it → served.
  const noNonce = await mcpPost(sb, { token, scheme: 'DPoP', key }, initialize);
  assert.equal(noNonce.status, 401);
  assert.match(noNonce.headers.get('www-authenticate') ?? '', /^DPoP .*error="use_dpop_nonce"/);
  const rsNonce = noNonce.headers.get('dpop-nonce');
  assert.ok(rsNonce);
  const me = await whoami(sb, { token, scheme: 'DPoP', key, nonce: rsNonce });
  assert.equal(me.client_id, c.clientId);

  // A stolen token without its key: as Bearer, and with another key's proof.
  const asBearer = await mcpPost(sb, { token }, initialize);
  assert.equal(asBearer.status, 401);
  assert.match(asBearer.headers.get('www-authenticate') ?? '', /error="invalid_token".*DPoP-bound/);
  const thief = await proofKey();
  const otherKey = await mcpPost(sb, { token, scheme: 'DPoP', key: thief, nonce: rsNonce }, initialize);
  assert.equal(otherKey.status, 401);
  assert.match(otherKey.headers.get('www-authenticate') ?? '', /another key/);
  const noProof = await mcpPost(sb, { token, scheme: 'DPoP' }, initialize);
  assert.equal(noProof.status, 401);
  // A proof used twice, and one for another token (ath).
  const once = await proof(key, 'POST', sb.mcpUrl, { token, nonce: rsNonce });
  assert.equal((await mcpPost(sb, { token, scheme: 'DPoP', proofOverride: once }, initialize)).status, 200);
  assert.equal((await mcpPost(sb, { token, scheme: 'DPoP', proofOverride: once }, initialize)).status, 401);
  const wrongAth = await proof(key, 'POST', sb.mcpUrl, { token: 'another-token', nonce: rsNonce });
  assert.equal((await mcpPost(sb, { token, scheme: 'DPoP', proofOverride: wrongAth }, initialize)).status, 401);
  const wrongHtu = await proof(key, 'POST', `${sb.mcpUrl}/elsewhere`, { token, nonce: rsNonce });
  assert.equal((await mcpPost(sb, { token, scheme: 'DPoP', proofOverride: wrongHtu }, initialize)).status, 401);

  // Rotation: the old nonces are refused at both servers, the new ones work.
  sb.rotateDpopNonces();
  const stale = await mcpPost(sb, { token, scheme: 'DPoP', key, nonce: rsNonce }, initialize);
  assert.equal(stale.status, 401);
  const rsNonce2 = stale.headers.get('dpop-nonce');
  assert.ok(rsNonce2 && rsNonce2 !== rsNonce);
  assert.equal((await mcpPost(sb, { token, scheme: 'DPoP', key, nonce: rsNonce2 }, initialize)).status, 200);
  const staleAs = await tokenRequest(asNonce);
  assert.equal(staleAs.body.error, 'use_dpop_nonce');
  const asNonce2 = staleAs.headers.get('dpop-nonce');
  assert.ok(asNonce2 && asNonce2 !== asNonce);
  assert.equal((await tokenRequest(asNonce2)).status, 200);
  // A soft rotation at the MCP server: the old nonce still works, the new one comes with the answer.
  sb.rotateDpopNonces({ keepPrevious: true });
  const soft = await mcpPost(sb, { token, scheme: 'DPoP', key, nonce: rsNonce2 }, initialize);
  assert.equal(soft.status, 200);
  const rsNonce3 = soft.headers.get('dpop-nonce');
  assert.ok(rsNonce3 && rsNonce3 !== rsNonce2);

  const { as, rs } = sb.counters.dpop;
  assert.deepEqual({ proofs: as.proofs, nonceChallenges: as.nonceChallenges, boundTokens: as.boundTokens }, { proofs: 4, nonceChallenges: 2, boundTokens: 2 });
  assert.equal(rs.nonceChallenges, 2);
  assert.deepEqual(rs.refusals, { bound_token_as_bearer: 1, jkt_mismatch: 1, missing_proof: 1, replay: 1, ath: 1, htu: 1 });
  assert.equal(rs.accepted, 6);
});

test('DPoP at the AS without options: auth code tokens bound to the key, the refresh token of a public client too', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.close());
  const reg = await fetch(`${sb.issuer}/reg`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ application_type: 'native', redirect_uris: ['http://127.0.0.1/callback'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }),
  });
  const clientId = ((await reg.json()) as { client_id: string }).client_id;
  const key = await proofKey();
  const { code, verifier, redirectUri } = await authorizationCode(sb.issuer, clientId, { scope: 'mcp:tools offline_access', resource: sb.mcpUrl });
  const tokenUrl = `${sb.issuer}/token`;
  const tokens = await post(tokenUrl, { grant_type: 'authorization_code', client_id: clientId, code, code_verifier: verifier, redirect_uri: redirectUri, resource: sb.mcpUrl },
    { dpop: await proof(key, 'POST', tokenUrl) });
  assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
  assert.equal(tokens.body.token_type, 'DPoP');
  assert.equal((await whoami(sb, { token: tokens.body.access_token, scheme: 'DPoP', key })).sub, 'demo');
  assert.equal((await mcpPost(sb, { token: tokens.body.access_token }, initialize)).status, 401, 'bound token as Bearer');
  const refresh = (dpop?: string) => post(tokenUrl, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.body.refresh_token, resource: sb.mcpUrl }, dpop ? { dpop } : {});
  const withoutKey = await refresh();
  assert.equal(withoutKey.body.error, 'invalid_grant');
  const withOtherKey = await refresh(await proof(await proofKey(), 'POST', tokenUrl));
  assert.equal(withOtherKey.body.error, 'invalid_grant');
  const withKey = await refresh(await proof(key, 'POST', tokenUrl));
  assert.equal(withKey.status, 200, JSON.stringify(withKey.body));
  assert.equal(sb.counters.dpop.as.refusals.jkt_mismatch, 2);
});

test('DPoP required: bearer tokens refused at the MCP server, token requests without a proof refused at the AS', async (t) => {
  const sb = await startSandbox({ grant: ['client_credentials', 'jwt_bearer'], dpop: 'required', dpopSigningAlgs: ['ES256', 'EdDSA'] });
  t.after(() => sb.close());
  const c = sb.grantClients.clientSecretPost!;
  const tokenUrl = `${sb.issuer}/token`;
  const request = { grant_type: 'client_credentials', scope: 'mcp:tools', resource: sb.mcpUrl, client_id: c.clientId, client_secret: c.clientSecret };
  const withoutProof = await post(tokenUrl, request);
  assert.equal(withoutProof.body.error, 'invalid_grant');
  const jwtBearerWithoutProof = await post(tokenUrl, { grant_type: JWT_BEARER_GRANT, client_id: sb.grantClients.jwtBearer!.clientId, assertion: await sb.workload!.mint(), resource: sb.mcpUrl });
  assert.equal(jwtBearerWithoutProof.body.error, 'invalid_grant');
  assert.match(jwtBearerWithoutProof.body.error_description, /DPoP proof/);
  const key = await proofKey();
  const bound = await post(tokenUrl, request, { dpop: await proof(key, 'POST', tokenUrl) });
  assert.equal(bound.body.token_type, 'DPoP');
  const viaJwtBearer = await post(tokenUrl, { grant_type: JWT_BEARER_GRANT, client_id: sb.grantClients.jwtBearer!.clientId, assertion: await sb.workload!.mint(), resource: sb.mcpUrl, scope: 'mcp:tools' },
    { dpop: await proof(key, 'POST', tokenUrl) });
  assert.equal(viaJwtBearer.body.token_type, 'DPoP', JSON.stringify(viaJwtBearer.body));
  assert.equal((decodeJwt(viaJwtBearer.body.access_token).cnf as { jkt: string }).jkt, key.jkt);
  assert.equal((await whoami(sb, { token: viaJwtBearer.body.access_token, scheme: 'DPoP', key })).sub, 'system:serviceaccount:sandbox:mcp-agent');
  const prm = await (await fetch(new URL('/.well-known/oauth-protected-resource/mcp', sb.mcpUrl))).json();
  assert.equal(prm.dpop_bound_access_tokens_required, true);
  const anonymous = await fetch(sb.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(initialize) });
  assert.match(anonymous.headers.get('www-authenticate') ?? '', /^DPoP scope="mcp:tools", resource_metadata="[^"]+", algs="ES256 EdDSA"$/);
  const meta = await (await fetch(`${sb.issuer}/.well-known/oauth-authorization-server`)).json();
  assert.deepEqual(meta.dpop_signing_alg_values_supported, ['ES256', 'EdDSA']);
  assert.deepEqual(sb.counters.dpop.as.refusals, { missing_proof: 2 });
});
