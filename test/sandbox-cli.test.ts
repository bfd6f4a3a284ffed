// `mcp-oauth sandbox` as a user runs it: Google mode with a client secret the user chose (no secret
// is ever printed), the stdin "revoke" command, and a clean stop on Ctrl-C.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { makeHome, runCli, cliPath, ok, onlyCredential, assertNoSecretsPrinted } from './helpers/e2e.ts';

test('sandbox --google --google-client-secret-env: add + login get a refresh token; "revoke" on stdin kills the grant', async () => {
  const h = await makeHome({ GSECRET: 'sandbox-google-secret-for-tests' });
  const child = spawn(process.execPath, [cliPath, 'sandbox', '--google', '--google-client-secret-env', 'GSECRET'], { env: h.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sandbox did not start: ${out} ${err}`)), 30_000);
      child.stdout.on('data', () => {
        if (/^Next, in another terminal/m.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    assert.ok(!out.includes('sandbox-google-secret-for-tests') && !err.includes('sandbox-google-secret-for-tests'), 'the secret is never printed');
    const addLine = out.match(/(mcp-oauth add gsandbox \S+ --client-id \S+ --client-secret-env GSECRET --provider google)/);
    assert.ok(addLine, out);
    ok(await runCli(addLine[1].split(' ').slice(1), { env: h.env }), 'add');
    const login = ok(await runCli(['login', 'gsandbox'], { env: h.env }), 'login');
    assert.ok((await onlyCredential(h.home)).refreshToken, 'Google mode with the quirk on issues a refresh token');
    await assertNoSecretsPrinted(h.home, login.stdout, login.stderr, out, err);

    child.stdin.write('revoke\n');
    await new Promise<void>((resolve) => child.stderr.on('data', () => /every grant revoked/.test(err) && resolve()));
    // The stored access token still looks fresh; doctor's real refresh meets the dead grant.
    const doctor = await runCli(['doctor', 'gsandbox'], { env: h.env });
    assert.equal(doctor.code, 4, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /✗ refresh[^\n]*invalid_grant/);
    assert.match(doctor.stdout, /mcp-oauth login gsandbox/);

    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
  } finally {
    child.kill('SIGKILL');
    await h.cleanup();
  }
});
