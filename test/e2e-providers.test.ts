/**
 * Identity provider quirks, end to end: the real CLI against the sandbox behaving like each
 * provider (src/sandbox/provider-modes.ts), with the provider's profile (src/oauth/quirks.ts)
 * switched on by `provider = "NAME"` (a loopback issuer is never recognised by its address). Per
 * provider: login, a tools call, a refresh across a real access-token expiry, what was sent, and
 * for Keycloak, Atlassian and GitHub their answer to a dead refresh token → exit 4, credential
 * kept and marked.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSandbox, type Sandbox, type SandboxOptions } from '../src/sandbox/index.ts';
import { ENTRA_API_SCOPE } from '../src/sandbox/provider-modes.ts';
import { cliPath, makeHome, ok, onlyCredential, runCli, writeConfig, assertNoSecretsPrinted, type CliResult, type TestHome } from './helpers/e2e.ts';
import { waitUntilExpired } from './fixtures/conc-helpers.ts';
import type { Credential } from '../src/types.ts';

const SECRET_ENV = 'PROVIDER_CLIENT_SECRET';
// Short enough to wait for, long enough that the call right after login does not refresh.
const ACCESS_TTL = 3;
const sourceEnv: NodeJS.ProcessEnv = process.env.MCP_OAUTH_SOURCE ? { MCP_OAUTH_SOURCE: '1' } : {};

interface Setup {
  sandbox: Sandbox;
  h: TestHome;
  name: string;
  cli(...args: string[]): Promise<CliResult>;
}

/** A sandbox behaving like `provider`, a fresh home, and a config entry for it. */
async function setUp(provider: NonNullable<SandboxOptions['provider']>, oauth: string[], opts: SandboxOptions = {}): Promise<Setup> {
  const sandbox = await startSandbox({ provider, accessTokenTtlSeconds: ACCESS_TTL, ...opts });
  const h = await makeHome(sourceEnv);
  const name = `${provider}-mcp`;
  const client = sandbox.preregisteredClient;
  if (client?.clientSecret) h.env[SECRET_ENV] = client.clientSecret;
  const lines = [`[mcp_servers.${name}]`, `url = "${sandbox.mcpUrl}"`, '', `[mcp_servers.${name}.oauth]`, ...oauth];
  await writeConfig(h.home, `${lines.join('\n')}\n`);
  return { sandbox, h, name, cli: (...args) => runCli(args, { env: h.env }) };
}

function clientLines(sandbox: Sandbox): string[] {
  const client = sandbox.preregisteredClient;
  assert.ok(client, 'the provider mode has a pre-registered client');
  return [`client_id = "${client.clientId}"`, ...(client.clientSecret ? [`client_secret_env = "${SECRET_ENV}"`] : [])];
}

async function tearDown(s: Setup | undefined): Promise<void> {
  await s?.sandbox.close();
  await s?.h.cleanup();
}

/** login, tools, a real expiry, a call that refreshes; returns the authorize request's parameters. */
async function signInUseAndRefresh(s: Setup): Promise<Record<string, string>> {
  const login = ok(await s.cli('login', s.name), 'login');
  assert.equal(s.sandbox.counters.authorizeRequests.length, 1, 'one authorization request');
  const tools = ok(await s.cli('tools', s.name), 'tools');
  assert.match(tools.stdout, /\becho\b/);
  const signedIn = await onlyCredential(s.h.home);
  assert.ok(signedIn.refreshToken, 'a refresh token was issued');

  await waitUntilExpired(signedIn as Credential);
  const call = ok(await s.cli('call', s.name, 'echo', '{"text":"after expiry"}'), 'call after expiry');
  assert.equal(call.stdout.trim(), 'after expiry');
  assert.ok((s.sandbox.counters.tokenRequests.refresh_token ?? 0) >= 1, 'the expired token was refreshed');
  assert.equal(s.sandbox.counters.authorizeRequests.length, 1, 'no second sign-in');
  const refreshed = await onlyCredential(s.h.home);
  assert.notEqual(refreshed.accessToken, signedIn.accessToken);
  await assertNoSecretsPrinted(s.h.home, login.stdout, login.stderr, tools.stdout, call.stdout, call.stderr);
  return s.sandbox.counters.authorizeRequests[0];
}

async function statusJson(s: Setup): Promise<Record<string, any>> {
  return JSON.parse(ok(await s.cli('status', s.name, '--json'), 'status --json').stdout);
}

/**
 * The provider's answer to a dead refresh token, for real: a refresh token already used (rotated
 * away) is presented again. `mcp-oauth token` (never a browser) must end in exit 4 naming the
 * login command, the credential kept and marked needsSignIn with the provider's error.
 */
async function presentUsedRefreshToken(s: Setup, expected: { oauthError: string; reason: RegExp }): Promise<void> {
  ok(await s.cli('login', s.name), 'login');
  const file = join(s.h.home, 'credentials.json');
  const withFirstToken = await readFile(file, 'utf8');
  const first = await onlyCredential(s.h.home);
  await waitUntilExpired(first as Credential);
  ok(await s.cli('call', s.name, 'echo', '{"text":"rotates"}'), 'call that rotates the refresh token');
  assert.notEqual((await onlyCredential(s.h.home)).refreshToken, first.refreshToken, 'the refresh token rotated');

  await writeFile(file, withFirstToken, { mode: 0o600 }); // the consumed one, its access token expired
  const before = s.sandbox.counters.tokenRequests.refresh_token ?? 0;
  const r = await s.cli('token', s.name);
  assert.equal(r.code, 4, `exit 4 (sign in again), not a protocol error: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`mcp-oauth login ${s.name}`));
  assert.equal(r.stdout, '');
  assert.equal(s.sandbox.counters.tokenRequests.refresh_token, before + 1, 'one refresh attempt, then the verdict');
  const kept = await onlyCredential(s.h.home);
  assert.equal(kept.clientId, first.clientId, 'the credential is kept');
  assert.equal(kept.key.issuer, first.key.issuer);
  assert.equal(kept.needsSignIn?.oauthError, expected.oauthError);
  assert.match(kept.needsSignIn?.reason ?? '', expected.reason);
  const state = await statusJson(s);
  assert.equal(state.needs_sign_in, true);
  assert.match(state.needs_sign_in_reason, expected.reason);
}

describe('Google', () => {
  let s: Setup;
  before(async () => {
    s = await setUp('google', []);
    // offline_access configured on purpose: the profile must drop it (Google: invalid_scope).
    await writeConfig(s.h.home, `[mcp_servers.${s.name}]\nurl = "${s.sandbox.mcpUrl}"\nscopes = ["mcp:tools", "offline_access"]\n\n[mcp_servers.${s.name}.oauth]\nprovider = "google"\n${clientLines(s.sandbox).join('\n')}\n`);
  });
  after(() => tearDown(s));

  test('access_type=offline + prompt=consent, never offline_access, pre-registered client, refresh token kept', async () => {
    const authorize = await signInUseAndRefresh(s);
    assert.equal(authorize.access_type, 'offline');
    assert.equal(authorize.prompt, 'consent');
    assert.deepEqual(authorize.scope.split(' '), ['mcp:tools']);
    assert.equal(s.sandbox.counters.registrations, 0);
    const credential = await onlyCredential(s.h.home);
    assert.equal(credential.provider, 'google');
    assert.ok(credential.quirksApplied.includes('offline-access-params'), credential.quirksApplied);
    assert.ok(credential.quirksApplied.includes('no-offline-access-scope'));
  });

  test('the sandbox answers invalid_scope to offline_access, like Google (provider = "none": no quirks)', async () => {
    const h = await makeHome(sourceEnv);
    try {
      h.env[SECRET_ENV] = s.sandbox.preregisteredClient!.clientSecret;
      await writeConfig(h.home, `[mcp_servers.g]\nurl = "${s.sandbox.mcpUrl}"\nscopes = ["mcp:tools", "offline_access"]\n\n[mcp_servers.g.oauth]\nprovider = "none"\n${clientLines(s.sandbox).join('\n')}\n`);
      const r = await runCli(['login', 'g'], { env: h.env });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /invalid_scope/);
    } finally {
      await h.cleanup();
    }
  });

  test('no client configured: config error (exit 3) naming client_id and client_secret_env', async () => {
    const h = await makeHome(sourceEnv);
    try {
      await writeConfig(h.home, `[mcp_servers.g]\nurl = "${s.sandbox.mcpUrl}"\n\n[mcp_servers.g.oauth]\nprovider = "google"\n`);
      const before = s.sandbox.counters.authorizeRequests.length;
      const r = await runCli(['login', 'g'], { env: h.env });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /no dynamic client registration/);
      assert.match(r.stderr, /client_id and client_secret_env/);
      assert.match(r.stderr, /\[mcp_servers\.g\.oauth\]/);
      assert.equal(s.sandbox.counters.authorizeRequests.length, before, 'no authorization request');
    } finally {
      await h.cleanup();
    }
  });
});

describe('Microsoft Entra ID', () => {
  let s: Setup;
  before(async () => {
    s = await setUp('entra', []);
    assert.equal(s.sandbox.preregisteredClient?.clientSecret, undefined, 'a public client (no secret)');
    await writeConfig(s.h.home, `[mcp_servers.${s.name}]\nurl = "${s.sandbox.mcpUrl}"\n\n[mcp_servers.${s.name}.oauth]\nprovider = "entra"\n${clientLines(s.sandbox).join('\n')}\n`);
  });
  after(() => tearDown(s));

  test('tenant issuer path, PKCE without metadata, no resource parameter, .default scope, no revocation', async () => {
    assert.match(s.sandbox.issuer, /\/[0-9a-f-]+\/v2\.0$/);
    const authorize = await signInUseAndRefresh(s);
    assert.equal(authorize.resource, undefined, 'no RFC 8707 resource on the authorization request');
    assert.equal(authorize.code_challenge_method, 'S256');
    assert.deepEqual(authorize.scope.split(' ').sort(), [ENTRA_API_SCOPE, 'offline_access'].sort());
    for (const entry of s.sandbox.counters.tokenRequestLog) assert.equal(entry.resource, undefined, `no resource on ${entry.grantType}`);
    assert.equal(s.sandbox.counters.registrations, 0);
    const state = await statusJson(s);
    assert.equal(state.provider, 'entra');
    assert.ok(state.quirks_applied.includes('no-resource-parameter'));
    assert.ok(state.quirks_applied.includes('pkce-not-advertised'));

    const doctor = await s.cli('doctor', s.name);
    assert.match(doctor.stdout, /identity provider: Microsoft Entra ID \(provider = "entra" in the config\)/);
    assert.match(doctor.stdout, /PKCE S256 assumed \(not advertised\)/);
    ok(await s.cli('logout', s.name), 'logout');
    assert.equal(s.sandbox.counters.revocations, 0, 'there is no revocation endpoint to call');
  });

  test('without provider = "entra": refused (exit 5), the error names provider = "entra" and assume_pkce', async () => {
    const h = await makeHome(sourceEnv);
    try {
      await writeConfig(h.home, `[mcp_servers.e]\nurl = "${s.sandbox.mcpUrl}"\n\n[mcp_servers.e.oauth]\n${clientLines(s.sandbox).join('\n')}\n`);
      const r = await runCli(['login', 'e'], { env: h.env });
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /code_challenge_methods_supported/);
      assert.match(r.stderr, /provider = "entra"/);
      assert.match(r.stderr, /assume_pkce = true/);
    } finally {
      await h.cleanup();
    }
  });

  test('assume_pkce = true alone sends resource, which Entra refuses next to a .default scope (AADSTS9010010)', async () => {
    const h = await makeHome(sourceEnv);
    try {
      await writeConfig(h.home, `[mcp_servers.e]\nurl = "${s.sandbox.mcpUrl}"\n\n[mcp_servers.e.oauth]\nassume_pkce = true\n${clientLines(s.sandbox).join('\n')}\n`);
      const r = await runCli(['login', 'e'], { env: h.env });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /invalid_target/);
      assert.match(r.stderr, /AADSTS9010010/);
    } finally {
      await h.cleanup();
    }
  });
});

describe('Keycloak', () => {
  let s: Setup;
  before(async () => {
    // A refresh token that lives an hour: status warns (less than a day left).
    s = await setUp('keycloak', ['provider = "keycloak"'], { refreshTokenTtlSeconds: 3600 });
  });
  after(() => tearDown(s));

  test('realm issuer path, offline_access, refresh_expires_in shown and warned about', async () => {
    assert.match(s.sandbox.issuer, /\/realms\/demo$/);
    const authorize = await signInUseAndRefresh(s);
    assert.ok(authorize.scope.split(' ').includes('offline_access'));
    assert.equal(s.sandbox.counters.registrations, 1, 'Keycloak has dynamic registration');
    const credential = await onlyCredential(s.h.home);
    assert.ok(credential.refreshTokenExpiresAt > Date.now() + 3000_000 && credential.refreshTokenExpiresAt <= Date.now() + 3600_000);
    const state = await statusJson(s);
    assert.equal(state.refresh_token_expires_at, new Date(credential.refreshTokenExpiresAt).toISOString());
    assert.match(state.refresh_token_expiry_warning, /expires in (5\dm|1h 0m)/);
    assert.match(state.refresh_token_expiry_warning, new RegExp(`mcp-oauth login ${s.name}`));
    const human = ok(await s.cli('status', s.name), 'status');
    assert.match(human.stdout, /⚠ The refresh token expires in/);
    assert.match(human.stdout, /Provider:\s+keycloak; quirks applied: .*refresh-expires-in/);
    const doctor = await s.cli('doctor', s.name, '--json');
    const step = JSON.parse(doctor.stdout).steps.find((x: { step: string }) => x.step === 'identity provider');
    assert.equal(step.data.provider, 'keycloak');
    assert.deepEqual(step.data.quirks.map((q: { id: string }) => q.id), ['realm-issuer-path', 'offline-access-scope', 'refresh-token-reuse-limit', 'refresh-expires-in']);
  });

  test('"Maximum allowed refresh token reuse exceeded" → exit 4, credential kept and marked', async () => {
    const t = await setUp('keycloak', ['provider = "keycloak"']);
    try {
      await presentUsedRefreshToken(t, { oauthError: 'invalid_grant', reason: /Maximum allowed refresh token reuse exceeded/ });
    } finally {
      await tearDown(t);
    }
  });
});

describe('Atlassian', () => {
  let s: Setup;
  before(async () => {
    s = await setUp('atlassian', ['provider = "atlassian"']);
  });
  after(() => tearDown(s));

  test('offline_access asked for, rotating refresh tokens', async () => {
    const first = await signInUseAndRefresh(s);
    assert.ok(first.scope.split(' ').includes('offline_access'));
    assert.deepEqual((await statusJson(s)).quirks_applied, ['rotating-refresh-tokens', 'offline-access-scope', 'dead-refresh-unauthorized-client']);
  });

  test('"unauthorized_client: refresh_token is invalid" → exit 4 (not a protocol error), credential kept and marked', async () => {
    const t = await setUp('atlassian', ['provider = "atlassian"']);
    try {
      await presentUsedRefreshToken(t, { oauthError: 'unauthorized_client', reason: /unauthorized_client: refresh_token is invalid/ });
    } finally {
      await tearDown(t);
    }
  });
});

describe('GitHub', () => {
  let s: Setup;
  before(async () => {
    s = await setUp('github', []);
    await writeConfig(s.h.home, `[mcp_servers.${s.name}]\nurl = "${s.sandbox.mcpUrl}"\n\n[mcp_servers.${s.name}.oauth]\nprovider = "github"\n${clientLines(s.sandbox).join('\n')}\n`);
  });
  after(() => tearDown(s));

  test('pre-registered app, Accept: application/json on every token request, refresh_token_expires_in stored', async () => {
    await signInUseAndRefresh(s);
    assert.equal(s.sandbox.counters.registrations, 0);
    for (const entry of s.sandbox.counters.tokenRequestLog) assert.match(entry.accept ?? '', /application\/json/);
    const credential = await onlyCredential(s.h.home);
    assert.ok(credential.refreshTokenExpiresAt > Date.now() + 13 * 86400_000, 'about 14 days (the sandbox default)');
    const state = await statusJson(s);
    assert.equal(state.refresh_token_expiry_warning, undefined, 'far from expiry: no warning');
  });

  test('the sandbox answers form-encoded without Accept: application/json, and errors with HTTP 200', async () => {
    const tokenEndpoint = `${s.sandbox.issuer}/token`;
    const res = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'not-a-token', client_id: s.sandbox.preregisteredClient!.clientId, client_secret: s.sandbox.preregisteredClient!.clientSecret! }).toString(),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/x-www-form-urlencoded/);
    assert.equal(new URLSearchParams(await res.text()).get('error'), 'bad_refresh_token');
  });

  test('bad_refresh_token with HTTP 200 → exit 4, credential kept and marked', async () => {
    const t = await setUp('github', []);
    try {
      await writeConfig(t.h.home, `[mcp_servers.${t.name}]\nurl = "${t.sandbox.mcpUrl}"\n\n[mcp_servers.${t.name}.oauth]\nprovider = "github"\n${clientLines(t.sandbox).join('\n')}\n`);
      await presentUsedRefreshToken(t, { oauthError: 'bad_refresh_token', reason: /bad_refresh_token/ });
    } finally {
      await tearDown(t);
    }
  });
});

describe('Auth0', () => {
  let s: Setup;
  before(async () => {
    s = await setUp('auth0', ['provider = "auth0"']);
  });
  after(() => tearDown(s));

  test('audience = the MCP server URL and offline_access, although the metadata does not list it', async () => {
    const authorize = await signInUseAndRefresh(s);
    assert.equal(authorize.audience, s.sandbox.mcpUrl);
    assert.ok(authorize.scope.split(' ').includes('offline_access'));
    assert.deepEqual((await statusJson(s)).quirks_applied, ['offline-access-scope', 'audience-parameter']);
  });
});

describe('Okta', () => {
  let s: Setup;
  before(async () => {
    s = await setUp('okta', ['provider = "okta"']);
  });
  after(() => tearDown(s));

  test('custom authorization server path /oauth2/default, offline_access asked for', async () => {
    assert.match(s.sandbox.issuer, /\/oauth2\/default$/);
    const authorize = await signInUseAndRefresh(s);
    assert.ok(authorize.scope.split(' ').includes('offline_access'));
  });

  test('provider = "none": no offline_access, so no refresh token (the quirk is what gets one)', async () => {
    const h = await makeHome(sourceEnv);
    try {
      await writeConfig(h.home, `[mcp_servers.o]\nurl = "${s.sandbox.mcpUrl}"\n\n[mcp_servers.o.oauth]\nprovider = "none"\n`);
      ok(await runCli(['login', 'o'], { env: h.env }), 'login');
      const credential = await onlyCredential(h.home);
      assert.equal(credential.refreshToken, undefined);
      assert.equal(credential.provider, undefined);
    } finally {
      await h.cleanup();
    }
  });
});

describe('mcp-oauth sandbox --provider NAME', () => {
  test('--provider github --client-secret-env: the printed add line, login and a call work; the secret is never printed', async () => {
    const h = await makeHome({ ...sourceEnv, GH_SECRET: 'sandbox-github-secret-for-tests' });
    const child = spawn(process.execPath, [cliPath, 'sandbox', '--provider', 'github', '--client-secret-env', 'GH_SECRET'], { env: h.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`sandbox did not start: ${out} ${err}`)), 30_000);
        child.stdout.on('data', () => /^Next, in another terminal/m.test(out) && (clearTimeout(timer), resolve()));
      });
      assert.match(out, /authorization server\s+http:\/\/127\.0\.0\.1:\d+\/login\/oauth/);
      const add = out.match(/(mcp-oauth add github-sandbox \S+ --client-id \S+ --client-secret-env GH_SECRET --provider github)/);
      assert.ok(add, out);
      ok(await runCli(add[1].split(' ').slice(1), { env: h.env }), 'add');
      const login = ok(await runCli(['login', 'github-sandbox'], { env: h.env }), 'login');
      const call = ok(await runCli(['call', 'github-sandbox', 'echo', '{"text":"hi"}'], { env: h.env }), 'call');
      assert.equal(call.stdout.trim(), 'hi');
      assert.equal((await onlyCredential(h.home)).provider, 'github');
      for (const text of [out, err, login.stdout, login.stderr]) assert.ok(!text.includes('sandbox-github-secret-for-tests'));
      child.kill('SIGINT');
      assert.equal(await new Promise<number | null>((resolve) => child.on('close', resolve)), 0);
    } finally {
      child.kill('SIGKILL');
      await h.cleanup();
    }
  });

  test('an unknown provider is a usage error (exit 2) listing the choices', async () => {
    const h = await makeHome(sourceEnv);
    try {
      const r = await runCli(['sandbox', '--provider', 'facebook'], { env: h.env });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /google, entra, keycloak, atlassian, github, auth0, okta/);
    } finally {
      await h.cleanup();
    }
  });
});
