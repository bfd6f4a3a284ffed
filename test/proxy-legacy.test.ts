// Servers that only speak the 2024-11-05 HTTP+SSE transport: reached when the config says
// `transport = "sse"`, and detected when a POST initialize is refused with 4xx.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeHome, writeConfig, type TestHome } from './helpers/e2e.ts';
import { initializeRequest, rawProxy, storeFixtureCredential } from './fixtures/proxy-helpers.ts';
import { startLegacyServer, type LegacyServer } from './fixtures/proxy-legacy-server.ts';

const TOKEN = 'legacy-access-token-0123456789';
let legacy: LegacyServer;
let home: TestHome;

before(async () => {
  legacy = await startLegacyServer({ token: TOKEN });
  home = await makeHome();
  await writeConfig(home.home, [
    '[mcp_servers.forced]',
    `url = "${legacy.url}"`,
    '[mcp_servers.forced.oauth]',
    'transport = "sse"',
    '[mcp_servers.detected]',
    `url = "${legacy.url}"`,
  ].join('\n'));
  // A stored, long-lived credential per server: no sign-in, no refresh; the proxy just uses it.
  for (const serverName of ['forced', 'detected']) {
    await storeFixtureCredential(home.home, { serverName, url: legacy.url, accessToken: TOKEN, refreshToken: 'unused-refresh-token' });
  }
});

after(async () => {
  await legacy?.close();
  await home?.cleanup();
});

async function roundTrip(name: string) {
  const proxy = rawProxy([name, '--debug'], home.env);
  try {
    proxy.send(initializeRequest(1));
    const init = await proxy.waitFor((m) => m.id === 1);
    assert.equal(init.result?.protocolVersion, '2024-11-05', JSON.stringify(init));
    proxy.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    proxy.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    proxy.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: name } } });
    assert.equal((await proxy.waitFor((m) => m.id === 2)).result.tools[0].name, 'echo');
    assert.deepEqual((await proxy.waitFor((m) => m.id === 3)).result.content, [{ type: 'text', text: `legacy: ${name}` }]);

    // The stream drops: the proxy reconnects, replays initialize (its answer swallowed), goes on.
    legacy.dropStreams();
    await new Promise((r) => setTimeout(r, 100));
    proxy.send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', arguments: { text: 'again' } } });
    assert.deepEqual((await proxy.waitFor((m) => m.id === 4)).result.content, [{ type: 'text', text: 'legacy: again' }]);
    const ids = proxy.lines.map((l) => JSON.parse(l).id);
    assert.deepEqual(ids, [1, 2, 3, 4], 'the replayed initialize was not forwarded');
  } finally {
    assert.equal(await proxy.stop(), 0);
  }
}

test('config transport = "sse": the proxy speaks HTTP+SSE from the start', async () => {
  const before = { ...legacy.seen, posts: legacy.seen.posts.length };
  await roundTrip('forced');
  assert.equal(legacy.seen.postsToSsePath, before.postsToSsePath, 'no Streamable HTTP attempt');
  assert.equal(legacy.seen.unauthorized, 0, 'the stored token went on every request');
  const posted = legacy.seen.posts.slice(before.posts).map((p) => p.method);
  assert.equal(posted.filter((m) => m === 'initialize').length, 2, 'initialize, and its replay after the drop');
});

test('auto-detect: a POST initialize answered 405 falls back to HTTP+SSE at the same URL', async () => {
  const before = legacy.seen.postsToSsePath;
  await roundTrip('detected');
  assert.equal(legacy.seen.postsToSsePath, before + 1, 'one Streamable HTTP attempt, then the legacy transport');
});
