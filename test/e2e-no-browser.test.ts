// `login --no-browser` on a machine with no local browser (SSH): the URL is printed, the user
// signs in elsewhere and pastes the URL the browser was redirected to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startSandbox } from '../src/sandbox/index.ts';
import { makeHome, cliPath, readStore, browserLaunches, assertNoSecretsPrinted } from './helpers/e2e.ts';

/** Follows the authorize URL like a browser, but stops at the redirect to the loopback callback. */
async function redirectedUrl(authorizeUrl: string): Promise<string> {
  const redirectUri = new URL(authorizeUrl).searchParams.get('redirect_uri')!;
  const cookies = new Map<string, string>();
  let current = authorizeUrl;
  for (let hop = 0; hop < 20; hop++) {
    const res = await fetch(current, { redirect: 'manual', headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    await res.body?.cancel();
    const next = new URL(res.headers.get('location')!, current).href;
    if (next.startsWith(redirectUri)) return next;
    current = next;
  }
  throw new Error('no redirect to the callback');
}

test('--no-browser prints the URL and accepts the redirected URL pasted on stdin', async () => {
  const sandbox = await startSandbox();
  const home = await makeHome();
  try {
    const child = spawn(process.execPath, [cliPath, 'login', sandbox.mcpUrl, '--no-browser'], { env: home.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${stderr}`)), 20_000);
      child.stderr.on('data', (d) => {
        stderr += d;
        const m = stderr.match(/(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)/);
        if (m && /Paste the URL/.test(stderr)) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    const pasted = await redirectedUrl(url);
    child.stdin.write('not a url\n');
    child.stdin.write(`  ${pasted}  \n`);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr);
    assert.match(stdout, /Signed in/);
    assert.match(stderr, /That did not work/);
    assert.equal(await browserLaunches(home.browserLog), 0, 'no browser may be launched with --no-browser');
    const { credentials } = await readStore(home.home);
    assert.equal(Object.keys(credentials).length, 1);
    assert.equal(sandbox.counters.tokenRequests.authorization_code, 1);
    await assertNoSecretsPrinted(home.home, stdout, stderr);
  } finally {
    await sandbox.close();
    await home.cleanup();
  }
});
