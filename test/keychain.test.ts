/**
 * The keychain store against a real Secret Service: a private D-Bus session bus plus
 * gnome-keyring-daemon with a fresh login keyring in a temp dir (nothing of the user's is touched).
 *
 * Needs the binaries dbus-daemon, gnome-keyring-daemon and secret-tool
 * (Debian/Ubuntu: apt-get install -y dbus gnome-keyring libsecret-tools). Linux only. Without them
 * the test is skipped, except under CI (CI set), where it fails so the coverage cannot silently go.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { credentialId } from '../src/store/credential-id.ts';

const REQUIRED = ['dbus-daemon', 'gnome-keyring-daemon', 'secret-tool'];
const missing = REQUIRED.filter((bin) => !(process.env.PATH ?? '').split(delimiter).some((dir) => existsSync(join(dir, bin))));
const unsupported =
  process.platform !== 'linux'
    ? 'the Secret Service test runs on Linux only'
    : missing.length
      ? `missing ${missing.join(', ')} (apt-get install -y dbus gnome-keyring libsecret-tools)`
      : undefined;
if (unsupported && process.platform === 'linux' && process.env.CI) {
  throw new Error(`keychain test cannot run under CI: ${unsupported}`);
}

const openStoreUrl = pathToFileURL(join(import.meta.dirname, '../src/store/open-store.ts')).href;
const KEY = { serverName: 'notion', resource: 'https://mcp.notion.com/mcp', issuer: 'https://auth.notion.example' };
const ACCOUNT = credentialId(KEY);

interface Bus {
  address: string;
  process: ChildProcess;
}

let dir: string;
const daemons: ChildProcess[] = [];
let sessionEnv: NodeJS.ProcessEnv;

/** A session bus with no service activation, so nothing but our daemon can own org.freedesktop.secrets. */
async function startBus(name: string): Promise<Bus> {
  const socket = join(dir, `${name}.sock`);
  const config = join(dir, `${name}.conf`);
  await writeFile(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`,
  );
  const bus = spawn('dbus-daemon', [`--config-file=${config}`, '--nofork', '--print-address=1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  daemons.push(bus);
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('dbus-daemon did not start')), 10_000);
    bus.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.split('\n')[0].trim());
      }
    });
    bus.on('exit', (code) => reject(new Error(`dbus-daemon exited ${code}`)));
  });
  return { address, process: bus };
}

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
    dir = await mkdtemp(join(tmpdir(), 'mcp-oauth-keychain-'));
    for (const sub of ['home', 'data', 'runtime']) await mkdir(join(dir, sub), { mode: 0o700 });
    const bus = await startBus('bus');
    sessionEnv = {
      PATH: process.env.PATH,
      HOME: join(dir, 'home'),
      XDG_DATA_HOME: join(dir, 'data'),
      XDG_RUNTIME_DIR: join(dir, 'runtime'),
      DBUS_SESSION_BUS_ADDRESS: bus.address,
    };
    // --unlock reads the login keyring password from stdin and creates the keyring when it does
    // not exist yet. It must be non-empty: with an empty one no login collection is created.
    const keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
      env: sessionEnv,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    daemons.push(keyring);
    keyring.stdin!.end('test-password');
    // Ready when the login collection accepts an item (the daemon owns the name and unlocked it).
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = run('secret-tool', ['store', '--label=ready', 'service', 'mcp-oauth-test', 'username', 'ready'], sessionEnv, 'x');
      if (r.status === 0) break;
      if (Date.now() > deadline) throw new Error(`gnome-keyring-daemon did not become ready: ${r.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  after(async () => {
    for (const d of daemons.reverse()) {
      if (d.exitCode === null && d.signalCode === null) {
        const exited = new Promise((resolve) => d.once('exit', resolve));
        d.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 3_000)))]);
        clearTimeout(timer);
        if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
      }
    }
    if (dir) await rm(dir, { recursive: true, force: true });
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
    const empty = await startBus('empty');
    const env = { ...sessionEnv, DBUS_SESSION_BUS_ADDRESS: empty.address };
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
