/**
 * `mcp-oauth list` and the sign-in made with a bare URL: it is listed (it used to be invisible),
 * and a config or Codex entry for the same URL is shown signed in through it. Two NAMED entries
 * with the same URL never share a credential.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { canonicalResourceUri } from '../src/oauth/canonical.ts';
import { selectCredentials } from '../src/cli/credentials-for.ts';
import type { Credential, ServerConfig } from '../src/types.ts';
import { makeHome, ok, runCli, writeConfig, type TestHome } from './helpers/e2e.ts';
import { storeFixtureCredential } from './fixtures/proxy-helpers.ts';

const server = (name: string, url: string, extra: Partial<ServerConfig> = {}): ServerConfig => ({
  name, url, source: 'config', httpHeaders: {}, envHttpHeaders: {}, oauth: { authorizeParams: {} }, ...extra,
});
const credential = (serverName: string, resource: string, obtainedAt = 1): Credential => ({
  key: { serverName, resource, issuer: 'https://as.example' },
  accessToken: `at-${serverName}-${obtainedAt}`,
  tokenType: 'Bearer',
  scopes: [],
  clientId: 'c',
  tokenEndpoint: 'https://as.example/token',
  tokenEndpointAuthMethod: 'none',
  obtainedAt,
});

describe('which credential a server uses (pure)', () => {
  const url = 'https://MCP.example.com:443/mcp/';
  const bare = canonicalResourceUri(url);

  it('its own first; else the bare URL\'s; never another named entry\'s', () => {
    const own = credential('a', bare, 5);
    const viaUrl = credential(bare, bare, 9);
    const other = credential('b', bare, 7);
    assert.deepEqual(selectCredentials([viaUrl, own, other], server('a', url)), [own]);
    assert.deepEqual(selectCredentials([viaUrl, other], server('a', url)), [viaUrl]);
    assert.deepEqual(selectCredentials([other], server('a', url)), []);
    // The bare URL itself never borrows a named entry's credential (which of several would it be?).
    assert.deepEqual(selectCredentials([own, other], server(bare, url, { source: 'url' })), []);
    assert.deepEqual(selectCredentials([viaUrl, own], server(bare, url, { source: 'url' })), [viaUrl]);
  });

  it('an entry with its own oauth_resource does not use the bare URL\'s credential (another audience)', () => {
    const viaUrl = credential(bare, bare);
    assert.deepEqual(selectCredentials([viaUrl], server('a', url, { oauthResource: 'https://mcp.example.com' })), []);
  });
});

describe('list through the real CLI', () => {
  let sandbox: Sandbox;
  const homes: TestHome[] = [];
  before(async () => {
    sandbox = await startSandbox();
  });
  after(async () => {
    await sandbox?.close();
    await Promise.all(homes.map((h) => h.cleanup()));
  });

  it('a sign-in made with a bare URL is listed, and the Codex entry for that URL is signed in through it', async () => {
    const home = await makeHome();
    homes.push(home);
    ok(await runCli(['login', sandbox.mcpUrl], { env: home.env }), 'login URL');
    const bare = canonicalResourceUri(sandbox.mcpUrl);
    // Codex's own entry for the same server, spelled with a trailing slash.
    await writeFile(join(home.env.CODEX_HOME!, 'config.toml'), `[mcp_servers.sbx]\nurl = "${sandbox.mcpUrl}/"\n`);

    const listed = JSON.parse(ok(await runCli(['list', '--json'], { env: home.env }), 'list').stdout).servers as Array<Record<string, any>>;
    const urlRow = listed.find((s) => s.server === bare);
    assert.ok(urlRow, JSON.stringify(listed));
    assert.equal(urlRow.source, 'url');
    assert.equal(urlRow.auth_status, 'oauth');
    assert.equal(urlRow.needs_sign_in, false);
    const codexRow = listed.find((s) => s.server === 'sbx');
    assert.equal(codexRow?.auth_status, 'oauth', JSON.stringify(codexRow));
    assert.equal(codexRow.credential_of, bare);
    assert.equal(codexRow.access_token_fingerprint, urlRow.access_token_fingerprint);

    const human = ok(await runCli(['list'], { env: home.env }), 'list').stdout;
    assert.match(human, new RegExp(`^\\(url\\)\\s+oauth\\s.*${bare.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
    assert.match(human, /^sbx\s+oauth\s/m);
    assert.match(human, /sbx uses the sign-in made with its URL/);
    assert.doesNotMatch(human, /not logged in/);
  });

  it('two named entries with the same URL do not share: the one without a sign-in is "not logged in"', async () => {
    const home = await makeHome();
    homes.push(home);
    const url = 'https://mcp.example.com/mcp';
    await writeConfig(home.home, `[mcp_servers.a]\nurl = "${url}"\n\n[mcp_servers.b]\nurl = "${url}"\n`);
    await mkdir(home.home, { recursive: true });
    await storeFixtureCredential(home.home, { serverName: 'a', url, accessToken: 'fixture-access-token-a' });
    const listed = JSON.parse(ok(await runCli(['list', '--json'], { env: home.env }), 'list').stdout).servers as Array<Record<string, any>>;
    assert.deepEqual(listed.map((s) => [s.server, s.auth_status]), [['a', 'oauth'], ['b', 'not_logged_in']]);
  });
});
