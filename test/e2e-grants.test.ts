/**
 * Sign-in without a person, end to end against the sandbox (issue "Sign-in without a person"):
 * client credentials with each client authentication method, a workload's JWT (RFC 7523 §2.1),
 * and DPoP-bound tokens (RFC 9449), through the CLI, the library and the proxy. No browser is ever
 * opened; tokens are obtained again (no refresh token) when they expire; bad material gives a
 * clear error naming what to fix, and nothing stored is lost.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, exportPKCS8 } from 'jose';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { browserLaunches, makeHome, ok, onlyCredential, runCli, writeConfig, assertNoSecretsPrinted, type TestHome } from './helpers/e2e.ts';
import { initializeRequest, rawProxy } from './fixtures/proxy-helpers.ts';
import { createOAuthSession } from '../src/client/session.ts';
import { connectMcp } from '../src/client/mcp.ts';
import { FileCredentialStore } from '../src/store/file-store.ts';
import { resolveServer } from '../src/config/config.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TTL = 3;

async function homeWith(toml: string, env: NodeJS.ProcessEnv = {}): Promise<TestHome> {
  const h = await makeHome(env);
  await writeConfig(h.home, toml);
  return h;
}

async function keyFile(h: TestHome, pem: string): Promise<string> {
  const file = join(h.home, '..', 'client-key.pem');
  await writeFile(file, pem, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}

describe('client credentials', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await startSandbox({ grant: 'client_credentials', accessTokenTtlSeconds: TTL, dpop: 'off' });
  });
  after(() => sb.close());

  const methods = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;
  for (const method of methods) {
    it(`${method}: the CLI gets a token without a browser, and a new one after it expires`, async () => {
      const c = sb.grantClients;
      const secretEnv = { CC_SECRET: method === 'client_secret_basic' ? c.clientSecretBasic!.clientSecret : c.clientSecretPost!.clientSecret };
      const h = await makeHome(method === 'private_key_jwt' ? {} : secretEnv);
      try {
        const clientId = method === 'client_secret_basic' ? c.clientSecretBasic!.clientId : method === 'client_secret_post' ? c.clientSecretPost!.clientId : c.privateKeyJwt!.clientId;
        const material = method === 'private_key_jwt' ? `private_key_file = "${await keyFile(h, c.privateKeyJwt!.privateKeyPem)}"` : 'client_secret_env = "CC_SECRET"';
        await writeConfig(h.home, `[mcp_servers.cc]\nurl = "${sb.mcpUrl}"\n[mcp_servers.cc.oauth]\ngrant = "client_credentials"\nclient_id = "${clientId}"\nclient_auth = "${method}"\n${material}\n`);
        const issuedBefore = sb.counters.grants.client_credentials?.issued ?? 0;
        const tools = ok(await runCli(['tools', 'cc'], { env: h.env }), 'tools');
        assert.match(tools.stdout, /echo/);
        const credential = await onlyCredential(h.home);
        assert.equal(credential.grant, 'client_credentials');
        assert.equal(credential.refreshToken, undefined);
        assert.equal(credential.tokenEndpointAuthMethod, method);
        await sleep(TTL * 1000 + 300);
        ok(await runCli(['call', 'cc', 'echo', '{"text":"again"}'], { env: h.env }), 'call after expiry');
        assert.equal((sb.counters.grants.client_credentials?.issued ?? 0) - issuedBefore, 2, 'one token, then one more after the expiry');
        assert.equal(await browserLaunches(h.browserLog), 0, 'no browser, ever');
        const status = JSON.parse(ok(await runCli(['status', 'cc', '--json'], { env: h.env }), 'status').stdout);
        assert.equal(status.grant, 'client_credentials');
        await assertNoSecretsPrinted(h.home, tools.stdout, tools.stderr, JSON.stringify(status));
      } finally {
        await h.cleanup();
      }
    });
  }

  it('the library and the proxy, on the same credential', async () => {
    const c = sb.grantClients.clientSecretBasic!;
    const h = await homeWith(`[mcp_servers.cc]\nurl = "${sb.mcpUrl}"\n[mcp_servers.cc.oauth]\ngrant = "client_credentials"\nclient_id = "${c.clientId}"\nclient_secret_env = "CC_SECRET"\n`, { CC_SECRET: c.clientSecret });
    try {
      const server = await resolveServer('cc', { env: h.env });
      const session = createOAuthSession({ server, store: new FileCredentialStore(h.home), env: h.env, interactive: false });
      const conn = await connectMcp({ url: sb.mcpUrl, fetch: session.fetch });
      const { tools } = await conn.client.listTools();
      assert.ok(tools.some((t) => t.name === 'echo'));
      await conn.close();
      const proxy = rawProxy(['cc'], h.env);
      try {
        proxy.send(initializeRequest(1));
        await proxy.waitFor((m) => m.id === 1);
        proxy.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
        proxy.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'via proxy' } } });
        const answer = await proxy.waitFor((m) => m.id === 2);
        assert.match(JSON.stringify(answer.result), /via proxy/);
      } finally {
        await proxy.stop();
      }
      const token = ok(await runCli(['token', 'cc'], { env: h.env }), 'token');
      assert.equal(token.stdout.trim(), (await onlyCredential(h.home)).accessToken, 'token prints the stored, still valid token');
    } finally {
      await h.cleanup();
    }
  });

  it('bad material: a wrong key, an unsupported algorithm, a missing secret: clear errors, nothing stored', async () => {
    const c = sb.grantClients.privateKeyJwt!;
    const other = await generateKeyPair('ES256', { extractable: true });
    const h = await makeHome();
    try {
      const file = await keyFile(h, await exportPKCS8(other.privateKey));
      await writeConfig(h.home, `[mcp_servers.cc]\nurl = "${sb.mcpUrl}"\n[mcp_servers.cc.oauth]\ngrant = "client_credentials"\nclient_id = "${c.clientId}"\nprivate_key_file = "${file}"\n`);
      const wrong = await runCli(['tools', 'cc'], { env: h.env });
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /invalid_client|client authentication/i);
      await writeConfig(h.home, `[mcp_servers.cc]\nurl = "${sb.mcpUrl}"\n[mcp_servers.cc.oauth]\ngrant = "client_credentials"\nclient_id = "${c.clientId}"\nprivate_key_file = "${join(h.home, 'nope.pem')}"\n`);
      const missing = await runCli(['tools', 'cc'], { env: h.env });
      assert.equal(missing.code, 3, missing.stderr);
      assert.match(missing.stderr, /nope\.pem/);
      await writeConfig(h.home, `[mcp_servers.cc]\nurl = "${sb.mcpUrl}"\n[mcp_servers.cc.oauth]\ngrant = "client_credentials"\nclient_id = "x"\nclient_secret_env = "NOT_SET_ANYWHERE"\n`);
      const unset = await runCli(['tools', 'cc'], { env: h.env });
      assert.equal(unset.code, 3, unset.stderr);
      assert.match(unset.stderr, /NOT_SET_ANYWHERE/);
      const inline = await homeWith(`[mcp_servers.cc]\nurl = "${sb.mcpUrl}"\n[mcp_servers.cc.oauth]\nprivate_key = "-----BEGIN PRIVATE KEY-----"\n`);
      const refused = await runCli(['tools', 'cc'], { env: inline.env });
      assert.equal(refused.code, 3);
      assert.match(refused.stderr, /private_key_file/);
      assert.doesNotMatch(refused.stderr, /BEGIN PRIVATE KEY/);
      await inline.cleanup();
    } finally {
      await h.cleanup();
    }
  });
});

describe('JWT bearer (workload identity)', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await startSandbox({ grant: 'jwt_bearer', accessTokenTtlSeconds: TTL, dpop: 'off' });
  });
  after(() => sb.close());

  it('an assertion read fresh from a file; an expired one is refused before it is sent, naming the file', async () => {
    const h = await makeHome();
    const file = join(h.home, '..', 'workload.jwt');
    try {
      await writeFile(file, await sb.workload!.mint({ ttlSeconds: 120 }), { mode: 0o600 });
      await writeConfig(h.home, `[mcp_servers.pod]\nurl = "${sb.mcpUrl}"\n[mcp_servers.pod.oauth]\nassertion_file = "${file}"\nclient_id = "${sb.grantClients.jwtBearer!.clientId}"\n`);
      ok(await runCli(['tools', 'pod'], { env: h.env }), 'tools (grant chosen from the assertion source)');
      assert.equal((await onlyCredential(h.home)).grant, 'jwt_bearer');
      // The workload's token rotates under us (single use here): the next renewal reads it again.
      await writeFile(file, await sb.workload!.mint({ ttlSeconds: 120 }), { mode: 0o600 });
      await sleep(TTL * 1000 + 300);
      ok(await runCli(['call', 'pod', 'echo', '{"text":"renewed"}'], { env: h.env }), 'call after expiry');
      assert.equal(sb.counters.grants['urn:ietf:params:oauth:grant-type:jwt-bearer']?.issued, 2);

      await writeFile(file, await sb.workload!.mint({ ttlSeconds: -60 }), { mode: 0o600 });
      await sleep(TTL * 1000 + 300);
      const before = sb.counters.grants['urn:ietf:params:oauth:grant-type:jwt-bearer']?.issued;
      const expired = await runCli(['call', 'pod', 'echo', '{"text":"x"}'], { env: h.env });
      assert.equal(expired.code, 3, expired.stderr);
      assert.match(expired.stderr, /expired/i);
      assert.match(expired.stderr, /workload\.jwt/);
      assert.equal(sb.counters.grants['urn:ietf:params:oauth:grant-type:jwt-bearer']?.issued, before, 'nothing sent');
      assert.ok(await onlyCredential(h.home), 'the stored credential is kept');
    } finally {
      await h.cleanup();
    }
  });
});

describe('DPoP (RFC 9449)', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await startSandbox({ grant: 'client_credentials', accessTokenTtlSeconds: TTL, dpop: 'required', dpopNonce: true });
  });
  after(() => sb.close());

  it('proofs at both servers with their nonces; a renewal in another process uses the same key; a stolen token without it is refused', async () => {
    const c = sb.grantClients.clientSecretBasic!;
    const h = await homeWith(`[mcp_servers.bound]\nurl = "${sb.mcpUrl}"\n[mcp_servers.bound.oauth]\ngrant = "client_credentials"\nclient_id = "${c.clientId}"\nclient_secret_env = "CC_SECRET"\n`, { CC_SECRET: c.clientSecret });
    try {
      ok(await runCli(['tools', 'bound'], { env: h.env }), 'tools');
      const first = await onlyCredential(h.home);
      assert.equal(first.tokenType.toLowerCase(), 'dpop');
      assert.ok(first.dpop?.thumbprint);
      assert.ok(sb.counters.dpop.as.proofs > 0 && sb.counters.dpop.as.nonceChallenges > 0, 'proofs and a nonce at the authorization server');
      assert.ok(sb.counters.dpop.rs.accepted > 0 && sb.counters.dpop.rs.nonceChallenges > 0, 'proofs and a nonce at the MCP server');
      sb.rotateDpopNonces();
      await sleep(TTL * 1000 + 300);
      ok(await runCli(['call', 'bound', 'echo', '{"text":"bound"}'], { env: h.env }), 'call after expiry and nonce rotation');
      const second = await onlyCredential(h.home);
      assert.notEqual(second.accessToken, first.accessToken);
      assert.equal(second.dpop?.thumbprint, first.dpop?.thumbprint, 'the same key across processes');
      const stolen = await fetch(sb.mcpUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${second.accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify(initializeRequest(9)),
      });
      await stolen.body?.cancel();
      assert.equal(stolen.status, 401, 'a DPoP-bound token without its key is refused');
      const status = JSON.parse(ok(await runCli(['status', 'bound', '--json'], { env: h.env }), 'status').stdout);
      assert.equal(status.dpop_key_thumbprint, first.dpop!.thumbprint);
      assert.equal(status.dpop_bound, true);
    } finally {
      await h.cleanup();
    }
  });

  it('dpop = "required" at a server that cannot do DPoP: a clear error before any token request', async () => {
    const plain = await startSandbox({ grant: 'client_credentials', dpop: 'off' });
    const c = plain.grantClients.clientSecretBasic!;
    const h = await homeWith(`[mcp_servers.p]\nurl = "${plain.mcpUrl}"\n[mcp_servers.p.oauth]\ngrant = "client_credentials"\nclient_id = "${c.clientId}"\nclient_secret_env = "CC_SECRET"\ndpop = "required"\n`, { CC_SECRET: c.clientSecret });
    try {
      const r = await runCli(['tools', 'p'], { env: h.env });
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /requires DPoP/);
      assert.equal(plain.counters.grants.client_credentials?.issued ?? 0, 0);
    } finally {
      await h.cleanup();
      await plain.close();
    }
  });
});
