// Sign-in from the proxy: several proxies of one credential open ONE browser tab between them, and
// a sign-in that cannot happen answers with an error naming the command, without killing the proxy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { browserLaunches, makeHome, runCli, type TestHome } from './helpers/e2e.ts';
import { initializeRequest, rawProxy } from './fixtures/proxy-helpers.ts';

let sandbox: Sandbox;
const homes: TestHome[] = [];

before(async () => {
  sandbox = await startSandbox();
});

after(async () => {
  await sandbox?.close();
  await Promise.all(homes.map((h) => h.cleanup()));
});

test('three proxies with no credential, one request each at the same moment: one browser launch, all three get through', async () => {
  const home = await makeHome({ BROWSER_DELAY_MS: '1000' });
  homes.push(home);
  const proxies = [0, 1, 2].map(() => rawProxy([sandbox.mcpUrl], home.env));
  try {
    for (const p of proxies) p.send(initializeRequest(1));
    const answers = await Promise.all(proxies.map((p) => p.waitFor((m) => m.id === 1, 60_000)));
    for (const a of answers) assert.ok(a.result?.protocolVersion, JSON.stringify(a));
    for (const p of proxies) {
      p.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      p.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'signed in' } } });
    }
    const calls = await Promise.all(proxies.map((p) => p.waitFor((m) => m.id === 2)));
    for (const c of calls) assert.deepEqual(c.result?.content, [{ type: 'text', text: 'signed in' }]);
    assert.equal(await browserLaunches(home.browserLog), 1, 'exactly one browser launch');
    assert.equal(sandbox.counters.tokenRequests.authorization_code, 1, 'one sign-in at the authorization server');
  } finally {
    await Promise.all(proxies.map((p) => p.stop()));
  }
});

test('grant revoked and no sign-in possible: a JSON-RPC error naming the command; after a login elsewhere the same proxy works', async (t) => {
  const home = await makeHome();
  homes.push(home);
  const login = await runCli(['login', sandbox.mcpUrl], { env: home.env });
  assert.equal(login.code, 0, login.stderr);
  // BROWSER=true: the "browser" starts and does nothing, so the sign-in can only time out.
  const proxy = rawProxy([sandbox.mcpUrl, '--signin-timeout', '2'], { ...home.env, BROWSER: 'true' });
  try {
    proxy.send(initializeRequest(1));
    await proxy.waitFor((m) => m.id === 1 && m.result);
    proxy.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    proxy.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'before' } } });
    assert.ok((await proxy.waitFor((m) => m.id === 2)).result);

    await sandbox.revokeAllGrants();
    proxy.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'revoked' } } });
    const failed = await proxy.waitFor((m) => m.id === 3);
    assert.equal(failed.error?.code, -32001, JSON.stringify(failed));
    t.diagnostic(`error message: ${failed.error.message}`);
    assert.match(failed.error.message, /mcp-oauth login /, 'the message names the command to run');
    assert.equal(proxy.child.exitCode, null, 'the proxy keeps running');

    const again = await runCli(['login', sandbox.mcpUrl], { env: home.env });
    assert.equal(again.code, 0, again.stderr);
    proxy.send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', arguments: { text: 'after login' } } });
    const ok = await proxy.waitFor((m) => m.id === 4);
    assert.deepEqual(ok.result?.content, [{ type: 'text', text: 'after login' }], JSON.stringify(ok));
  } finally {
    assert.equal(await proxy.stop(), 0);
  }
});

test('403 insufficient_scope: the proxy holds the call, signs in again for the wider scope, then forwards it', async () => {
  const home = await makeHome();
  homes.push(home);
  const login = await runCli(['login', sandbox.mcpUrl], { env: home.env });
  assert.equal(login.code, 0, login.stderr);
  const proxy = rawProxy([sandbox.mcpUrl], home.env);
  try {
    proxy.send(initializeRequest(1));
    await proxy.waitFor((m) => m.id === 1 && m.result);
    proxy.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    proxy.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'admin_echo', arguments: { text: 'more scope' } } });
    const res = await proxy.waitFor((m) => m.id === 2);
    assert.deepEqual(res.result?.content, [{ type: 'text', text: 'admin: more scope' }], JSON.stringify(res));
    assert.equal(await browserLaunches(home.browserLog), 2, 'the login, then one step-up sign-in');
    assert.match(sandbox.counters.authorizeRequests.at(-1)?.scope ?? '', /mcp:admin/);
  } finally {
    await proxy.stop();
  }
});
