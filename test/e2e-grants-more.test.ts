/**
 * More of "Sign-in without a person": the JWT bearer grant through the library and the proxy,
 * enterprise-managed authorization through the CLI and the proxy (one IdP sign-in for two MCP
 * servers), `login` for a grant that needs no browser, and a DPoP-bound refresh token used by
 * another process with the same key.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { browserLaunches, makeHome, ok, onlyCredential, readStore, runCli, writeConfig } from './helpers/e2e.ts';
import { initializeRequest, rawProxy } from './fixtures/proxy-helpers.ts';
import { createOAuthSession } from '../src/client/session.ts';
import { connectMcp } from '../src/client/mcp.ts';
import { FileCredentialStore } from '../src/store/file-store.ts';
import { resolveServer } from '../src/config/config.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function proxyEcho(name: string, env: NodeJS.ProcessEnv, text: string): Promise<string> {
  const proxy = rawProxy([name], env);
  try {
    proxy.send(initializeRequest(1));
    await proxy.waitFor((m) => m.id === 1);
    proxy.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    proxy.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text } } });
    return JSON.stringify((await proxy.waitFor((m) => m.id === 2)).result);
  } finally {
    await proxy.stop();
  }
}

describe('JWT bearer through the library, login and the proxy', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await startSandbox({ grant: 'jwt_bearer', dpop: 'off' });
    // A Kubernetes projected token is read again from its file until it rotates.
    sb.workload!.allowReplay = true;
  });
  after(() => sb.close());

  it('login stores a token without a browser; the library and the proxy use it', async () => {
    const h = await makeHome();
    try {
      const file = join(h.home, '..', 'token.jwt');
      await writeFile(file, await sb.workload!.mint({ ttlSeconds: 600 }), { mode: 0o600 });
      await writeConfig(h.home, `[mcp_servers.pod]\nurl = "${sb.mcpUrl}"\n[mcp_servers.pod.oauth]\ngrant = "jwt_bearer"\nassertion_file = "${file}"\nclient_id = "${sb.grantClients.jwtBearer!.clientId}"\n`);
      const login = ok(await runCli(['login', 'pod'], { env: h.env }), 'login');
      assert.match(login.stdout, /Signed in to pod/);
      assert.equal(await browserLaunches(h.browserLog), 0);
      assert.equal((await onlyCredential(h.home)).grant, 'jwt_bearer');
      const server = await resolveServer('pod', { env: h.env });
      const session = createOAuthSession({ server, store: new FileCredentialStore(h.home), env: h.env, interactive: false });
      const conn = await connectMcp({ url: sb.mcpUrl, fetch: session.fetch });
      assert.ok((await conn.client.listTools()).tools.some((t) => t.name === 'echo'));
      await conn.close();
      assert.match(await proxyEcho('pod', h.env, 'workload'), /workload/);
    } finally {
      await h.cleanup();
    }
  });
});

describe('enterprise-managed authorization (SEP-990)', () => {
  let a: Sandbox;
  let b: Sandbox;
  before(async () => {
    a = await startSandbox({ grant: 'enterprise', dpop: 'off' });
    b = await startSandbox({ grant: 'enterprise', dpop: 'off', enterpriseIdp: a.idp });
  });
  after(async () => {
    await b.close();
    await a.close();
  });

  it('one IdP sign-in serves two MCP servers, through the CLI and the proxy', async () => {
    const idp = a.idp!;
    const entry = (name: string, sb: Sandbox) => [
      `[mcp_servers.${name}]`, `url = "${sb.mcpUrl}"`,
      `[mcp_servers.${name}.oauth]`, 'grant = "enterprise"', `client_id = "${sb.grantClients.enterprise!.clientId}"`, `client_secret_env = "${name.toUpperCase()}_SECRET"`,
      `[mcp_servers.${name}.oauth.enterprise]`, `issuer = "${idp.issuer}"`, `client_id = "${idp.client.clientId}"`, 'client_secret_env = "IDP_SECRET"', '',
    ].join('\n');
    const h = await makeHome({ IDP_SECRET: idp.client.clientSecret, CORPA_SECRET: a.grantClients.enterprise!.clientSecret, CORPB_SECRET: b.grantClients.enterprise!.clientSecret });
    try {
      await writeConfig(h.home, entry('corpa', a) + entry('corpb', b));
      ok(await runCli(['login', 'corpa'], { env: h.env }), 'login corpa (one browser sign-in at the IdP)');
      assert.equal(await browserLaunches(h.browserLog), 1);
      assert.match(ok(await runCli(['call', 'corpb', 'echo', '{"text":"second server"}'], { env: h.env }), 'call corpb').stdout, /second server/);
      assert.equal(await browserLaunches(h.browserLog), 1, 'the IdP session served the second server: no new sign-in');
      assert.match(await proxyEcho('corpa', h.env, 'via proxy'), /via proxy/);
      const { credentials } = await readStore(h.home);
      const names = Object.values<any>(credentials).map((c) => c.key.serverName).sort();
      assert.deepEqual(names, ['corpa', 'corpb', 'enterprise-idp'], 'one IdP credential, one per MCP server');
      assert.ok(idp.issuedIdJags.length >= 2 && idp.issuedIdJags.some((j) => j.aud === b.issuer));
    } finally {
      await h.cleanup();
    }
  });
});

describe('DPoP with the authorization code grant', () => {
  it('a refresh in another process presents the DPoP-bound refresh token with the same key', async () => {
    const sb = await startSandbox({ dpop: 'required', dpopNonce: true, accessTokenTtlSeconds: 3 });
    const h = await makeHome();
    try {
      await writeConfig(h.home, `[mcp_servers.sb]\nurl = "${sb.mcpUrl}"\n`);
      ok(await runCli(['login', 'sb'], { env: h.env }), 'login');
      const first = await onlyCredential(h.home);
      assert.equal(first.tokenType.toLowerCase(), 'dpop');
      assert.ok(first.refreshToken && first.dpop);
      await sleep(3300);
      ok(await runCli(['call', 'sb', 'echo', '{"text":"after refresh"}'], { env: h.env }), 'call in a new process');
      const second = await onlyCredential(h.home);
      assert.notEqual(second.accessToken, first.accessToken);
      assert.equal(second.dpop?.thumbprint, first.dpop!.thumbprint);
      // One refresh; a second request only when the AS asked for its fresh nonce first (RFC 9449 §8).
      const refreshes = sb.counters.tokenRequests.refresh_token ?? 0;
      assert.ok(refreshes >= 1 && refreshes - 1 <= sb.counters.dpop.as.nonceChallenges, `${refreshes} refresh requests`);
      assert.deepEqual(sb.counters.dpop.as.refusals, {}, 'every proof was accepted');
      assert.equal(await browserLaunches(h.browserLog), 1);
    } finally {
      await h.cleanup();
      await sb.close();
    }
  });
});
