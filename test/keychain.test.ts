/**
 * The keychain store against a real Secret Service: a private D-Bus session bus plus
 * gnome-keyring-daemon with a fresh login keyring in a temp dir (nothing of the user's is touched).
 *
 * Needs the binaries dbus-daemon, gnome-keyring-daemon and secret-tool
 * (Debian/Ubuntu: apt-get install -y dbus gnome-keyring libsecret-tools). Linux only. Without them
 * the test is skipped, except under CI (CI set), where it fails so the coverage cannot silently go.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { credentialId } from '../src/store/credential-id.ts';
import { keyringUnsupported, startPrivateKeyring, type PrivateKeyring } from './helpers/keyring.ts';

const unsupported = keyringUnsupported();

const openStoreUrl = pathToFileURL(join(import.meta.dirname, '../src/store/open-store.ts')).href;
const KEY = { serverName: 'notion', resource: 'https://mcp.notion.com/mcp', issuer: 'https://auth.notion.example' };
const ACCOUNT = credentialId(KEY);

let keyring: PrivateKeyring;
let dir: string;
let sessionEnv: NodeJS.ProcessEnv;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string) {
  return spawnSync(cmd, args, { env, input, encoding: 'utf8', timeout: 20_000 });
}

/** Runs `body` in a fresh Node process (the keyring library reads DBUS_SESSION_BUS_ADDRESS there). */
function inChild(env: NodeJS.ProcessEnv, body: string): string {
  const script = `const { openCredentialStore } = await import(${JSON.stringify(openStoreUrl)});\n${body}`;
  const r = run(process.execPath, ['--input-type=module', '-e', script], env);
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return r.stdout.trim();
}

const CREDENTIAL = {
  key: KEY,
  accessToken: 'at-from-keychain-test',
  refreshToken: 'rt-from-keychain-test',
  tokenType: 'Bearer',
  scopes: ['read'],
  clientId: 'client-1',
  tokenEndpoint: 'https://auth.notion.example/token',
  tokenEndpointAuthMethod: 'none',
  obtainedAt: 1,
};

describe('KeychainCredentialStore on a real Secret Service', { skip: unsupported }, () => {
  before(async () => {
    keyring = await startPrivateKeyring();
    dir = keyring.dir;
    sessionEnv = keyring.env;
  });

  after(async () => {
    await keyring?.stop();
  });

  it('auto picks the keychain; the secret is in the Secret Service and no file is written', async () => {
    const home = join(dir, 'mcp-home');
    const kind = inChild(
      sessionEnv,
      `const store = await openCredentialStore({ home: ${JSON.stringify(home)}, mode: 'auto' });
       await store.put(${JSON.stringify(CREDENTIAL)});
       console.log(store.kind);`,
    );
    assert.equal(kind, 'keychain');

    const lookup = run('secret-tool', ['lookup', 'service', 'mcp-oauth', 'username', ACCOUNT], sessionEnv);
    assert.equal(lookup.status, 0, lookup.stderr);
    assert.deepEqual(JSON.parse(lookup.stdout), CREDENTIAL);
    assert.equal(existsSync(join(home, 'credentials.json')), false, 'no credentials file next to a keychain store');
    const leftovers = run('secret-tool', ['search', '--all', 'service', 'mcp-oauth'], sessionEnv);
    assert.doesNotMatch(leftovers.stdout + leftovers.stderr, /probe\|/, 'the probe entry is deleted');
  });

  it('another process reads, lists and deletes it; registrations are separate entries', () => {
    const home = join(dir, 'mcp-home');
    const out = inChild(
      sessionEnv,
      `const store = await openCredentialStore({ home: ${JSON.stringify(home)}, mode: 'keychain' });
       const key = ${JSON.stringify(KEY)};
       const got = await store.get(key);
       await store.putRegistration({ issuer: key.issuer, clientId: 'dcr-client', tokenEndpointAuthMethod: 'none', redirectUris: ['http://127.0.0.1:1/cb'], source: 'dynamic_registration', registeredAt: 1 });
       const listed = (await store.list()).map((c) => c.key.serverName);
       const reg = await store.getRegistration(key.issuer);
       const locked = await store.withLock(key, async () => 'locked');
       await store.delete(key);
       console.log(JSON.stringify({ token: got.accessToken, listed, reg: reg.clientId, locked, after: (await store.get(key)) ?? null }));`,
    );
    assert.deepEqual(JSON.parse(out), { token: 'at-from-keychain-test', listed: ['notion'], reg: 'dcr-client', locked: 'locked', after: null });
    assert.notEqual(run('secret-tool', ['lookup', 'service', 'mcp-oauth', 'username', ACCOUNT], sessionEnv).status, 0, 'deleted from the Secret Service');
    const reg = run('secret-tool', ['lookup', 'service', 'mcp-oauth', 'username', `registration|${KEY.issuer}`], sessionEnv);
    assert.equal(JSON.parse(reg.stdout).clientId, 'dcr-client');
  });

  it('a bus without a Secret Service: auto falls back to the file, keychain mode fails', async () => {
    const env = { ...sessionEnv, DBUS_SESSION_BUS_ADDRESS: await keyring.startEmptyBus('empty') };
    const home = join(dir, 'no-secret-service');
    const out = inChild(
      env,
      `const auto = await openCredentialStore({ home: ${JSON.stringify(home)}, mode: 'auto' });
       let forced;
       try { await openCredentialStore({ home: ${JSON.stringify(home)}, mode: 'keychain' }); forced = 'opened'; } catch (e) { forced = e.code; }
       console.log(JSON.stringify({ kind: auto.kind, forced }));`,
    );
    assert.deepEqual(JSON.parse(out), { kind: 'file', forced: 'keychain_unavailable' });
  });

  it('no session bus at all: auto falls back to a 0600 credentials file', async () => {
    const { DBUS_SESSION_BUS_ADDRESS: _unset, ...env } = sessionEnv;
    const home = join(dir, 'no-bus');
    const kind = inChild(
      env,
      `const store = await openCredentialStore({ home: ${JSON.stringify(home)}, mode: 'auto' });
       await store.put(${JSON.stringify(CREDENTIAL)});
       console.log(store.kind);`,
    );
    assert.equal(kind, 'file');
    assert.equal((await stat(join(home, 'credentials.json'))).mode & 0o777, 0o600);
    assert.equal((await stat(home)).mode & 0o777, 0o700);
    assert.deepEqual((await readdir(home)).sort(), ['credentials.json', 'locks']);
  });
});
