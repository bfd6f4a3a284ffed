/**
 * The Redis store's encryption key (src/store/redis-key.ts) and `mcp-oauth store-key`: the three
 * sources (MCP_OAUTH_REDIS_KEY > [settings] redis_key_file > the OS keychain, never Redis), the
 * error naming all three when none is set, and create / import / export / status through the real
 * CLI. The keychain source runs against a real Secret Service (private D-Bus + gnome-keyring), and
 * a Redis store opened with the keychain's key shares credentials with a host given that key by
 * `export`. No key bytes may reach stderr; `export` prints the key on stdout and nothing else.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { McpOAuthError } from '../src/errors.ts';
import { loadRedisKey, parseRedisKey, osKeychainSlot } from '../src/store/redis-key.ts';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { makeHome, runCli, writeConfig, type CliResult, type TestHome } from './helpers/e2e.ts';
import { keyringUnsupported, startPrivateKeyring, type PrivateKeyring } from './helpers/keyring.ts';
import { anyRedisServer, startRedisServer, type RedisServer } from './helpers/redis-server.ts';

const b64 = (fill: number) => Buffer.alloc(32, fill).toString('base64');
const idOf = (text: string) => parseRedisKey(text, 'test').id;

async function rejectsWith(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<McpOAuthError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof McpOAuthError, String(e));
    assert.equal(e.code, code, e.message);
    for (const re of patterns) assert.match(`${e.message}\nnext: ${e.hint}`, re);
    return e;
  }
  assert.fail(`expected ${code}`);
}

/** A CLI run that succeeded and printed no key bytes (base64 or raw) on stderr. */
function clean(r: CliResult, what: string, ...keys: string[]): CliResult {
  assert.equal(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  for (const k of keys) {
    assert.ok(!r.stderr.includes(k), `${what}: the key appeared on stderr`);
    assert.ok(!r.stderr.includes(Buffer.from(k, 'base64').toString('hex')), `${what}: the key (hex) appeared on stderr`);
  }
  return r;
}

describe('key sources without a keychain', () => {
  let h: TestHome;
  before(async () => {
    h = await makeHome();
  });
  after(async () => h?.cleanup());

  test('env > file; a key of the wrong size and a missing configured file are config errors', async () => {
    const file = join(h.home, '..', 'k1');
    await writeFile(file, b64(1) + '\n');
    const env = { MCP_OAUTH_REDIS_KEY: b64(2) };
    assert.deepEqual((await loadRedisKey({ env: {}, keyFile: file })).source, { kind: 'file', path: file });
    assert.equal((await loadRedisKey({ env: {}, keyFile: file })).id, idOf(b64(1)));
    const both = await loadRedisKey({ env, keyFile: file });
    assert.equal(both.id, idOf(b64(2)));
    assert.deepEqual(both.source, { kind: 'env', variable: 'MCP_OAUTH_REDIS_KEY' });
    // 32 raw bytes in a file are a key too.
    await writeFile(file, Buffer.alloc(32, 3));
    assert.equal((await loadRedisKey({ env: {}, keyFile: file })).id, idOf(b64(3)));

    await rejectsWith(loadRedisKey({ env: { MCP_OAUTH_REDIS_KEY: Buffer.alloc(16).toString('base64') } }), 'config_invalid', /32 bytes/);
    const missing = join(h.home, 'nope.key');
    // A configured file that is missing never falls through to the keychain.
    await rejectsWith(loadRedisKey({ env: {}, keyFile: missing }), 'config_invalid', new RegExp(`${missing}.*does not exist`), /store-key create --file/);
  });

  test('no key anywhere: the error names all three sources and the command that creates one', async () => {
    // No D-Bus session bus: there is no Secret Service to ask, which is "absent", not a failure.
    const e = await rejectsWith(loadRedisKey({ env: {} }), 'config_invalid', /MCP_OAUTH_REDIS_KEY/, /redis_key_file/, /OS keychain/, /mcp-oauth store-key create/);
    assert.match(e.message, /no D-Bus session bus/);
    assert.equal(e.exitCode, 3);
  });

  test('store-key create --file, refusal to overwrite, --force, export, import, status', async () => {
    const file = join(h.home, 'keys', 'redis.key');
    const created = clean(await runCli(['store-key', 'create', '--file', file, '--json'], { env: h.env }), 'create');
    const text = (await readFile(file, 'utf8')).trim();
    assert.equal(Buffer.from(text, 'base64').length, 32);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(h.home, 'keys'))).mode & 0o777, 0o700, 'a directory it creates is owner-only');
    const out = JSON.parse(created.stdout);
    assert.equal(out.action, 'created');
    assert.equal(out.key_id, idOf(text));
    assert.deepEqual(out.source, { kind: 'file', path: file });
    assert.ok(!created.stdout.includes(text) && !created.stderr.includes(text), 'create does not print the key');
    assert.match(out.notes.join(' '), /redis_key_file = ".*redis\.key" under \[settings\]/, 'says how to configure the file');

    const again = await runCli(['store-key', 'create', '--file', file], { env: h.env });
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, new RegExp(`already holds a Redis store key \\(id ${idOf(text)}\\)`));
    assert.match(again.stderr, /--force/);
    assert.equal((await readFile(file, 'utf8')).trim(), text, 'the existing key is kept');

    clean(await runCli(['store-key', 'create', '--file', file, '--force'], { env: h.env }), 'create --force', text);
    const replaced = (await readFile(file, 'utf8')).trim();
    assert.notEqual(replaced, text);

    // export reads where the store reads: the configured file.
    await writeConfig(h.home, `[settings]\nredis_key_file = "keys/redis.key"\n`);
    const exported = clean(await runCli(['store-key', 'export'], { env: h.env }), 'export', replaced);
    assert.equal(exported.stdout, `${replaced}\n`, 'stdout is the key and nothing else');
    assert.equal(exported.stderr, '');
    const exportedJson = JSON.parse(clean(await runCli(['store-key', 'export', '--json'], { env: h.env }), 'export --json', replaced).stdout);
    assert.equal(exportedJson.key, replaced);
    assert.deepEqual(exportedJson.source, { kind: 'file', path: file });

    // import: the key from stdin into another file (as on a second host), never from argv.
    const other = join(h.home, 'other.key');
    const imported = clean(await runCli(['store-key', 'import', '--file', other], { env: h.env, input: exported.stdout }), 'import', replaced);
    assert.ok(!imported.stdout.includes(replaced));
    assert.equal((await readFile(other, 'utf8')).trim(), replaced);
    const bad = await runCli(['store-key', 'import', '--file', join(h.home, 'bad.key')], { env: h.env, input: 'not-a-key\n' });
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stderr, /stdin is not 32 bytes of base64/);

    // status: the source in use and the key id, never the key; env > file.
    const st = JSON.parse(clean(await runCli(['store-key', 'status', '--json'], { env: h.env }), 'status', replaced).stdout);
    assert.equal(st.key_id, idOf(replaced));
    assert.equal(st.source.kind, 'file');
    assert.ok(!JSON.stringify(st).includes(replaced));
    const withEnv = JSON.parse(clean(await runCli(['store-key', 'status', '--json'], { env: { ...h.env, MCP_OAUTH_REDIS_KEY: b64(9) } }), 'status (env)').stdout);
    assert.equal(withEnv.key_id, idOf(b64(9)));
    assert.deepEqual(withEnv.source, { kind: 'env', variable: 'MCP_OAUTH_REDIS_KEY' });
    assert.deepEqual(withEnv.sources.map((s: { state: string }) => s.state), ['present', 'present', 'absent']);
    const human = clean(await runCli(['store-key', 'status'], { env: { ...h.env, MCP_OAUTH_REDIS_KEY: b64(9) } }), 'status (human)', b64(9));
    assert.match(human.stdout, new RegExp(`Redis store key ${idOf(b64(9))}, from the environment variable MCP_OAUTH_REDIS_KEY`));
    assert.match(human.stdout, /another source holds a different key/);
  });

  test('store-key export with no key: exit 3 naming the three sources and store-key create', async () => {
    const bare = await makeHome();
    try {
      const r = await runCli(['store-key', 'export'], { env: bare.env });
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout, '');
      for (const re of [/MCP_OAUTH_REDIS_KEY/, /redis_key_file/, /OS keychain/, /mcp-oauth store-key create/]) assert.match(r.stderr, re);
      const usage = await runCli(['store-key', 'create', '--keychain', '--file', 'x'], { env: bare.env });
      assert.equal(usage.code, 2, usage.stderr);
    } finally {
      await bare.cleanup();
    }
  });
});

const unsupported = keyringUnsupported();
const redisServer = anyRedisServer();

describe('the key in the OS keychain (real Secret Service)', { skip: unsupported, timeout: 120_000 }, () => {
  let keyring: PrivateKeyring;
  let h: TestHome;
  let env: NodeJS.ProcessEnv;
  const lookup = () => keyring.secretTool(['lookup', 'service', 'mcp-oauth', 'username', 'redis-encryption-key']);

  before(async () => {
    keyring = await startPrivateKeyring();
    h = await makeHome();
    env = { ...h.env, DBUS_SESSION_BUS_ADDRESS: keyring.busAddress };
  });
  after(async () => {
    await h?.cleanup();
    await keyring?.stop();
  });

  test('create puts a new key in the keychain (the default place), export prints it, create refuses to replace it', async () => {
    assert.notEqual(lookup().status, 0, 'no key yet');
    const created = clean(await runCli(['store-key', 'create'], { env }), 'create');
    const stored = lookup();
    assert.equal(stored.status, 0, stored.stderr);
    const key = stored.stdout.trim();
    assert.equal(Buffer.from(key, 'base64').length, 32);
    assert.ok(!created.stdout.includes(key) && !created.stderr.includes(key), 'create does not print the key');
    assert.match(created.stdout, new RegExp(`id ${idOf(key)}\\) in the OS keychain \\(service mcp-oauth, account redis-encryption-key\\)`));

    const exported = clean(await runCli(['store-key', 'export'], { env }), 'export', key);
    assert.equal(exported.stdout, `${key}\n`);
    assert.equal(exported.stderr, '');

    const again = await runCli(['store-key', 'create'], { env });
    assert.equal(again.code, 2, again.stderr);
    assert.equal(lookup().stdout.trim(), key, 'the keychain still holds the first key');

    // Imported from elsewhere (as on a second host), replacing it only with --force.
    const refused = await runCli(['store-key', 'import'], { env, input: b64(7) });
    assert.equal(refused.code, 2, refused.stderr);
    clean(await runCli(['store-key', 'import', '--keychain', '--force'], { env, input: `${b64(7)}\n` }), 'import --force', b64(7));
    assert.equal(lookup().stdout.trim(), b64(7));
    clean(await runCli(['store-key', 'import', '--keychain', '--force'], { env, input: key }), 'import back', key);
  });

  test('precedence: the keychain is used last, after MCP_OAUTH_REDIS_KEY and redis_key_file', async () => {
    const key = lookup().stdout.trim();
    const status = async (extra: NodeJS.ProcessEnv = {}) => JSON.parse(clean(await runCli(['store-key', 'status', '--json'], { env: { ...env, ...extra } }), 'status', key).stdout);
    const onlyKeychain = await status();
    assert.equal(onlyKeychain.source.kind, 'keychain');
    assert.equal(onlyKeychain.key_id, idOf(key));

    await writeConfig(h.home, `[settings]\nredis_key_file = "file.key"\n`);
    await writeFile(join(h.home, 'file.key'), b64(4) + '\n', { mode: 0o600 });
    const withFile = await status();
    assert.equal(withFile.source.kind, 'file');
    assert.equal(withFile.key_id, idOf(b64(4)));
    assert.deepEqual(withFile.sources.map((s: { state: string }) => s.state), ['absent', 'present', 'present']);

    const withEnv = await status({ MCP_OAUTH_REDIS_KEY: b64(5) });
    assert.equal(withEnv.source.kind, 'env');
    assert.equal(withEnv.key_id, idOf(b64(5)));
    await writeConfig(h.home, '');

    // The same order in-process (the keyring library reads the bus address from process.env).
    const saved = process.env.DBUS_SESSION_BUS_ADDRESS;
    process.env.DBUS_SESSION_BUS_ADDRESS = keyring.busAddress;
    try {
      const fromKeychain = await loadRedisKey({ env: { DBUS_SESSION_BUS_ADDRESS: keyring.busAddress } });
      assert.equal(fromKeychain.id, idOf(key));
      assert.equal(fromKeychain.source.kind, 'keychain');
      const slot = osKeychainSlot({ DBUS_SESSION_BUS_ADDRESS: keyring.busAddress }, 'redis-encryption-key-test');
      assert.deepEqual(await slot.read(), { absent: 'no such entry' });
      await slot.write(b64(6));
      assert.deepEqual(await slot.read(), { value: b64(6) });
      assert.equal((await loadRedisKey({ env: { DBUS_SESSION_BUS_ADDRESS: keyring.busAddress }, keyFile: join(h.home, 'file.key') })).id, idOf(b64(4)));
    } finally {
      if (saved === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
      else process.env.DBUS_SESSION_BUS_ADDRESS = saved;
    }
  });

  describe('a Redis store opened with the keychain key', { skip: redisServer.skip }, () => {
    let redis: RedisServer;
    let sandbox: Sandbox;
    let other: TestHome;
    before(async () => {
      redis = await startRedisServer(redisServer.binary);
      sandbox = await startSandbox();
      other = await makeHome();
    });
    after(async () => {
      await sandbox?.close();
      await redis?.close();
      await other?.cleanup();
    });

    test('signs in with the keychain key; a host given that key by export shares the credential; another key cannot read it', async () => {
      const key = lookup().stdout.trim();
      const redisEnv = { MCP_OAUTH_STORE: 'redis', MCP_OAUTH_REDIS_URL: redis.url };
      const here = { ...env, ...redisEnv };
      await writeConfig(h.home, `[mcp_servers.shared]\nurl = "${sandbox.mcpUrl}"\n`);
      await writeConfig(other.home, `[mcp_servers.shared]\nurl = "${sandbox.mcpUrl}"\n`);
      clean(await runCli(['login', 'shared'], { env: here }), 'login with the keychain key', key);
      const call = clean(await runCli(['call', 'shared', 'echo', '{"text":"here"}'], { env: here }), 'call', key);
      assert.equal(call.stdout.trim(), 'here');

      // Another host: no keychain at all, the key exported from this one in its environment.
      const exported = clean(await runCli(['store-key', 'export'], { env: here }), 'export').stdout.trim();
      sandbox.resetCounters();
      const there = clean(await runCli(['call', 'shared', 'echo', '{"text":"there"}'], { env: { ...other.env, ...redisEnv, MCP_OAUTH_REDIS_KEY: exported } }), 'call there', key);
      assert.equal(there.stdout.trim(), 'there');
      assert.equal(sandbox.counters.tokenRequests.authorization_code, undefined, 'no second sign-in: the credential is shared');

      const wrong = await runCli(['call', 'shared', 'echo', '{"text":"x"}'], { env: { ...other.env, ...redisEnv, MCP_OAUTH_REDIS_KEY: b64(8) } });
      assert.equal(wrong.code, 7, wrong.stderr);
      assert.match(wrong.stderr, new RegExp(`encrypted with another key \\(key id ${idOf(key)}`));
    });
  });
});
