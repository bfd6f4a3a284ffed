import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { McpOAuthError } from '../src/errors.ts';
import { credentialId } from '../src/store/credential-id.ts';
import { FileCredentialStore } from '../src/store/file-store.ts';
import { lockPathFor, withFileLock } from '../src/store/lock.ts';
import { MemoryCredentialStore } from '../src/store/memory-store.ts';
import { openCredentialStore } from '../src/store/open-store.ts';
import type { ClientRegistration, Credential, CredentialKey, CredentialStore } from '../src/types.ts';

const posix = process.platform !== 'win32';
let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mcp-oauth-store-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
let counter = 0;
const freshDir = () => join(root, `s${++counter}`);

function key(serverName: string, resource = 'https://mcp.example.com/mcp', issuer = 'https://as.example.com'): CredentialKey {
  return { serverName, resource, issuer };
}

function credential(k: CredentialKey, accessToken = `at-${k.serverName}`): Credential {
  return {
    key: k,
    accessToken,
    refreshToken: `rt-${k.serverName}`,
    tokenType: 'Bearer',
    expiresAt: 1_900_000_000_000,
    scopes: ['read'],
    clientId: 'client-1',
    tokenEndpoint: `${k.issuer}/token`,
    tokenEndpointAuthMethod: 'none',
    obtainedAt: 1_800_000_000_000,
  };
}

function registration(issuer: string, redirectUri = 'http://127.0.0.1:8765/callback'): ClientRegistration {
  return {
    issuer,
    clientId: `client-for-${issuer}`,
    tokenEndpointAuthMethod: 'none',
    redirectUris: [redirectUri],
    source: 'dynamic_registration',
    registeredAt: 1_800_000_000_000,
  };
}

/** The CredentialStore contract, run against every implementation that works in-process. */
function contract(name: string, open: () => Promise<CredentialStore>): void {
  describe(`${name}: CredentialStore contract`, () => {
    it('put/get/list/delete; same URL under two names are two credentials', async () => {
      const store = await open();
      const a = key('notion-work');
      const b = key('notion-home');
      assert.equal(await store.get(a), undefined);
      await store.put(credential(a));
      await store.put(credential(b));
      assert.deepEqual(await store.get(a), credential(a));
      assert.deepEqual(await store.get(b), credential(b));
      assert.equal(await store.get(key('notion-work', undefined, 'https://other-as.example')), undefined, 'issuer is part of the key');
      await store.put(credential(a, 'at-rotated'));
      assert.equal((await store.get(a))?.accessToken, 'at-rotated');
      assert.equal((await store.get(b))?.accessToken, 'at-notion-home');
      assert.deepEqual((await store.list()).map((c) => c.key.serverName).sort(), ['notion-home', 'notion-work']);
      await store.delete(a);
      assert.equal(await store.get(a), undefined);
      assert.deepEqual((await store.list()).map((c) => c.key.serverName), ['notion-home']);
    });

    it('registrations are kept per issuer and can require a redirect URI', async () => {
      const store = await open();
      await store.putRegistration(registration('https://as1.example'));
      await store.putRegistration(registration('https://as2.example', 'http://127.0.0.1:9999/callback'));
      assert.equal((await store.getRegistration('https://as1.example'))?.clientId, 'client-for-https://as1.example');
      assert.equal((await store.getRegistration('https://as2.example'))?.clientId, 'client-for-https://as2.example');
      assert.ok(await store.getRegistration('https://as1.example', 'http://127.0.0.1:8765/callback'));
      assert.equal(await store.getRegistration('https://as1.example', 'http://127.0.0.1:1111/callback'), undefined);
      await store.deleteRegistration('https://as1.example');
      assert.equal(await store.getRegistration('https://as1.example'), undefined);
      assert.ok(await store.getRegistration('https://as2.example'));
      assert.deepEqual(await store.list(), [], 'registrations are not credentials');
    });

    it('withLock serializes tasks in this process and is released when fn throws', async () => {
      const store = await open();
      const k = key('locked');
      const events: string[] = [];
      const task = (id: string) =>
        store.withLock(k, async () => {
          events.push(`start ${id}`);
          await new Promise((r) => setTimeout(r, 15));
          events.push(`end ${id}`);
          return id;
        });
      assert.deepEqual(await Promise.all([task('1'), task('2'), task('3')]), ['1', '2', '3']);
      assert.deepEqual(events, ['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
      await assert.rejects(store.withLock(k, async () => { throw new Error('boom'); }), /boom/);
      assert.equal(await store.withLock(k, async () => 'after'), 'after');
    });
  });
}

contract('memory', async () => new MemoryCredentialStore());
contract('file', async () => new FileCredentialStore(freshDir()));

describe('MemoryCredentialStore', () => {
  it('copies values in and out', async () => {
    const store = new MemoryCredentialStore();
    const c = credential(key('a'));
    await store.put(c);
    c.accessToken = 'mutated';
    const got = await store.get(key('a'));
    assert.equal(got?.accessToken, 'at-a');
    got!.scopes.push('x');
    assert.deepEqual((await store.get(key('a')))?.scopes, ['read']);
  });
});

describe('FileCredentialStore on disk', () => {
  it('credentials.json is 0600 in a 0700 dir, written atomically, in the documented format', { skip: !posix }, async () => {
    const dir = freshDir();
    const store = new FileCredentialStore(dir);
    await store.put(credential(key('a')));
    await store.putRegistration(registration('https://as.example.com'));
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, 'credentials.json'))).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(dir)).filter((f) => f !== 'locks').sort(), ['credentials.json'], 'no temp files left');
    const data = JSON.parse(await readFile(join(dir, 'credentials.json'), 'utf8'));
    assert.equal(data.version, 1);
    assert.deepEqual(Object.keys(data.credentials), [credentialId(key('a'))]);
    assert.deepEqual(Object.keys(data.registrations), ['https://as.example.com']);
  });

  it('tightens an existing group-readable dir and file', { skip: !posix }, async () => {
    const dir = freshDir();
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    const store = new FileCredentialStore(dir);
    await store.put(credential(key('a')));
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await chmod(store.file, 0o644);
    await store.get(key('a'));
    assert.equal((await stat(store.file)).mode & 0o777, 0o600);
  });

  it('re-reads the file on every get (another process may have written it)', async () => {
    const dir = freshDir();
    const one = new FileCredentialStore(dir);
    const two = new FileCredentialStore(dir);
    await one.put(credential(key('a')));
    assert.equal((await two.get(key('a')))?.accessToken, 'at-a');
    await two.put(credential(key('a'), 'at-from-two'));
    assert.equal((await one.get(key('a')))?.accessToken, 'at-from-two');
  });

  it('a corrupt file is a store_error naming the file, never quoting it', async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'credentials.json'), '{"version":1,"credentials":{"x":{"accessToken":"leaky-secret-token"');
    const store = new FileCredentialStore(dir);
    await assert.rejects(store.get(key('a')), (e: unknown) => {
      assert.ok(e instanceof McpOAuthError);
      assert.equal(e.code, 'store_error');
      assert.match(e.message, /credentials\.json/);
      assert.match(e.hint ?? '', /mcp-oauth login/);
      assert.doesNotMatch(`${e.message} ${e.hint}`, /leaky/);
      return true;
    });
    await assert.rejects(store.put(credential(key('a'))), { code: 'store_error' });
    await writeFile(join(dir, 'credentials.json'), '{"version":2,"credentials":{},"registrations":{}}');
    await assert.rejects(store.get(key('a')), /newer mcp-oauth/);
  });
});

const storeUrl = pathToFileURL(join(import.meta.dirname, '../src/store/file-store.ts')).href;
const lockUrl = pathToFileURL(join(import.meta.dirname, '../src/store/lock.ts')).href;

function runChild(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`child exited ${code}: ${stderr}`))));
  });
}

describe('across processes', () => {
  it('4 processes writing 25 credentials each into one file lose nothing', async () => {
    const dir = freshDir();
    const workers = [0, 1, 2, 3].map((w) =>
      runChild(`
        const { FileCredentialStore } = await import(${JSON.stringify(storeUrl)});
        const store = new FileCredentialStore(${JSON.stringify(dir)});
        for (let i = 0; i < 25; i++) {
          const key = { serverName: 'w${w}-' + i, resource: 'https://mcp.example.com/mcp', issuer: 'https://as.example.com' };
          await store.put({ key, accessToken: 'at', tokenType: 'Bearer', scopes: [], clientId: 'c', tokenEndpoint: 'https://as.example.com/token', tokenEndpointAuthMethod: 'none', obtainedAt: 0 });
        }
      `),
    );
    await Promise.all(workers);
    const names = (await new FileCredentialStore(dir).list()).map((c) => c.key.serverName);
    assert.equal(names.length, 100);
    for (let w = 0; w < 4; w++) for (let i = 0; i < 25; i++) assert.ok(names.includes(`w${w}-${i}`), `w${w}-${i} present`);
  });

  it('withLock excludes other processes: start/end markers never interleave', async () => {
    const dir = freshDir();
    const log = join(dir, 'log.txt');
    await mkdir(dir, { recursive: true });
    await writeFile(log, '');
    const workers = [0, 1, 2, 3].map((w) =>
      runChild(`
        const { appendFile } = await import('node:fs/promises');
        const { FileCredentialStore } = await import(${JSON.stringify(storeUrl)});
        const store = new FileCredentialStore(${JSON.stringify(dir)});
        const key = { serverName: 'shared', resource: 'https://mcp.example.com/mcp', issuer: 'https://as.example.com' };
        for (let i = 0; i < 5; i++) {
          await store.withLock(key, async () => {
            await appendFile(${JSON.stringify(log)}, 'start ${w}\\n');
            await new Promise((r) => setTimeout(r, 10));
            await appendFile(${JSON.stringify(log)}, 'end ${w}\\n');
          });
        }
      `),
    );
    await Promise.all(workers);
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    assert.equal(lines.length, 40);
    for (let i = 0; i < lines.length; i += 2) {
      const [kind, who] = lines[i].split(' ');
      assert.equal(kind, 'start', `line ${i + 1}: ${lines[i]}`);
      assert.equal(lines[i + 1], `end ${who}`, `line ${i + 2} closes the section opened at line ${i + 1}`);
    }
  });

  it('the lock is released when fn throws: another process can take it at once', async () => {
    const dir = freshDir();
    const lockDir = join(dir, 'locks');
    await assert.rejects(withFileLock(lockDir, 'k', async () => { throw new Error('inside'); }), /inside/);
    await assert.rejects(stat(`${lockPathFor(lockDir, 'k')}.lock`), { code: 'ENOENT' });
    // A child with no retry budget to spare would fail if the lock were still held (stale is 10 s).
    await runChild(`
      const { withFileLock } = await import(${JSON.stringify(lockUrl)});
      const got = await withFileLock(${JSON.stringify(lockDir)}, 'k', async () => 'ok');
      if (got !== 'ok') process.exit(3);
    `);
  });

  it('lock file names are hashes (no URL or name in the path)', () => {
    const p = lockPathFor('/x/locks', credentialId(key('notion')));
    assert.match(p, /^\/x\/locks\/[0-9a-f]{16}$/);
  });
});

describe('openCredentialStore', () => {
  it('memory and file modes; auto falls back to the file store without a session bus', async () => {
    assert.equal((await openCredentialStore({ home: freshDir(), mode: 'memory' })).kind, 'memory');
    assert.equal((await openCredentialStore({ home: freshDir(), mode: 'file' })).kind, 'file');
    if (process.platform === 'linux') {
      const debug: string[] = [];
      const logger = { error() {}, warn() {}, info() {}, debug: (m: string) => debug.push(m) };
      const store = await openCredentialStore({ home: freshDir(), mode: 'auto', env: {}, logger });
      assert.equal(store.kind, 'file');
      assert.match(debug.join('\n'), /file/);
      await assert.rejects(openCredentialStore({ home: freshDir(), mode: 'keychain', env: {} }), { code: 'keychain_unavailable' });
    }
  });
});
