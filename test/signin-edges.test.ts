import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { isMcpOAuthError } from '../src/errors.ts';
import { parseRedirectedUrl, startCallbackServer } from '../src/signin/loopback.ts';
import type { CallbackServer } from '../src/signin/loopback.ts';
import { describeAuthorizationError } from '../src/signin/pages.ts';
import { readRedirectFromStdin } from '../src/signin/paste.ts';
import { openBrowser, parseCommandLine } from '../src/signin/browser.ts';

async function withServer<T>(opts: { port?: number; timeoutMs?: number }, fn: (s: CallbackServer) => Promise<T>): Promise<T> {
  const server = await startCallbackServer({ timeoutMs: opts.timeoutMs ?? 30_000, port: opts.port });
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

function portOf(redirectUri: string): number {
  return Number(new URL(redirectUri).port);
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

// ---------------------------------------------------------------- loopback server

test('loopback: redirect URI is http://127.0.0.1:PORT/callback and only loopback accepts connections', async () => {
  await withServer({}, async (s) => {
    assert.match(s.redirectUri, /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const port = portOf(s.redirectUri);
    assert.equal(await canConnect('127.0.0.1', port), true);
    // RFC 8252 §8.3: bound to the loopback interface only, so other interfaces must refuse.
    const external = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal && a.family === 'IPv4')
      .map((a) => a!.address);
    for (const addr of external) assert.equal(await canConnect(addr, port), false, `reachable on ${addr}`);
  });
});

test('loopback: ephemeral ports differ per server; a configured port is used', async () => {
  const a = await startCallbackServer({ timeoutMs: 30_000 });
  const b = await startCallbackServer({ timeoutMs: 30_000 });
  try {
    assert.notEqual(portOf(a.redirectUri), portOf(b.redirectUri));
  } finally {
    await a.close();
    await b.close();
  }
  const port = await freePort();
  await withServer({ port }, async (s) => assert.equal(s.redirectUri, `http://127.0.0.1:${port}/callback`));
});

test('loopback: a configured port that is in use is a usage error naming the port', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as AddressInfo).port;
  try {
    await assert.rejects(startCallbackServer({ port, timeoutMs: 1000 }), (e: unknown) => {
      assert.ok(isMcpOAuthError(e, 'usage'));
      assert.equal(e.message, `port ${port} is in use`);
      assert.match(e.hint ?? '', /callback_port/);
      return true;
    });
  } finally {
    await new Promise<void>((r) => blocker.close(() => r()));
  }
});

test('loopback: first callback resolves with its params; page is held until respond(), then says signed in', async () => {
  await withServer({}, async (s) => {
    const waiting = s.waitForCallback();
    let settled = false;
    const page = fetch(`${s.redirectUri}?code=the-code&state=st4te&iss=https%3A%2F%2Fas.example`).then((r) => {
      settled = true;
      return r;
    });
    const cb = await waiting;
    assert.equal(cb.params.get('code'), 'the-code');
    assert.equal(cb.params.get('state'), 'st4te');
    assert.equal(cb.params.get('iss'), 'https://as.example');
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(settled, false, 'the page must wait for the caller to validate state/iss');
    cb.respond({ ok: true, serverName: 'notion', clientName: 'Codex' });
    cb.respond({ ok: false, message: 'ignored: respond is idempotent' });
    const res = await page;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const html = await res.text();
    assert.ok(html.includes('Signed in to notion. You can close this tab and return to Codex.'), html);
    assert.doesNotMatch(html, /(src|href)=["']?https?:/, 'no external resources');
  });
});

test('loopback: error redirect page says in plain words what happened, with error_description escaped', async () => {
  await withServer({}, async (s) => {
    const evil = '<script>alert(1)</script> & "quotes"';
    const page = fetch(`${s.redirectUri}?error=access_denied&error_description=${encodeURIComponent(evil)}&state=x`);
    const cb = await s.waitForCallback();
    const message = describeAuthorizationError(cb.params);
    assert.ok(message);
    cb.respond({ ok: false, message });
    const res = await page;
    assert.equal(res.status, 400);
    const html = await res.text();
    assert.match(html, /You declined access/);
    assert.ok(!html.includes('<script>'), 'error_description must be escaped');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;'), html);
  });
});

test('loopback: single use — a second request to /callback gets 410 "already used"', async () => {
  await withServer({}, async (s) => {
    const first = fetch(`${s.redirectUri}?code=one&state=s`);
    const cb = await s.waitForCallback();
    cb.respond({ ok: true, serverName: 'x' });
    await (await first).text();
    const second = await fetch(`${s.redirectUri}?code=two&state=s`);
    assert.equal(second.status, 410);
    assert.match(await second.text(), /this sign-in link was already used/i);
    assert.equal((await s.waitForCallback()).params.get('code'), 'one');
  });
});

test('loopback: other paths are 404 and non-GET is 405; neither uses up the callback', async () => {
  await withServer({}, async (s) => {
    const origin = new URL(s.redirectUri).origin;
    const notFound = await fetch(`${origin}/favicon.ico`);
    assert.equal(notFound.status, 404);
    await notFound.text();
    const post = await fetch(`${s.redirectUri}?code=forged`, { method: 'POST' });
    assert.equal(post.status, 405);
    await post.text();
    const page = fetch(`${s.redirectUri}?code=real&state=s`);
    const cb = await s.waitForCallback();
    assert.equal(cb.params.get('code'), 'real');
    cb.respond({ ok: true, serverName: 'x' });
    assert.equal((await page).status, 200);
  });
});

test('loopback: no callback within timeoutMs rejects with signin_timeout', async () => {
  await withServer({ timeoutMs: 200 }, async (s) => {
    await assert.rejects(s.waitForCallback(), (e: unknown) => {
      assert.ok(isMcpOAuthError(e, 'signin_timeout'));
      assert.match(e.message, /^No sign-in completed within/);
      assert.match(e.hint ?? '', /--no-browser/);
      return true;
    });
    // A late browser gets told the sign-in expired instead of a success page.
    const late = await fetch(`${s.redirectUri}?code=late`);
    assert.equal(late.status, 410);
    assert.match(await late.text(), /expired/);
  });
});

test('loopback: waitForCallback honours an abort signal (the paste path won the race)', async () => {
  await withServer({}, async (s) => {
    const ac = new AbortController();
    const waiting = s.waitForCallback(ac.signal);
    ac.abort(new Error('pasted'));
    await assert.rejects(waiting, /pasted/);
  });
});

test('loopback: close() with a held response sends a neutral page (never "signed in"), frees the port, is idempotent', async () => {
  const s = await startCallbackServer({ timeoutMs: 30_000 });
  const port = portOf(s.redirectUri);
  const page = fetch(`${s.redirectUri}?code=c&state=s`);
  await s.waitForCallback();
  await s.close();
  await s.close();
  const res = await page;
  const html = await res.text();
  assert.match(html, /Sign-in response received/);
  assert.doesNotMatch(html, /Signed in to/);
  assert.equal(await canConnect('127.0.0.1', port), false);
  // Port is free again: a new server can take it.
  await withServer({ port }, async (again) => assert.equal(portOf(again.redirectUri), port));
});

// ---------------------------------------------------------------- pasted URL

const REDIRECT = 'http://127.0.0.1:53682/callback';

test('parseRedirectedUrl: full URL, surrounding whitespace, ?query and bare query', () => {
  for (const text of [
    `${REDIRECT}?code=abc&state=xyz`,
    `  \t${REDIRECT}?code=abc&state=xyz#frag \n`,
    '?code=abc&state=xyz',
    'code=abc&state=xyz',
  ]) {
    const p = parseRedirectedUrl(text, REDIRECT);
    assert.equal(p.get('code'), 'abc', text);
    assert.equal(p.get('state'), 'xyz', text);
  }
  assert.equal(parseRedirectedUrl(`${REDIRECT}?error=access_denied&state=s`, REDIRECT).get('error'), 'access_denied');
});

test('parseRedirectedUrl: wrong port, path, host or scheme, and junk are usage errors that never echo the code', () => {
  for (const text of [
    'http://127.0.0.1:1234/callback?code=SECRETCODE1&state=s',
    'http://127.0.0.1:53682/other?code=SECRETCODE1&state=s',
    'http://localhost:53682/callback?code=SECRETCODE1&state=s',
    'https://127.0.0.1:53682/callback?code=SECRETCODE1&state=s',
    `${REDIRECT}?state=only&x=SECRETCODE1`,
    'hello SECRETCODE1',
    '',
  ]) {
    assert.throws(
      () => parseRedirectedUrl(text, REDIRECT),
      (e: unknown) => isMcpOAuthError(e, 'usage') && !e.message.includes('SECRETCODE1'),
      text,
    );
  }
});

test('readRedirectFromStdin: explains a bad line, asks again, resolves with the good one', async () => {
  const input = new PassThrough();
  const output = new PassThrough();
  let out = '';
  output.on('data', (d) => (out += d));
  const result = readRedirectFromStdin({ input, output, redirectUri: REDIRECT });
  input.write('http://127.0.0.1:9/callback?code=wrongport\n');
  input.write('\n');
  input.write(`${REDIRECT}?code=good&state=s\n`);
  const params = await result;
  assert.equal(params.get('code'), 'good');
  assert.equal(out.match(/Paste the URL your browser was redirected to \(it starts with http:\/\/127\.0\.0\.1:53682\/callback\):/g)?.length, 2);
  assert.match(out, /That did not work: the pasted URL goes to http:\/\/127\.0\.0\.1:9\/callback/);
  assert.doesNotMatch(out, /wrongport/);
});

test('readRedirectFromStdin: EOF without a URL rejects; abort rejects with the reason', async () => {
  const input = new PassThrough();
  const pending = readRedirectFromStdin({ input, output: new PassThrough(), redirectUri: REDIRECT });
  input.end('not a url\n');
  await assert.rejects(pending, (e: unknown) => isMcpOAuthError(e, 'signin_timeout') && /no URL was pasted/.test(e.message));

  const ac = new AbortController();
  const aborted = readRedirectFromStdin({ input: new PassThrough(), output: new PassThrough(), redirectUri: REDIRECT, signal: ac.signal });
  ac.abort(new Error('callback won'));
  await assert.rejects(aborted, /callback won/);
});

// ---------------------------------------------------------------- browser

test('parseCommandLine: whitespace, single/double quotes, backslashes, no expansion', () => {
  assert.deepEqual(parseCommandLine('firefox'), ['firefox']);
  assert.deepEqual(parseCommandLine('  firefox   --new-tab  '), ['firefox', '--new-tab']);
  assert.deepEqual(parseCommandLine(`'/opt/My Browser/bin' "--profile=a b" c\\ d`), ['/opt/My Browser/bin', '--profile=a b', 'c d']);
  assert.deepEqual(parseCommandLine(`"a \\"q\\" \\\\ \\$x \\n" 'it''s'`), ['a "q" \\ $x \\n', 'its']);
  assert.deepEqual(parseCommandLine(`'a "b" \\c'`), ['a "b" \\c']);
  assert.deepEqual(parseCommandLine(`x'y'"z"`), ['xyz']);
  assert.deepEqual(parseCommandLine(`'' ""`), ['', '']);
  assert.deepEqual(parseCommandLine('echo $(rm -rf /); ls | cat'), ['echo', '$(rm', '-rf', '/);', 'ls', '|', 'cat']);
  assert.throws(() => parseCommandLine(`'unterminated`), (e: unknown) => isMcpOAuthError(e, 'usage'));
  assert.throws(() => parseCommandLine(`"unterminated`), (e: unknown) => isMcpOAuthError(e, 'usage'));
});

async function waitForFile(path: string): Promise<string> {
  for (let i = 0; i < 500; i++) {
    try {
      return await readFile(path, 'utf8');
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  throw new Error(`${path} never appeared`);
}

test('openBrowser: $BROWSER gets the URL as ONE argument, no shell involved', { skip: process.platform === 'win32' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcp oauth-browser-'));
  try {
    const script = join(dir, 'fake browser.sh');
    // Writes its argv NUL-separated, atomically (tmp + mv), so the test never reads half a file.
    await writeFile(script, `#!/bin/sh\nprintf '%s\\0' "$@" > "$0.args.tmp" && mv "$0.args.tmp" "$0.args"\n`);
    await chmod(script, 0o755);
    const canary = join(dir, 'pwned');
    const url = `https://as.example/authorize?a=1 2;touch ${canary}&b=$(touch ${canary})&c=\`touch ${canary}\`&d='"`;

    await openBrowser(url, { env: { BROWSER: `'${script}'` } });
    assert.deepEqual((await waitForFile(`${script}.args`)).split('\0').slice(0, -1), [url]);
    await rm(`${script}.args`);

    // %s placeholder, and the old ':'-separated list (the first entry does not exist).
    await openBrowser(url, { env: { BROWSER: `/nonexistent/mcp-oauth-browser:"${script}" --new-window %s --x` } });
    assert.deepEqual((await waitForFile(`${script}.args`)).split('\0').slice(0, -1), ['--new-window', url, '--x']);
    await assert.rejects(readFile(canary), { code: 'ENOENT' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('openBrowser: $BROWSER that cannot start is browser_failed with a hint', async () => {
  await assert.rejects(
    openBrowser('https://as.example/authorize', { env: { BROWSER: '/nonexistent/mcp-oauth-no-such-browser' } }),
    (e: unknown) => {
      assert.ok(isMcpOAuthError(e, 'browser_failed'));
      assert.match(e.message, /^could not start \$BROWSER \(.*not found\)/);
      assert.match(e.hint ?? '', /--no-browser/);
      return true;
    },
  );
});
