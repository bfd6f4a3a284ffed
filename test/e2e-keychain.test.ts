/**
 * E2E: the real CLI with the OS keychain. gnome-keyring-daemon serves the Secret Service on a
 * private D-Bus session bus; `mcp-oauth login/call/logout` run as child processes against the
 * sandbox with MCP_OAUTH_STORE=auto. The secret must live in the Secret Service only (no
 * credentials.json), survive into a new process, be replaced on refresh and go on logout. Without
 * a session bus, auto falls back to a 0600 file and an explicit keychain request fails (exit 7).
 *
 * Skipped when dbus-daemon / gnome-keyring-daemon / secret-tool are missing, except under CI.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { fingerprint } from '../src/secrets.ts';
import { browserLaunches, makeHome, runCli, type TestHome } from './helpers/e2e.ts';
import { keyringUnsupported, startPrivateKeyring, type PrivateKeyring } from './helpers/keyring.ts';

const SERVICE = 'mcp-oauth';

interface SecretEntry {
  account: string;
  secret: string;
}

/** Every item of our service in the Secret Service: accounts from `search`, secrets by `lookup`. */
function keychainEntries(keyring: PrivateKeyring): SecretEntry[] {
  // secret-tool prints each item's attributes on stderr (its label and secret on stdout); with
  // no match it prints nothing.
  const search = keyring.secretTool(['search', '--all', 'service', SERVICE]);
  const accounts = [...(search.stderr ?? '').matchAll(/^attribute\.username = (.*)$/gm)].map((m) => m[1]);
  return accounts.map((account) => {
    const lookup = keyring.secretTool(['lookup', 'service', SERVICE, 'username', account]);
    assert.equal(lookup.status, 0, `secret-tool lookup ${account}: ${lookup.stderr}`);
    return { account, secret: lookup.stdout };
  });
}

/** The stored credentials (not client registrations, not probe entries), parsed. */
function storedCredentials(keyring: PrivateKeyring): Array<Record<string, any>> {
  return keychainEntries(keyring)
    .filter((e) => !e.account.startsWith('registration|') && !e.account.startsWith('probe|'))
    .map((e) => JSON.parse(e.secret));
}

const unsupported = keyringUnsupported();

// The two suites are independent (own sandbox, own homes) and mostly wait: run them side by side.
describe('OS keychain end to end', { concurrency: true }, () => {
  describe('CLI end to end with the Secret Service (MCP_OAUTH_STORE=auto)', { skip: unsupported, timeout: 60_000, concurrency: 1 }, () => {
    let keyring: PrivateKeyring;
    let sandbox: Sandbox;
    let home: TestHome;
    let env: NodeJS.ProcessEnv;

    before(async () => {
      keyring = await startPrivateKeyring();
      // 8 s tokens: short enough to wait for one to expire, long enough (the refresh margin is
      // capped at a quarter of the lifetime) that the next command normally still uses it.
      sandbox = await startSandbox({ accessTokenTtlSeconds: 8 });
      home = await makeHome();
      env = { ...home.env, MCP_OAUTH_STORE: 'auto', DBUS_SESSION_BUS_ADDRESS: keyring.busAddress };
    });

    after(async () => {
      await sandbox?.close();
      await home?.cleanup();
      await keyring?.stop();
    });

    it('login puts the credential in the Secret Service and writes no credentials file', async () => {
      const r = await runCli(['login', sandbox.mcpUrl, '--json'], { env });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);

      const stored = storedCredentials(keyring);
      assert.equal(stored.length, 1, 'one credential entry under service mcp-oauth');
      const [credential] = stored;
      assert.equal(credential.key.issuer, sandbox.issuer);
      assert.equal(credential.key.resource, sandbox.mcpUrl);
      assert.equal(typeof credential.accessToken, 'string');
      assert.equal(typeof credential.refreshToken, 'string', 'offline_access gave a refresh token');
      // The CLI reports a fingerprint of the token it stored, never the token.
      assert.equal(out.access_token_fingerprint, fingerprint(credential.accessToken));
      for (const secret of [credential.accessToken, credential.refreshToken]) {
        assert.ok(!(r.stdout + r.stderr).includes(secret), 'a token appeared in CLI output');
      }
      assert.ok(keychainEntries(keyring).some((e) => e.account.startsWith('registration|')), 'the DCR registration is in the keychain too');
      assert.equal(existsSync(join(home.home, 'credentials.json')), false, 'no credentials file next to a keychain store');
      assert.deepEqual(keychainEntries(keyring).filter((e) => e.account.startsWith('probe|')), [], 'the probe entry is deleted');
    });

    it('call in a new process uses the credential from the keychain (no new sign-in)', async () => {
      const launches = await browserLaunches(home.browserLog);
      const r = await runCli(['call', sandbox.mcpUrl, 'echo', '{"text":"from the keychain"}'], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'from the keychain');
      assert.equal(await browserLaunches(home.browserLog), launches, 'no browser was opened: the token came from the keychain');
      assert.equal(sandbox.counters.tokenRequests.authorization_code, 1, 'only the login exchanged a code');
      assert.equal(existsSync(join(home.home, 'credentials.json')), false);
    });

    it('a refresh replaces the tokens in the keychain entry', async () => {
      const [before] = storedCredentials(keyring);
      // Wait until the stored token has expired for sure: the next call must refresh first.
      const wait = before.expiresAt - Date.now() + 200;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const refreshesBefore = sandbox.counters.tokenRequests.refresh_token ?? 0;

      const r = await runCli(['call', sandbox.mcpUrl, 'whoami'], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sandbox.counters.tokenRequests.refresh_token, refreshesBefore + 1, 'exactly one refresh');

      const stored = storedCredentials(keyring);
      assert.equal(stored.length, 1);
      const [afterRefresh] = stored;
      assert.notEqual(afterRefresh.accessToken, before.accessToken, 'the keychain holds the new access token');
      assert.notEqual(afterRefresh.refreshToken, before.refreshToken, 'and the rotated refresh token');
      assert.ok(afterRefresh.expiresAt > before.expiresAt);
      // The server saw the refreshed token, the one now in the keychain: its expiry (server clock,
      // seconds) matches the stored one (our clock at receipt, ms) to within a second or two.
      const seenExp = JSON.parse(r.stdout).exp;
      assert.ok(seenExp > before.expiresAt / 1000, 'the server saw a new token, not the expired one');
      assert.ok(Math.abs(seenExp - afterRefresh.expiresAt / 1000) <= 2, `server exp ${seenExp} vs stored ${afterRefresh.expiresAt}`);
      assert.equal(existsSync(join(home.home, 'credentials.json')), false);
    });

    it('logout removes the entry from the Secret Service', async () => {
      const r = await runCli(['logout', sandbox.mcpUrl], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(storedCredentials(keyring), [], 'no credential entry left');
      const after = await runCli(['call', sandbox.mcpUrl, 'echo', '{"text":"x"}', '--no-browser'], { env, input: '' });
      assert.equal(after.code, 4, `signed out, so sign-in is required: ${after.stderr}`);
    });
  });

  describe('CLI without a D-Bus session', { skip: process.platform !== 'linux' && 'the Secret Service fallback is Linux behaviour', timeout: 30_000, concurrency: 1 }, () => {
    let sandbox: Sandbox;
    const homes: TestHome[] = [];

    before(async () => {
      sandbox = await startSandbox();
    });

    after(async () => {
      await sandbox?.close();
      for (const h of homes) await h.cleanup();
    });

    it('MCP_OAUTH_STORE=auto falls back to a 0600 credentials file in a 0700 dir', async () => {
      const home = await makeHome({ MCP_OAUTH_STORE: 'auto' });
      homes.push(home);
      assert.equal(home.env.DBUS_SESSION_BUS_ADDRESS, undefined);
      const r = await runCli(['login', sandbox.mcpUrl], { env: home.env });
      assert.equal(r.code, 0, r.stderr);
      const file = join(home.home, 'credentials.json');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.equal((await stat(home.home)).mode & 0o777, 0o700);
      assert.ok((await readdir(home.home)).includes('credentials.json'));
      const call = await runCli(['call', sandbox.mcpUrl, 'echo', '{"text":"from the file"}'], { env: home.env });
      assert.equal(call.code, 0, call.stderr);
      assert.equal(call.stdout.trim(), 'from the file');
    });

    it('MCP_OAUTH_STORE=keychain fails with exit code 7 and says why and what to do', async () => {
      const home = await makeHome({ MCP_OAUTH_STORE: 'keychain' });
      homes.push(home);
      const authorizeBefore = sandbox.counters.authorizeRequests.length;
      const r = await runCli(['login', sandbox.mcpUrl], { env: home.env });
      assert.equal(r.code, 7, r.stderr);
      assert.match(r.stderr, /keychain/i);
      assert.match(r.stderr, /D-Bus|DBUS_SESSION_BUS_ADDRESS/, 'names the missing session bus');
      assert.match(r.stderr, /MCP_OAUTH_STORE=file/, 'names the way out');
      assert.equal(existsSync(join(home.home, 'credentials.json')), false, 'never silently falls back to a file');
      assert.equal(sandbox.counters.authorizeRequests.length, authorizeBefore, 'no sign-in was started');
      assert.equal(await browserLaunches(home.browserLog), 0, 'no browser was opened');
    });
  });
});
