/**
 * The second user report (issue test 5): "with Google I have to sign in again every hour".
 * Google issues a refresh token only when the authorize request has access_type=offline AND
 * prompt=consent; the sandbox's googleMode behaves the same (pre-registered client, no DCR, no
 * rotation). Its issuer is plain http://127.0.0.1, so the quirk is switched on by
 * `provider = "google"`, exactly as a user of a Google-fronted MCP server would configure it.
 */
import { test, describe, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { makeHome, runCli, writeConfig, readStore, assertNoSecretsPrinted, type TestHome } from './helpers/e2e.ts';
import { expireStoredCredentials } from './fixtures/conc-helpers.ts';

const NAME = 'gdrive';
const SECRET_ENV = 'GDRIVE_CLIENT_SECRET';

let sandbox: Sandbox;
let h: TestHome;
let env: NodeJS.ProcessEnv;

before(async () => {
  sandbox = await startSandbox({ googleMode: true });
  assert.ok(sandbox.googleClient, 'googleMode provides a pre-registered client');
});
after(() => sandbox.close());
beforeEach(async () => {
  h = await makeHome();
  // The client secret lives only in the environment, never in config.toml.
  env = { ...h.env, [SECRET_ENV]: sandbox.googleClient!.clientSecret };
  sandbox.resetCounters();
});
afterEach(() => h.cleanup());

function config(oauthExtra: string): string {
  return [
    `[mcp_servers.${NAME}]`,
    `url = "${sandbox.mcpUrl}"`,
    '',
    `[mcp_servers.${NAME}.oauth]`,
    `client_id = "${sandbox.googleClient!.clientId}"`,
    `client_secret_env = "${SECRET_ENV}"`,
    oauthExtra,
    '',
  ].join('\n');
}

async function login(): Promise<{ stdout: string; stderr: string; authorize: Record<string, string> }> {
  const r = await runCli(['login', NAME], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sandbox.counters.authorizeRequests.length, 1, 'one authorization request per login');
  return { stdout: r.stdout, stderr: r.stderr, authorize: sandbox.counters.authorizeRequests[0] };
}

async function storedCredential() {
  const creds = Object.values((await readStore(h.home)).credentials);
  assert.equal(creds.length, 1);
  return creds[0];
}

function assertSecretNotIn(...outputs: string[]): void {
  for (const out of outputs) assert.ok(!out.includes(sandbox.googleClient!.clientSecret), 'the client secret was printed');
}

describe('provider = "google" (the quirk on)', () => {
  test('login gets a refresh token: the authorize request carried access_type=offline and prompt=consent', async () => {
    await writeConfig(h.home, config('provider = "google"'));
    const { stdout, stderr, authorize } = await login();

    assert.equal(authorize.access_type, 'offline');
    assert.equal(authorize.prompt, 'consent');
    assert.equal(authorize.client_id, sandbox.googleClient!.clientId, 'the pre-registered client is used');
    assert.equal(sandbox.counters.registrations, 0, 'no dynamic client registration (Google has none)');
    const credential = await storedCredential();
    assert.ok(credential.refreshToken, 'a refresh token is stored');
    assert.equal(credential.refreshTokenMissingReason, undefined);
    assert.equal(credential.tokenEndpointAuthMethod, 'client_secret_basic');

    const status = await runCli(['status', NAME, '--json'], { env });
    assert.equal(status.code, 0, status.stderr);
    const state = JSON.parse(status.stdout);
    assert.equal(state.has_refresh_token, true);
    assert.equal(state.refresh_token_missing_reason, undefined);
    await assertNoSecretsPrinted(h.home, stdout, stderr, status.stdout);
    assertSecretNotIn(stdout, stderr, status.stdout, status.stderr);
  });

  test('an hour later (expired token): a tool call refreshes silently; the refresh token is kept', async () => {
    await writeConfig(h.home, config('provider = "google"'));
    await login();
    const signedIn = await storedCredential();
    await expireStoredCredentials(h.home);

    const call = await runCli(['call', NAME, 'echo', '{"text":"still signed in"}'], { env });
    assert.equal(call.code, 0, call.stderr);
    assert.equal(call.stdout.trim(), 'still signed in');
    assert.equal(sandbox.counters.tokenRequests.refresh_token, 1);
    assert.equal(sandbox.counters.authorizeRequests.length, 1, 'no second sign-in');
    const after = await storedCredential();
    assert.notEqual(after.accessToken, signedIn.accessToken);
    // Google's refresh response has no refresh_token: the one we hold stays valid and stored.
    assert.equal(after.refreshToken, signedIn.refreshToken);
    assertSecretNotIn(call.stdout, call.stderr);
  });
});

describe('no provider (the quirk off)', () => {
  test('no refresh token; status, status --json and doctor explain why and what to set', async () => {
    await writeConfig(h.home, config(''));
    const { stdout, authorize } = await login();

    // Without a provider nothing Google-specific is sent — in particular no prompt=consent, which
    // breaks tenants where only an admin may consent.
    assert.equal(authorize.access_type, undefined);
    assert.equal(authorize.prompt, undefined);
    const credential = await storedCredential();
    assert.equal(credential.refreshToken, undefined, 'the sandbox withholds the refresh token');
    assert.ok(credential.refreshTokenMissingReason);

    const mentionsTheFix = (text: string, where: string) => {
      for (const needle of ['access_type=offline', 'prompt=consent', 'provider = "google"']) {
        assert.ok(text.includes(needle), `${where} does not mention ${needle}:\n${text}`);
      }
    };
    mentionsTheFix(stdout, 'login');

    const status = await runCli(['status', NAME], { env });
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /Refresh token:\s+none/);
    mentionsTheFix(status.stdout, 'status');

    const json = await runCli(['status', NAME, '--json'], { env });
    assert.equal(json.code, 0, json.stderr);
    const state = JSON.parse(json.stdout);
    assert.equal(state.has_refresh_token, false);
    mentionsTheFix(state.refresh_token_missing_reason, 'status --json refresh_token_missing_reason');

    const doctor = await runCli(['doctor', NAME], { env });
    mentionsTheFix(doctor.stdout, 'doctor');
    assert.match(doctor.stdout, /refresh \(a real token request\).*no refresh token/);
    assertSecretNotIn(stdout, status.stdout, json.stdout, doctor.stdout, doctor.stderr);
    await assertNoSecretsPrinted(h.home, stdout, status.stdout, json.stdout, doctor.stdout, doctor.stderr);
  });

  test('authorize_params = { access_type = "offline", prompt = "consent" } also yields a refresh token', async () => {
    await writeConfig(h.home, config('authorize_params = { access_type = "offline", prompt = "consent" }'));
    const { authorize } = await login();
    assert.equal(authorize.access_type, 'offline');
    assert.equal(authorize.prompt, 'consent');
    const credential = await storedCredential();
    assert.ok(credential.refreshToken);
    assert.equal(credential.refreshTokenMissingReason, undefined);
  });
});

describe('provider = "google" with the quirk partly overridden', () => {
  test('provider = "google" with prompt="" (an override that drops consent): status says exactly what was missing', async () => {
    await writeConfig(h.home, config('provider = "google"\nauthorize_params = { prompt = "" }'));
    const { authorize } = await login();
    assert.equal(authorize.access_type, 'offline');
    assert.equal(authorize.prompt, undefined, 'an empty configured value removes the parameter');
    const credential = await storedCredential();
    assert.equal(credential.refreshToken, undefined);
    const json = await runCli(['status', NAME, '--json'], { env });
    const reason: string = JSON.parse(json.stdout).refresh_token_missing_reason;
    assert.match(reason, /did not send prompt=consent/);
    assert.doesNotMatch(reason, /did not send access_type=offline/);
  });
});
