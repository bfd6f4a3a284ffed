/**
 * Non-interactive use never hangs (issue "Every real server and identity provider", item 5): a
 * script with no terminal whose grant is gone fails at once with exit 4 and the command to run,
 * says why no browser opened and shows the URL; the proxy, which clients start without a terminal
 * on purpose, keeps its one-tab sign-in.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { followAuthorizeUrl } from '../src/sandbox/headless-browser.ts';
import { browserLaunches, makeHome, ok, onlyCredential, runCli, writeConfig, type TestHome } from './helpers/e2e.ts';
import { initializeRequest, rawProxy } from './fixtures/proxy-helpers.ts';

let sb: Sandbox;
before(async () => {
  sb = await startSandbox();
});
after(() => sb.close());

async function signedInThenRevoked(extraEnv: NodeJS.ProcessEnv): Promise<TestHome> {
  const h = await makeHome();
  await writeConfig(h.home, `[mcp_servers.sb]\nurl = "${sb.mcpUrl}"\n`);
  ok(await runCli(['login', 'sb'], { env: h.env }), 'login');
  await sb.revokeAllGrants();
  sb.resetCounters();
  Object.assign(h.env, extraEnv);
  return h;
}

describe('no terminal, and no browser to open', () => {
  it('$BROWSER fails: exit 4 in under 5 s, the failure and the URL are shown, the credential is kept and marked', async () => {
    const h = await signedInThenRevoked({ BROWSER: 'false' });
    try {
      const started = Date.now();
      const r = await runCli(['tools', 'sb'], { env: h.env, timeoutMs: 20_000 });
      const elapsed = Date.now() - started;
      assert.equal(r.code, 4, r.stderr);
      assert.ok(elapsed < 5000, `took ${elapsed} ms`);
      assert.match(r.stderr, /could not start \$BROWSER \(false: it exited with status 1\)/);
      assert.match(r.stderr, new RegExp(`Open this URL in a browser to sign in:\\s+${sb.issuer.replace(/[.:/]/g, '\\$&')}/auth\\?`));
      assert.match(r.stderr, /mcp-oauth login sb/);
      assert.doesNotMatch(r.stderr, /timed out/i);
      const credential = await onlyCredential(h.home);
      assert.ok(credential.needsSignIn, 'kept, marked as needing a sign-in');
      assert.equal(sb.counters.tokenRequests.refresh_token, 1, 'one refresh attempt, then the verdict');
    } finally {
      await h.cleanup();
    }
  });

  it('no $BROWSER and no display: exit 4 at once, before any authorization request', async () => {
    const h = await signedInThenRevoked({});
    delete h.env.BROWSER;
    delete h.env.DISPLAY;
    delete h.env.WAYLAND_DISPLAY;
    try {
      const r = await runCli(['call', 'sb', 'echo', '{"text":"x"}'], { env: h.env, timeoutMs: 20_000 });
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /no browser can be opened here/);
      assert.match(r.stderr, /mcp-oauth login sb/);
      assert.equal(sb.counters.authorizeRequests.length, 0);
      assert.equal(sb.counters.registrations, 0);
    } finally {
      await h.cleanup();
    }
  });
});

describe('the proxy keeps its sign-in when the browser fails', () => {
  it('reports the failure, shows the URL on stderr, and completes when the URL is opened by hand', async () => {
    const h = await makeHome({ BROWSER: 'false' });
    const proxy = rawProxy([sb.mcpUrl], h.env);
    try {
      proxy.send(initializeRequest(1));
      const url = await waitForUrl(proxy.stderr);
      await followAuthorizeUrl(url);
      const response = await proxy.waitFor((m) => m.id === 1);
      assert.ok(response.result?.serverInfo, JSON.stringify(response));
      assert.match(proxy.stderr(), /could not open a browser; open the sign-in URL by hand/);
      assert.equal(await browserLaunches(h.browserLog), 0);
    } finally {
      await proxy.stop();
      await h.cleanup();
    }
  });
});

async function waitForUrl(stderr: () => string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /visit:\n(http\S+)/.exec(stderr());
    if (m) return m[1];
    if (Date.now() > deadline) throw new Error(`no sign-in URL on stderr:\n${stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
