/**
 * The provider table (src/oauth/quirks.ts): recognition, the knobs the sign-in reads, the dead
 * refresh token answers, and the README's "Providers" table kept in step with it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServer } from '../src/config/config.ts';
import { toServerTable } from '../src/config/schema.ts';
import { isMcpOAuthError } from '../src/errors.ts';
import {
  PROVIDER_NAMES,
  acceptsMissingPkceMetadata,
  appliedQuirks,
  applyProviderScopes,
  authorizeParamsFor,
  explainMissingRefreshToken,
  isDeadRefreshTokenError,
  profileOf,
  providerFor,
  providerProfiles,
  recogniseIssuer,
  refreshResourceFor,
  registrationRequirement,
  resourceParameterFor,
} from '../src/oauth/quirks.ts';

describe('recognition by issuer', () => {
  const cases: Array<[string, string]> = [
    ['https://accounts.google.com', 'google'],
    ['https://accounts.google.com/', 'google'],
    ['https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0', 'entra'],
    ['https://login.microsoftonline.com/common/v2.0/', 'entra'],
    ['https://login.microsoftonline.us/contoso.onmicrosoft.com/v2.0', 'entra'],
    ['https://sso.example.com/realms/engineering', 'keycloak'],
    ['https://sso.example.com/auth/realms/engineering', 'keycloak'],
    ['https://auth.atlassian.com', 'atlassian'],
    ['https://github.com/login/oauth', 'github'],
    ['https://acme.eu.auth0.com/', 'auth0'],
    ['https://acme.okta.com/oauth2/default', 'okta'],
    ['https://acme.oktapreview.com', 'okta'],
    // Not these: the v1 Entra endpoint, other hosts, look-alikes, deeper realm paths, and plain http.
    ['https://login.microsoftonline.com/common', 'generic'],
    ['https://login.microsoftonline.com.evil.example/x/v2.0', 'generic'],
    ['https://sso.example.com/realms/a/extra', 'generic'],
    ['https://notgithub.com/login/oauth', 'generic'],
    ['https://auth0.com.evil.example', 'generic'],
    ['http://127.0.0.1:8080/realms/demo', 'generic'],
    ['http://127.0.0.1:8080/oauth2/default', 'generic'],
    ['not a url', 'generic'],
  ];
  for (const [issuer, expected] of cases) {
    it(`${issuer} → ${expected}`, () => assert.equal(recogniseIssuer(issuer), expected));
  }

  it('providerFor says how it was recognised; config forces, "none" turns quirks off, a typo is a config error', () => {
    assert.equal(providerFor('https://auth.atlassian.com').recognisedFrom, 'issuer');
    assert.equal(providerFor('http://127.0.0.1:1/realms/demo', 'Keycloak').name, 'keycloak');
    assert.equal(providerFor('http://127.0.0.1:1/realms/demo', 'keycloak').recognisedFrom, 'config');
    assert.equal(providerFor('https://auth.atlassian.com', 'none').name, 'generic');
    assert.equal(providerFor('https://auth.example.com').recognisedFrom, undefined);
    assert.throws(() => providerFor('https://auth.example.com', 'gogle'), (e) => isMcpOAuthError(e, 'config_invalid') && /"gogle"/.test(e.message) && /"google"/.test(e.hint ?? ''));
  });
});

describe('knobs', () => {
  const google = providerFor('https://accounts.google.com');
  const entra = providerFor('https://login.microsoftonline.com/t/v2.0');
  const keycloak = providerFor('x', 'keycloak');
  const auth0 = providerFor('x', 'auth0');
  const generic = providerFor('https://auth.example.com');

  it('scopes: Google never gets offline_access; offline-access providers get it added; never alone', () => {
    assert.deepEqual(applyProviderScopes(google, ['mcp:tools', 'offline_access']), ['mcp:tools']);
    assert.deepEqual(applyProviderScopes(keycloak, ['mcp:tools']), ['mcp:tools', 'offline_access']);
    assert.deepEqual(applyProviderScopes(keycloak, ['offline_access', 'mcp:tools']), ['offline_access', 'mcp:tools']);
    assert.deepEqual(applyProviderScopes(keycloak, []), []);
    assert.deepEqual(applyProviderScopes(generic, ['a']), ['a']);
  });

  it('resource: none for Entra (the scope carries it), else the resource; refreshes follow the credential', () => {
    assert.equal(resourceParameterFor(entra, 'https://mcp.example.com/mcp'), undefined);
    assert.equal(resourceParameterFor(generic, 'https://mcp.example.com/mcp'), 'https://mcp.example.com/mcp');
    const key = { resource: 'https://mcp.example.com/mcp' };
    assert.equal(refreshResourceFor({ key }), 'https://mcp.example.com/mcp');
    assert.equal(refreshResourceFor({ key, resourceIndicator: 'https://mcp.example.com' }), 'https://mcp.example.com');
    assert.equal(refreshResourceFor({ key, provider: 'entra' }), undefined);
    assert.equal(refreshResourceFor({ key, provider: 'no-such-provider' }), 'https://mcp.example.com/mcp');
    assert.equal(profileOf(undefined).name, 'generic');
  });

  it('audience: Auth0 gets the resource as audience; config wins and "" removes it', () => {
    assert.deepEqual(authorizeParamsFor(auth0, {}, { resource: 'https://mcp.example.com/mcp' }), { audience: 'https://mcp.example.com/mcp' });
    assert.deepEqual(authorizeParamsFor(auth0, { audience: 'https://api.example.com' }, { resource: 'https://mcp.example.com/mcp' }), { audience: 'https://api.example.com' });
    assert.deepEqual(authorizeParamsFor(auth0, { audience: '' }, { resource: 'https://mcp.example.com/mcp' }), {});
    assert.deepEqual(authorizeParamsFor(generic, {}, { resource: 'https://mcp.example.com/mcp' }), {});
  });

  it('PKCE metadata: Entra (recognised or configured) and assume_pkce may omit it; nobody else', () => {
    assert.equal(acceptsMissingPkceMetadata('https://login.microsoftonline.com/t/v2.0', {}), true);
    assert.equal(acceptsMissingPkceMetadata('http://127.0.0.1:1/t/v2.0', { provider: 'entra' }), true);
    assert.equal(acceptsMissingPkceMetadata('https://auth.example.com', { assumePkce: true }), true);
    assert.equal(acceptsMissingPkceMetadata('https://auth.example.com', {}), false);
    assert.equal(acceptsMissingPkceMetadata('https://login.microsoftonline.com/t/v2.0', { provider: 'none' }), false);
    assert.equal(acceptsMissingPkceMetadata('https://auth.example.com', { provider: 'typo' }), false);
  });

  it('registration: providers without DCR need a configured client; the error names the keys', () => {
    const g = registrationRequirement(google, { name: 'drive', oauth: {} });
    assert.ok(g && isMcpOAuthError(g, 'config_invalid'));
    assert.match(g.hint ?? '', /client_id and client_secret_env/);
    assert.match(g.hint ?? '', /\[mcp_servers\.drive\.oauth\]/);
    const e = registrationRequirement(entra, { name: 'm365', oauth: {} });
    assert.match(e?.hint ?? '', /set client_id in \[mcp_servers\.m365\.oauth\]/);
    assert.doesNotMatch(e?.hint ?? '', /client_secret_env/);
    assert.equal(registrationRequirement(google, { name: 'drive', oauth: { clientId: 'x' } }), undefined);
    assert.equal(registrationRequirement(keycloak, { name: 'kc', oauth: {} }), undefined);
  });

  it('applied quirks follow what was sent: an overridden default is not listed', () => {
    const sent = { authorizeParams: { access_type: 'offline', prompt: 'consent' }, scopes: ['mcp:tools'], resourceSent: true };
    assert.ok(appliedQuirks(google, sent).includes('offline-access-params'));
    assert.ok(!appliedQuirks(google, { ...sent, authorizeParams: { access_type: 'offline' } }).includes('offline-access-params'));
    assert.ok(appliedQuirks(entra, { ...sent, resourceSent: false }).includes('no-resource-parameter'));
    assert.ok(!appliedQuirks(keycloak, sent).includes('offline-access-scope'));
    assert.ok(appliedQuirks(keycloak, { ...sent, scopes: ['mcp:tools', 'offline_access'] }).includes('offline-access-scope'));
    assert.deepEqual(appliedQuirks(generic, sent), []);
  });

  it('dead refresh tokens: invalid_grant, Atlassian unauthorized_client, GitHub bad_refresh_token; not invalid_client', () => {
    for (const e of ['invalid_grant', 'unauthorized_client', 'bad_refresh_token']) assert.equal(isDeadRefreshTokenError(e), true, e);
    for (const e of ['invalid_client', 'invalid_request', 'temporarily_unavailable', 'toString', '']) assert.equal(isDeadRefreshTokenError(e), false, e);
  });

  it('a missing refresh token is explained for offline_access providers when it was not asked for', () => {
    assert.match(explainMissingRefreshToken('x', {}, 'okta', ['mcp:tools']) ?? '', /offline_access/);
    assert.equal(explainMissingRefreshToken('x', {}, 'okta', ['mcp:tools', 'offline_access']), undefined);
    assert.equal(explainMissingRefreshToken('https://auth.example.com', {}, undefined, ['a']), undefined);
  });
});

describe('the table and the README', () => {
  it('every quirk has an id, a summary and an https document; unconfirmed ones say what is missing', () => {
    for (const profile of providerProfiles()) {
      assert.ok(profile.quirks.length > 0, profile.name);
      const ids = profile.quirks.map((q) => q.id);
      assert.equal(new Set(ids).size, ids.length, `${profile.name}: duplicate quirk ids`);
      for (const q of profile.quirks) {
        assert.match(q.doc, /^https:\/\//, `${profile.name}/${q.id}`);
        assert.ok(q.summary.length > 10);
        if (q.confirmed !== true) assert.ok(q.unconfirmed, `${profile.name}/${q.id} must say what could not be confirmed`);
      }
    }
    assert.deepEqual(providerProfiles().map((p) => p.name), [...PROVIDER_NAMES]);
  });

  it('README "Providers" has a row per provider naming its documents, and lists the unconfirmed quirks', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const start = readme.indexOf('\n## Providers');
    assert.ok(start > 0, 'README has a "## Providers" section');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 5));
    for (const profile of providerProfiles()) {
      const row = section.split('\n').find((line) => line.startsWith(`| ${profile.label} |`));
      assert.ok(row, `a row for ${profile.label}`);
      for (const q of profile.quirks) assert.ok(section.includes(q.doc), `${profile.label}: ${q.doc}`);
      for (const q of profile.quirks.filter((x) => x.confirmed !== true)) assert.ok(section.includes(q.id), `unconfirmed ${profile.name}/${q.id} is named`);
    }
  });
});

describe('config keys: provider and assume_pkce', () => {
  async function resolve(oauth: string) {
    const dir = await mkdtemp(join(tmpdir(), 'mcp-oauth-quirks-config-'));
    try {
      const home = join(dir, 'home');
      await mkdir(home, { recursive: true });
      await mkdir(join(dir, 'codex'));
      await writeFile(join(home, 'config.toml'), `[mcp_servers.s]\nurl = "https://mcp.example.com/mcp"\n\n[mcp_servers.s.oauth]\n${oauth}\n`);
      return await resolveServer('s', { env: { MCP_OAUTH_HOME: home, CODEX_HOME: join(dir, 'codex'), HOME: dir } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('reads provider and assume_pkce, and writes them back', async () => {
    const server = await resolve('provider = "entra"\nassume_pkce = true');
    assert.equal(server.oauth.provider, 'entra');
    assert.equal(server.oauth.assumePkce, true);
    assert.deepEqual(toServerTable(server).oauth, { provider: 'entra', assume_pkce: true });
  });

  it('an unknown provider or a non-boolean assume_pkce is reported with the file, line and choices', async () => {
    await assert.rejects(resolve('provider = "gogle"'), (e) => isMcpOAuthError(e, 'config_invalid') && /mcp_servers\.s\.oauth\.provider must be one of "google", "entra"/.test(e.message) && /config\.toml:5/.test(e.message));
    await assert.rejects(resolve('assume_pkce = "yes"'), (e) => isMcpOAuthError(e, 'config_invalid') && /assume_pkce must be true or false/.test(e.message));
    assert.equal((await resolve('provider = "none"')).oauth.provider, 'none');
  });
});
