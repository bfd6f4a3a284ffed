import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, createSilentLogger, isSecretFieldName } from '../src/log.ts';
import { fingerprint } from '../src/secrets.ts';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let out = '';
  stream.on('data', (d) => (out += d));
  return { stream, text: () => out };
}

const NOW = Date.parse('2026-11-25T20:30:00.000Z');

test('log line format: ISO time, padded level, message, JSON fields', () => {
  const { stream, text } = capture();
  const log = createLogger({ level: 'debug', stream, now: () => NOW });
  log.info('refreshed token', { server: 'x', n: 1 });
  log.error('boom');
  assert.equal(text(), '2026-11-25T20:30:00.000Z info  refreshed token {"server":"x","n":1}\n2026-11-25T20:30:00.000Z error boom\n');
});

test('secrets from secrets() and secret-named fields never appear; their fingerprints do', () => {
  const { stream, text } = capture();
  const accessToken = 'at-0123456789-abcdef';
  const clientSecret = 'cs-very-secret-value';
  const log = createLogger({ level: 'debug', stream, secrets: () => [clientSecret, undefined] });
  log.warn(`oops the secret leaked: ${clientSecret}`, {
    access_token: accessToken,
    nested: { refreshToken: 'rt-nested-secret-1', Authorization: 'Bearer abcdefgh12345678' },
    code_verifier: 'verifier-secret-123',
    tokenEndpoint: 'https://as.example/token',
    token_type: 'Bearer',
    already: fingerprint('x'),
  });
  const out = text();
  for (const s of [accessToken, clientSecret, 'rt-nested-secret-1', 'abcdefgh12345678', 'verifier-secret-123']) {
    assert.ok(!out.includes(s), `leaked ${s}: ${out}`);
  }
  assert.ok(out.includes(fingerprint(accessToken)));
  assert.ok(out.includes(fingerprint(clientSecret)));
  assert.ok(out.includes(fingerprint('rt-nested-secret-1')));
  // Metadata about secrets stays readable.
  assert.ok(out.includes('"tokenEndpoint":"https://as.example/token"'));
  assert.ok(out.includes('"token_type":"Bearer"'));
  assert.ok(out.includes(`"already":"${fingerprint('x')}"`));
});

test('secret field names', () => {
  for (const n of ['access_token', 'refreshToken', 'client_secret', 'code_verifier', 'codeVerifier', 'password', 'authorization', 'id_token']) {
    assert.equal(isSecretFieldName(n), true, n);
  }
  for (const n of ['server', 'tokenEndpoint', 'token_type', 'expiresAt', 'tokenFp', 'code']) {
    assert.equal(isSecretFieldName(n), false, n);
  }
});

test('level filtering', () => {
  const { stream, text } = capture();
  const log = createLogger({ level: 'warn', stream });
  log.debug('d');
  log.info('i');
  log.warn('w');
  log.error('e');
  assert.deepEqual(
    text().trim().split('\n').map((l) => l.split(' ').slice(1).filter(Boolean).join(' ')),
    ['warn w', 'error e'],
  );
});

test('messages cannot forge extra lines; errors in fields are readable', () => {
  const { stream, text } = capture();
  const log = createLogger({ level: 'info', stream });
  log.info('a\nFAKE error line', { err: Object.assign(new Error('bad'), { code: 'network_error' }) });
  assert.equal(text().split('\n').length, 2);
  assert.match(text(), /"err":\{"name":"Error","message":"bad","code":"network_error"\}/);
});

test('log file: appended, 0600 in a 0700 directory, pre-existing file tightened', { skip: process.platform === 'win32' }, async () => {
  const base = await mkdtemp(join(tmpdir(), 'mcp-oauth-log-'));
  try {
    const file = join(base, 'logs', 'mcp-oauth.log');
    const log = createLogger({ level: 'info', stream: null, file, secrets: () => ['file-secret-123'] });
    log.info('one file-secret-123');
    log.debug('hidden');
    await log.close();
    await log.close();
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(base, 'logs'))).mode & 0o777, 0o700);

    const loose = join(base, 'loose.log');
    await writeFile(loose, 'previous\n');
    await chmod(loose, 0o644);
    const log2 = createLogger({ level: 'info', stream: null, file: loose });
    log2.info('two');
    await log2.close();
    assert.equal((await stat(loose)).mode & 0o777, 0o600);
    assert.match(await readFile(loose, 'utf8'), /^previous\n.* info  two\n$/);

    const content = await readFile(file, 'utf8');
    assert.match(content, / info  one sha256:[0-9a-f]{12}\n$/);
    assert.ok(!content.includes('file-secret-123'));
    assert.ok(!content.includes('hidden'));
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('silent logger writes nothing and closes', async () => {
  const log = createSilentLogger();
  log.error('x');
  await log.close();
});
