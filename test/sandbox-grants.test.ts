// The sandbox's modes for sign-in without a person (src/sandbox/grant-modes.ts), driven with plain
// HTTP and jose, no mcp-oauth client code: client credentials with each client authentication
// method, the JWT bearer grant with workload assertions, the enterprise chain (IdP sign-in → token
// exchange → ID-JAG → JWT bearer), and `mcp-oauth sandbox --grant`. DPoP: sandbox-dpop.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair, importJWK, importPKCS8 } from 'jose';
import { startSandbox, JWT_BEARER_GRANT, TOKEN_EXCHANGE_GRANT, ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE } from '../src/sandbox/index.ts';
import { authorizationCode, basic, initialize, post, whoami } from './fixtures/sandbox-grant-helpers.ts';

test('default sandbox: no grant mode, DPoP offered by the AS only; the MCP server answers as before', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.close());
  const meta = await (await fetch(`${sb.issuer}/.well-known/oauth-authorization-server`)).json();
  assert.ok(!meta.grant_types_supported.includes('client_credentials'));
  assert.ok(!meta.grant_types_supported.includes(JWT_BEARER_GRANT));
  assert.deepEqual(sb.grants, []);
  assert.deepEqual(sb.grantClients, {});
  const prm = await (await fetch(new URL('/.well-known/oauth-protected-resource/mcp', sb.mcpUrl))).json();
  assert.equal(prm.dpop_signing_alg_values_supported, undefined);
  const res = await fetch(sb.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(initialize) });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer scope="mcp:tools", resource_metadata="[^"]+"$/);
});

test('client_credentials: basic, post and private_key_jwt clients get tokens for the MCP server, which accepts them', async (t) => {
  const sb = await startSandbox({ grant: 'client_credentials' });
  t.after(() => sb.close());
  const meta = await (await fetch(`${sb.issuer}/.well-known/oauth-authorization-server`)).json();
  assert.ok(meta.grant_types_supported.includes('client_credentials'));
  const { clientSecretBasic, clientSecretPost, privateKeyJwt } = sb.grantClients;
  assert.ok(clientSecretBasic && clientSecretPost && privateKeyJwt);
  assert.ok(meta.token_endpoint_auth_signing_alg_values_supported.includes(privateKeyJwt.alg));
  const request = { grant_type: 'client_credentials', scope: 'mcp:tools', resource: sb.mcpUrl };

  const viaBasic = await post(meta.token_endpoint, request, { authorization: basic(clientSecretBasic.clientId, clientSecretBasic.clientSecret) });
  const viaPost = await post(meta.token_endpoint, { ...request, client_id: clientSecretPost.clientId, client_secret: clientSecretPost.clientSecret });
  // RFC 7523 §2.2 / §3: iss = sub = client_id, aud = the issuer, a fresh jti, a short exp.
  const assertion = () => new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: privateKeyJwt.alg, kid: privateKeyJwt.kid })
    .setIssuer(privateKeyJwt.clientId).setSubject(privateKeyJwt.clientId).setAudience(sb.issuer).setIssuedAt().setExpirationTime('60s');
  const key = await importPKCS8(privateKeyJwt.privateKeyPem, privateKeyJwt.alg);
  const clientAssertion = { client_id: privateKeyJwt.clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' };
  const viaKey = await post(meta.token_endpoint, { ...request, ...clientAssertion, client_assertion: await assertion().sign(key) });
  for (const [name, r, clientId] of [['basic', viaBasic, clientSecretBasic.clientId], ['post', viaPost, clientSecretPost.clientId], ['private_key_jwt', viaKey, privateKeyJwt.clientId]] as const) {
    assert.equal(r.status, 200, `${name}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.token_type, 'Bearer');
    assert.equal(r.body.refresh_token, undefined, 'RFC 6749 §4.4.3: no refresh token');
    const claims = decodeJwt(r.body.access_token);
    assert.equal(claims.aud, sb.mcpUrl);
    assert.equal(claims.client_id, clientId);
    const me = await whoami(sb, { token: r.body.access_token });
    assert.equal(me.client_id, clientId);
    assert.equal(me.scope, 'mcp:tools');
  }
  // The JWK form of the key is the same key.
  const viaJwk = await post(meta.token_endpoint, { ...request, ...clientAssertion, client_assertion: await assertion().sign(await importJWK(privateKeyJwt.privateJwk)) });
  assert.equal(viaJwk.status, 200);

  const wrongSecret = await post(meta.token_endpoint, request, { authorization: basic(clientSecretBasic.clientId, 'not-the-secret') });
  assert.equal(wrongSecret.status, 401);
  assert.equal(wrongSecret.body.error, 'invalid_client');
  const otherKey = (await generateKeyPair('ES256')).privateKey;
  const wrongKey = await post(meta.token_endpoint, { ...request, ...clientAssertion, client_assertion: await assertion().sign(otherKey) });
  assert.equal(wrongKey.body.error, 'invalid_client');
  assert.deepEqual(sb.counters.grants.client_credentials, { issued: 4, refused: { invalid_client: 2 } });
});

test('client_credentials: the private_key_jwt key follows token_endpoint_auth_signing_alg_values_supported', async (t) => {
  const sb = await startSandbox({ grant: 'client_credentials', tokenEndpointAuthSigningAlgs: ['PS256'] });
  t.after(() => sb.close());
  const meta = await (await fetch(`${sb.issuer}/.well-known/oauth-authorization-server`)).json();
  assert.deepEqual(meta.token_endpoint_auth_signing_alg_values_supported, ['PS256']);
  assert.equal(sb.grantClients.privateKeyJwt?.alg, 'PS256');
  assert.equal(sb.grantClients.privateKeyJwt?.privateJwk.kty, 'RSA');
  const client = sb.grantClients.privateKeyJwt!;
  assert.match(client.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
  const signed = (alg: string, key: CryptoKey | Uint8Array) => new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg, kid: client.kid })
    .setIssuer(client.clientId).setSubject(client.clientId).setAudience(sb.issuer).setIssuedAt().setExpirationTime('60s').sign(key);
  const request = (assertion: string) => post(meta.token_endpoint, {
    grant_type: 'client_credentials', scope: 'mcp:tools', resource: sb.mcpUrl, client_id: client.clientId,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
  });
  assert.equal((await request(await signed('PS256', await importPKCS8(client.privateKeyPem, 'PS256')))).status, 200);
  // RS256 with the same RSA key is an algorithm the server does not take.
  const unsupported = await request(await signed('RS256', await importPKCS8(client.privateKeyPem, 'RS256')));
  assert.equal(unsupported.body.error, 'invalid_client');
});

test('jwt_bearer: a minted workload assertion gets a token; expired, wrong audience, replayed, foreign ones are refused clearly', async (t) => {
  const sb = await startSandbox({ grant: 'jwt_bearer' });
  t.after(() => sb.close());
  const meta = await (await fetch(`${sb.issuer}/.well-known/oauth-authorization-server`)).json();
  assert.ok(meta.grant_types_supported.includes(JWT_BEARER_GRANT));
  const workload = sb.workload!;
  const clientId = sb.grantClients.jwtBearer!.clientId;
  const exchange = (assertion: string, extra: Record<string, string> = {}) =>
    post(meta.token_endpoint, { grant_type: JWT_BEARER_GRANT, client_id: clientId, assertion, scope: 'mcp:tools', resource: sb.mcpUrl, ...extra });

  const fresh = await workload.mint({ sub: 'system:serviceaccount:ci:deployer' });
  const ok = await exchange(fresh);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.token_type, 'Bearer');
  assert.equal(ok.body.refresh_token, undefined);
  assert.equal((await whoami(sb, { token: ok.body.access_token })).sub, 'system:serviceaccount:ci:deployer');
  // The token endpoint URL is an accepted audience too (RFC 7523 §3 item 3).
  assert.equal((await exchange(await workload.mint({ audience: meta.token_endpoint }))).status, 200);

  const refusals: Array<[string, Promise<string>, RegExp, string?]> = [
    ['expired', workload.mint({ ttlSeconds: -120 }), /expired at \d{4}-/],
    ['wrong_audience', workload.mint({ audience: 'https://elsewhere.example' }), /elsewhere\.example.*accepts only/],
    ['replayed', Promise.resolve(fresh), /already used/],
    ['bad_signature', workload.mint({ untrustedKey: true }), /not signed by a key of/],
    ['untrusted_issuer', workload.mint({ issuer: 'https://token.actions.example' }), /not trusted/],
    ['missing_jti', workload.mint({ omitJti: true }), /no jti/],
  ];
  for (const [reason, assertion, description] of refusals) {
    const r = await exchange(await assertion);
    assert.equal(r.status, 400, reason);
    assert.equal(r.body.error, 'invalid_grant', reason);
    assert.match(r.body.error_description, description, reason);
  }
  const noResource = await post(meta.token_endpoint, { grant_type: JWT_BEARER_GRANT, client_id: clientId, assertion: await workload.mint() });
  assert.equal(noResource.body.error, 'invalid_target');
  const grant = sb.counters.grants[JWT_BEARER_GRANT];
  assert.equal(grant.issued, 2);
  assert.deepEqual(grant.refused, { expired: 1, wrong_audience: 1, replayed: 1, bad_signature: 1, untrusted_issuer: 1, missing_jti: 1, missing_resource: 1 });

  // Reusable assertions (a token file read again until it rotates) when the AS allows it.
  workload.allowReplay = true;
  const reusable = await workload.mint();
  assert.equal((await exchange(reusable)).status, 200);
  assert.equal((await exchange(reusable)).status, 200);
});

test('enterprise: IdP sign-in, ID token → ID-JAG (token exchange) → MCP token (jwt-bearer) → MCP call; refusals; one IdP for two MCP servers', async (t) => {
  const sb = await startSandbox({ grant: ['enterprise', 'jwt_bearer'] });
  t.after(() => sb.close());
  const idp = sb.idp!;
  const client = sb.grantClients.enterprise!;
  const idpMeta = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
  assert.ok(idpMeta.grant_types_supported.includes(TOKEN_EXCHANGE_GRANT));
  assert.deepEqual(idpMeta.identity_chaining_requested_token_types_supported, [ID_JAG_TOKEN_TYPE]);
  assert.equal(idpMeta.registration_endpoint, undefined, 'no dynamic registration at the enterprise IdP');

  // 1. Sign in to the IdP (authorization code + PKCE, autoApprove).
  const idpAuth = { authorization: basic(idp.client.clientId, idp.client.clientSecret) };
  const { code, verifier, redirectUri } = await authorizationCode(idp.issuer, idp.client.clientId);
  const signIn = await post(idpMeta.token_endpoint, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri }, idpAuth);
  assert.equal(signIn.status, 200, JSON.stringify(signIn.body));
  assert.ok(signIn.body.id_token && signIn.body.refresh_token);

  // 2. Token exchange at the IdP (RFC 8693) for an ID-JAG for the MCP authorization server.
  const exchange = (idToken: string, audience = sb.issuer, extra: Record<string, string> = {}) => post(idpMeta.token_endpoint, {
    grant_type: TOKEN_EXCHANGE_GRANT, requested_token_type: ID_JAG_TOKEN_TYPE, subject_token: idToken, subject_token_type: ID_TOKEN_TYPE,
    audience, resource: sb.mcpUrl, scope: 'mcp:tools', ...extra,
  }, idpAuth);
  const exchanged = await exchange(signIn.body.id_token);
  assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
  assert.equal(exchanged.body.issued_token_type, ID_JAG_TOKEN_TYPE);
  assert.equal(exchanged.body.token_type, 'N_A');
  assert.equal(exchanged.body.scope, 'mcp:tools');
  const idJag: string = exchanged.body.access_token;
  assert.equal(decodeProtectedHeader(idJag).typ, 'oauth-id-jag+jwt');
  const jag = decodeJwt(idJag);
  assert.equal(jag.iss, idp.issuer);
  assert.equal(jag.aud, sb.issuer);
  assert.equal(jag.client_id, client.clientId);
  assert.equal(jag.resource, sb.mcpUrl);
  assert.equal(jag.sub, decodeJwt(signIn.body.id_token).sub);
  assert.ok(jag.jti && jag.exp && jag.iat);

  // 3. The ID-JAG with the JWT bearer grant at the MCP authorization server, then the MCP call.
  const asAuth = { authorization: basic(client.clientId, client.clientSecret) };
  const bearer = (assertion: string, auth: Record<string, string> = asAuth, extra: Record<string, string> = {}) =>
    post(`${sb.issuer}/token`, { grant_type: JWT_BEARER_GRANT, assertion, ...extra }, auth);
  const token = await bearer(idJag);
  assert.equal(token.status, 200, JSON.stringify(token.body));
  assert.equal(token.body.scope, 'mcp:tools');
  const me = await whoami(sb, { token: token.body.access_token });
  assert.equal(me.sub, jag.sub);
  assert.equal(me.client_id, client.clientId);

  // Refusals at the MCP authorization server: replayed ID-JAG, presented by another client.
  const replayed = await bearer(idJag);
  assert.equal(replayed.body.error, 'invalid_grant');
  assert.match(replayed.body.error_description, /already used/);
  const other = await bearer((await exchange(signIn.body.id_token)).body.access_token, {}, { client_id: sb.grantClients.jwtBearer!.clientId, resource: sb.mcpUrl });
  assert.equal(other.body.error, 'invalid_grant');
  assert.match(other.body.error_description, /issued for client .*sandbox-enterprise-mcp-client.*authenticated as sandbox-workload/);

  // Refusals at the IdP: policy, unknown audience, an ID token for another client.
  idp.denyExchange = true;
  const denied = await exchange(signIn.body.id_token);
  assert.equal(denied.body.error, 'invalid_grant');
  assert.match(denied.body.error_description, /policy does not allow/);
  idp.denyExchange = false;
  assert.equal((await exchange(signIn.body.id_token, 'https://unknown-as.example')).body.error, 'invalid_target');
  const publicSignIn = await authorizationCode(idp.issuer, idp.publicClient.clientId);
  const publicTokens = await post(idpMeta.token_endpoint, {
    grant_type: 'authorization_code', client_id: idp.publicClient.clientId, code: publicSignIn.code, code_verifier: publicSignIn.verifier, redirect_uri: publicSignIn.redirectUri,
  });
  assert.equal(publicTokens.status, 200, JSON.stringify(publicTokens.body));
  const foreignIdToken = await exchange(publicTokens.body.id_token);
  assert.equal(foreignIdToken.body.error, 'invalid_grant');
  assert.match(foreignIdToken.body.error_description, /ID token/);

  // The IdP refresh token gives a new ID token without a browser; it exchanges as before.
  const refreshed = await post(idpMeta.token_endpoint, { grant_type: 'refresh_token', refresh_token: signIn.body.refresh_token }, idpAuth);
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  assert.ok(refreshed.body.id_token);
  assert.equal((await bearer((await exchange(refreshed.body.id_token)).body.access_token)).status, 200);

  // One IdP, two MCP servers: a second sandbox trusts the same IdP; the same ID token serves it.
  const sb2 = await startSandbox({ grant: 'enterprise', enterpriseIdp: idp });
  t.after(() => sb2.close());
  const client2 = sb2.grantClients.enterprise!;
  const jag2 = await post(idpMeta.token_endpoint, {
    grant_type: TOKEN_EXCHANGE_GRANT, requested_token_type: ID_JAG_TOKEN_TYPE, subject_token: refreshed.body.id_token, subject_token_type: ID_TOKEN_TYPE, audience: sb2.issuer,
  }, idpAuth);
  assert.equal(jag2.status, 200, JSON.stringify(jag2.body));
  const token2 = await post(`${sb2.issuer}/token`, { grant_type: JWT_BEARER_GRANT, assertion: jag2.body.access_token }, { authorization: basic(client2.clientId, client2.clientSecret) });
  assert.equal(token2.status, 200, JSON.stringify(token2.body));
  assert.equal((await whoami(sb2, { token: token2.body.access_token })).sub, jag.sub);
  // An ID-JAG for one authorization server is refused by the other (aud).
  const crossed = await bearer(jag2.body.access_token);
  assert.equal(crossed.body.error, 'invalid_grant');
  assert.match(crossed.body.error_description, /accepts only/);

  // Counters per server and grant type.
  assert.equal(idp.counters.tokenRequests[TOKEN_EXCHANGE_GRANT], 7);
  assert.deepEqual(idp.counters.grants[TOKEN_EXCHANGE_GRANT], { issued: 4, refused: { denied: 1, unknown_audience: 1, wrong_audience: 1 } });
  assert.equal(idp.issuedIdJags.length, 4);
  assert.deepEqual(sb.counters.grants[JWT_BEARER_GRANT], { issued: 2, refused: { replayed: 1, client_mismatch: 1, wrong_audience: 1 } });
  assert.equal(sb2.counters.grants[JWT_BEARER_GRANT].issued, 1);
  // What each server received, as fingerprints: the IdP the ID tokens, the MCP AS the ID-JAGs.
  const { fingerprint } = await import('../src/secrets.ts');
  assert.ok(idp.counters.issuers[idp.issuer].tokenRequests.some((r) => r.grantType === TOKEN_EXCHANGE_GRANT && r.presented === fingerprint(signIn.body.id_token)));
  assert.ok(sb.counters.issuers[sb.issuer].tokenRequests.some((r) => r.grantType === JWT_BEARER_GRANT && r.presented === fingerprint(idJag) && r.status === 200));
});
test('mcp-oauth sandbox --grant …: prints what to configure without a secret; key and assertion in 0600 files; stdin switches', async () => {
  const { spawn } = await import('node:child_process');
  const { readFile, stat } = await import('node:fs/promises');
  const { makeHome, cliPath } = await import('./helpers/e2e.ts');
  const secret = 'grants-cli-secret-for-tests';
  const h = await makeHome({ GSECRET: secret, ...(process.env.MCP_OAUTH_SOURCE ? { MCP_OAUTH_SOURCE: process.env.MCP_OAUTH_SOURCE } : {}) });
  const child = spawn(process.execPath, [cliPath, 'sandbox', '--grant', 'client_credentials,jwt_bearer', '--grant', 'enterprise', '--dpop', 'optional', '--dpop-nonce', '--client-secret-env', 'GSECRET'],
    { env: h.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sandbox did not start: ${out} ${err}`)), 30_000);
      child.stdout.on('data', () => /^Next, in another terminal/m.test(out) && (clearTimeout(timer), resolve()));
      child.on('close', () => reject(new Error(`sandbox exited: ${out} ${err}`)));
    });
    assert.ok(!out.includes(secret) && !err.includes(secret), 'no secret printed');
    assert.doesNotMatch(out, /PRIVATE KEY|eyJ/, 'no key or token printed');
    const issuer = out.match(/authorization server\s+(\S+)/)![1];
    const mcpUrl = out.match(/MCP server\s+(\S+)/)![1];
    assert.match(out, /client_secret_basic\s+client_id sandbox-client-secret-basic\s+secret \$GSECRET/);
    assert.match(out, /client at the MCP authorization server\s+client_id sandbox-enterprise-mcp-client\s+secret \$GSECRET/);
    assert.match(out, /DPoP \(RFC 9449\)\s+optional, nonces required/);
    const pemFile = out.match(/key (\S+\.pem) \(0600/)![1];
    const assertionFile = out.match(/assertion file (\S+) \(0600/)![1];
    for (const file of [pemFile, assertionFile]) assert.equal((await stat(file)).mode & 0o777, 0o600, file);

    // The printed client and key file get a token (DPoP nonce dance included).
    const key = await importPKCS8(await readFile(pemFile, 'utf8'), 'ES256');
    const clientAssertion = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'ES256' })
      .setIssuer('sandbox-private-key-jwt').setSubject('sandbox-private-key-jwt').setAudience(issuer).setIssuedAt().setExpirationTime('60s').sign(key);
    const cc = await post(`${issuer}/token`, {
      grant_type: 'client_credentials', resource: mcpUrl, scope: 'mcp:tools', client_id: 'sandbox-private-key-jwt',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion,
    });
    assert.equal(cc.status, 200, JSON.stringify(cc.body));
    // The assertion file: used once, then rewritten with a fresh assertion.
    const first = await readFile(assertionFile, 'utf8');
    const wb = await post(`${issuer}/token`, { grant_type: JWT_BEARER_GRANT, client_id: 'sandbox-workload', assertion: first, resource: mcpUrl, scope: 'mcp:tools' });
    assert.equal(wb.status, 200, JSON.stringify(wb.body));
    let second = first;
    for (let i = 0; i < 50 && second === first; i++) {
      await new Promise((r) => setTimeout(r, 20));
      second = await readFile(assertionFile, 'utf8');
    }
    assert.notEqual(second, first);
    assert.equal((await post(`${issuer}/token`, { grant_type: JWT_BEARER_GRANT, client_id: 'sandbox-workload', assertion: second, resource: mcpUrl })).status, 200);

    child.stdin.write('deny-exchange\n');
    child.stdin.write('rotate-nonces\n');
    await new Promise<void>((resolve) => {
      const check = () => /refuses every token exchange/.test(err) && /nonces rotated/.test(err) && resolve();
      child.stderr.on('data', check);
      check();
    });
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, err);
    await assert.rejects(stat(pemFile), 'the key file is removed when the sandbox stops');
  } finally {
    child.kill('SIGKILL');
    await h.cleanup();
  }
});
