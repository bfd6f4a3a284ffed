// `mcp-oauth login URL --device`: the OAuth 2.0 Device Authorization Grant (RFC 8628) against the
// sandbox, which offers it. The test plays the user on another device: it reads the verification
// URI and the user code from the CLI's stderr and completes the sandbox's verification pages over
// plain HTTP (the forms a browser would submit, with their xsrf fields and cookies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { makeHome, cliPath, readStore, runCli, ok, browserLaunches, assertNoSecretsPrinted, type TestHome } from './helpers/e2e.ts';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** A cookie-keeping HTTP client that follows redirects by hand, like a browser without scripts. */
function browser() {
  const cookies = new Map<string, string>();
  return async function go(url: string, form?: URLSearchParams): Promise<{ url: string; status: number; html: string }> {
    let current = url;
    let body = form;
    for (let hop = 0; hop < 20; hop++) {
      const res = await fetch(current, {
        method: body ? 'POST' : 'GET',
        redirect: 'manual',
        headers: {
          cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
          ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        body: body?.toString(),
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair.indexOf('=');
        cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        current = new URL(location, current).href;
        body = undefined;
        continue;
      }
      return { url: current, status: res.status, html: await res.text() };
    }
    throw new Error('too many redirects');
  };
}

const decode = (s: string) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&').replace(/&quot;/g, '"');

/** The first form of a page: its action and its hidden fields (what submitting it would send). */
function formOf(page: { url: string; html: string }): { action: string; fields: URLSearchParams } {
  const form = page.html.match(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/);
  assert.ok(form, `no form on ${page.url}:\n${page.html}`);
  const fields = new URLSearchParams();
  for (const input of form[2].matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
    const name = input[0].match(/name="([^"]*)"/)?.[1];
    const value = input[0].match(/value="([^"]*)"/)?.[1] ?? '';
    if (name) fields.set(name, decode(value));
  }
  return { action: new URL(decode(form[1]), page.url).href, fields };
}

interface Running {
  prompt: Promise<{ verificationUri: string; userCode: string; complete?: string }>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Starts `mcp-oauth login URL --device …` and waits for the line that tells the user what to do. */
function startLogin(home: TestHome, url: string, extra: string[] = []): Running {
  const child = spawn(process.execPath, [cliPath, 'login', url, '--device', ...extra], { env: home.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  const prompt = new Promise<{ verificationUri: string; userCode: string; complete?: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`no device code printed: ${stderr}`));
    }, 30_000);
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = stderr.match(/visit (\S+) and enter the code (\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ verificationUri: m[1], userCode: m[2], complete: stderr.match(/\(or open (\S+)\)/)?.[1] });
      }
    });
    void done.then(() => {
      clearTimeout(timer);
      reject(new Error(`the CLI exited before printing a code: ${stderr}`));
    });
  });
  prompt.catch(() => {});
  return { prompt, done };
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function withSandbox(opts: Parameters<typeof startSandbox>[0], fn: (sandbox: Sandbox, home: TestHome) => Promise<void>): Promise<void> {
  const sandbox = await startSandbox(opts);
  const home = await makeHome();
  try {
    await fn(sandbox, home);
  } finally {
    await sandbox.close();
    await home.cleanup();
  }
}

test('login --device: the user enters the code on the verification page, the CLI polls and stores the credential', async () => {
  await withSandbox({ deviceIntervalSeconds: 1 }, async (sandbox, home) => {
    const run = startLogin(home, sandbox.mcpUrl);
    const { verificationUri, userCode, complete } = await run.prompt;
    assert.equal(new URL(verificationUri).origin, sandbox.issuer);
    assert.ok(complete?.includes(encodeURIComponent(userCode)) || complete?.includes(userCode), 'verification_uri_complete is shown too');
    // The user takes a moment: the CLI must keep polling (authorization_pending) meanwhile.
    await until('an authorization_pending poll', () => (sandbox.counters.deviceFlow.polls.authorization_pending ?? 0) >= 1);

    // The user, on another device: open the printed URI, type the code, confirm it.
    const go = browser();
    const entry = await go(verificationUri);
    assert.equal(entry.status, 200);
    const input = formOf(entry);
    assert.ok(input.fields.get('xsrf'), 'the code entry form carries its xsrf field');
    input.fields.set('user_code', userCode);
    const confirm = await go(input.action, input.fields);
    assert.match(confirm.html, /Confirm the device sign-in/);
    const confirmForm = formOf(confirm);
    assert.equal(confirmForm.fields.get('confirm'), 'yes');
    // Confirming leads through the login/consent interaction (autoApprove) to the success page.
    const finished = await go(confirmForm.action, confirmForm.fields);
    assert.match(finished.html, /Device signed in/, finished.html);

    const r = ok(await run.done, 'login --device');
    assert.match(r.stdout, /Signed in/);
    assert.match(r.stderr, new RegExp(`To sign in to \\S+, visit ${verificationUri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} and enter the code`));
    assert.equal(await browserLaunches(home.browserLog), 0, 'no browser is launched by --device');
    assert.equal(sandbox.counters.tokenRequests[DEVICE_GRANT], sandbox.counters.deviceFlow.polls.authorization_pending! + 1, 'every poll is a device_code token request');
    assert.equal(sandbox.counters.deviceFlow.polls.tokens, 1);
    assert.equal(sandbox.counters.deviceFlow.polls.slow_down, undefined, 'the CLI honours the interval');
    assert.equal(sandbox.counters.tokenRequests.authorization_code, undefined);
    assert.deepEqual(sandbox.counters.tokenRequestLog.find((e) => e.grantType === DEVICE_GRANT)?.resource, [sandbox.mcpUrl], 'RFC 8707 resource on the token request');

    const { credentials, registrations } = await readStore(home.home);
    const stored = Object.values(credentials);
    assert.equal(stored.length, 1);
    assert.ok(stored[0].refreshToken, 'a refresh token is stored');
    assert.deepEqual(stored[0].key, { serverName: sandbox.mcpUrl, resource: sandbox.mcpUrl, issuer: sandbox.issuer });
    assert.ok(registrations[sandbox.issuer].grantTypes.includes(DEVICE_GRANT), 'the registration records the device grant');

    // The token works with no browser: `tools` uses the stored credential.
    const tools = ok(await runCli(['tools', sandbox.mcpUrl], { env: home.env }), 'tools');
    assert.match(tools.stdout, /echo/);
    assert.equal(await browserLaunches(home.browserLog), 0);
    await assertNoSecretsPrinted(home.home, r.stdout, r.stderr, tools.stdout, tools.stderr);

    // A second device login reuses the registration (it already has the device grant), and so
    // does a browser login (one client per issuer, loopback redirect on any port).
    const again = startLogin(home, sandbox.mcpUrl, ['--json']);
    const second = await again.prompt;
    const go2 = browser();
    const pre = formOf(await go2(second.complete!));
    const confirm2 = formOf(await go2(pre.action, pre.fields));
    assert.match((await go2(confirm2.action, confirm2.fields)).html, /Device signed in/);
    const r2 = ok(await again.done, 'second login --device --json');
    assert.equal(JSON.parse(r2.stdout).has_refresh_token, true);
    ok(await runCli(['login', sandbox.mcpUrl], { env: home.env }), 'browser login');
    assert.equal(sandbox.counters.registrations, 1, 'one client registration serves every sign-in');
  });
});

test('login --device: denying on the confirmation page is exit 4 and nothing is stored', async () => {
  await withSandbox({ deviceIntervalSeconds: 1 }, async (sandbox, home) => {
    const run = startLogin(home, sandbox.mcpUrl);
    const { complete } = await run.prompt;
    assert.ok(complete);
    const go = browser();
    // verification_uri_complete carries the code: its page submits it (with the xsrf field).
    const submit = formOf(await go(complete));
    const confirm = formOf(await go(submit.action, submit.fields));
    confirm.fields.set('abort', 'yes');
    const denied = await go(confirm.action, confirm.fields);
    assert.match(denied.html, /cancelled/);
    const r = await run.done;
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /denied/);
    assert.equal(sandbox.counters.deviceFlow.polls.access_denied, 1);
    assert.equal(Object.keys((await readStore(home.home)).credentials).length, 0);
    await assertNoSecretsPrinted(home.home, r.stdout, r.stderr);
  });
});

test('login --device against an authorization server without the device grant: exit 2 with the way that works', async () => {
  await withSandbox({ deviceFlow: false }, async (sandbox, home) => {
    const r = await runCli(['login', sandbox.mcpUrl, '--device'], { env: home.env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /does not offer the device grant/);
    assert.match(r.stderr, new RegExp(`mcp-oauth login \\S+ --no-browser`));
    assert.equal(sandbox.counters.registrations, 0, 'nothing is registered first');
    assert.equal(sandbox.counters.deviceFlow.authorizations, 0);
    assert.equal(Object.keys((await readStore(home.home)).credentials).length, 0);

    const both = await runCli(['login', sandbox.mcpUrl, '--device', '--no-browser'], { env: home.env });
    assert.equal(both.code, 2, both.stderr);
  });
});
