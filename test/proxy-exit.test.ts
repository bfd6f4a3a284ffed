// The proxy ends its session on the way out: stdin closed or SIGTERM → HTTP DELETE with the
// Mcp-Session-Id, then exit 0. Against the scripted Streamable HTTP server with a stored token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalResourceUri } from '../src/oauth/canonical.ts';
import { makeHome, type TestHome } from './helpers/e2e.ts';
import { initializeRequest, rawProxy, storeFixtureCredential } from './fixtures/proxy-helpers.ts';
import { startFakeStreamable } from './fixtures/proxy-fake-streamable.ts';

let server: Awaited<ReturnType<typeof startFakeStreamable>>;
let home: TestHome;

before(async () => {
  server = await startFakeStreamable();
  home = await makeHome();
  await storeFixtureCredential(home.home, { serverName: canonicalResourceUri(server.url), url: server.url, accessToken: 'fake-access-token-0123456789' });
});

after(async () => {
  await server?.close();
  await home?.cleanup();
});

for (const how of ['stdin end', 'SIGTERM'] as const) {
  test(`${how}: DELETE of the session, exit 0`, async () => {
    const proxy = rawProxy([server.url], home.env);
    proxy.send(initializeRequest(1));
    await proxy.waitFor((m) => m.id === 1);
    const sessionId = server.seen.at(-1)!.sessionId ?? `S${server.seen.filter((s) => s.body?.method === 'initialize').length}`;
    const deletesBefore = server.seen.filter((s) => s.method === 'DELETE').length;
    if (how === 'SIGTERM') proxy.child.kill('SIGTERM');
    else proxy.child.stdin.end();
    const timer = setTimeout(() => proxy.child.kill('SIGKILL'), 10_000);
    assert.equal(await proxy.exited, 0);
    clearTimeout(timer);
    const deletes = server.seen.filter((s) => s.method === 'DELETE');
    assert.equal(deletes.length, deletesBefore + 1, proxy.stderr());
    assert.equal(deletes.at(-1)!.sessionId, sessionId);
  });
}
