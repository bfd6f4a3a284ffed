// The Streamable HTTP client side of the proxy, in process, against a scripted server: GET stream
// resume with Last-Event-ID after a drop (honouring `retry:`), POST stream resume, session headers,
// re-initialization after 404 with the answer swallowed, and the DELETE on close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamableHttpSession } from '../src/proxy/http-session.ts';
import { parseRaw, type RawMessage } from '../src/proxy/messages.ts';
import { StreamLostError } from '../src/proxy/upstream.ts';
import { readSse } from '../src/proxy/sse.ts';
import { silentLogger } from '../src/types.ts';
import { startFakeStreamable } from './fixtures/proxy-fake-streamable.ts';

const raw = (v: unknown): RawMessage => parseRaw(JSON.stringify(v))!;
const init = raw({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' }, extra: { kept: true } } });

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function withSession(fn: (ctx: { session: StreamableHttpSession; received: any[]; server: Awaited<ReturnType<typeof startFakeStreamable>> }) => Promise<void>) {
  const server = await startFakeStreamable();
  const received: any[] = [];
  const session = new StreamableHttpSession({ url: server.url, fetch: globalThis.fetch, logger: silentLogger, onMessage: (m) => received.push(m.value) });
  try {
    await fn({ session, received, server });
  } finally {
    await session.close();
    await server.close();
  }
}

test('GET stream: reopened after a drop with Last-Event-ID, events forwarded in order, session headers on every request', async () => {
  await withSession(async ({ session, received, server }) => {
    await session.send(init);
    assert.equal(received[0].result.protocolVersion, '2025-11-25');
    await session.send(raw({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    await until(() => received.length >= 4, 'three server notifications');
    assert.deepEqual(received.slice(1, 4).map((m) => m.params.data), ['note 1', 'note 2', 'note 3']);
    const gets = server.seen.filter((s) => s.method === 'GET');
    assert.equal(gets[0].lastEventId, undefined);
    assert.equal(gets[1].lastEventId, 'g2', 'resumed from the last event id');
    for (const s of server.seen.slice(1)) {
      assert.equal(s.sessionId, 'S1');
      assert.equal(s.protocolVersion, '2025-11-25');
    }
    // The initialize went out byte for byte (unknown fields kept).
    assert.deepEqual(server.seen[0].body.params.extra, { kept: true });
  });
});

test('POST stream that ends before its response is resumed with GET + Last-Event-ID', async () => {
  await withSession(async ({ session, received, server }) => {
    await session.send(init);
    await session.send(raw({ jsonrpc: '2.0', id: 'call-1', method: 'tools/call', params: { name: 'resume-me' } }));
    assert.deepEqual(received.slice(1).map((m) => m.method ?? m.id), ['notifications/progress', 'call-1']);
    assert.ok(server.seen.some((s) => s.method === 'GET' && s.lastEventId === 'e1'));
  });
});

test('POST stream lost without event ids: StreamLostError naming the unanswered request', async () => {
  await withSession(async ({ session }) => {
    await session.send(init);
    await assert.rejects(session.send(raw({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'lose-me' } })), (err: unknown) => {
      assert.ok(err instanceof StreamLostError);
      assert.deepEqual(err.unanswered, [9]);
      return true;
    });
  });
});

test('404 for a known session: re-initialize with the original initialize (answer swallowed), resend, DELETE on close', async () => {
  await withSession(async ({ session, received, server }) => {
    await session.send(init);
    server.forgetSessions();
    await session.send(raw({ jsonrpc: '2.0', id: 5, method: 'tools/list' }));
    assert.deepEqual(received.filter((m) => m.id !== undefined).map((m) => m.id), [0, 5], 'only the client initialize answer and the tools/list answer');
    const posts = server.seen.filter((s) => s.method === 'POST').map((s) => s.body);
    const replay = posts.find((b) => b.method === 'initialize' && b.id !== 0);
    assert.match(String(replay.id), /^mcp-oauth-proxy-reinitialize-/);
    assert.deepEqual(replay.params, init.value && (init.value as any).params, 'the original params');
    assert.ok(posts.some((b) => b.method === 'notifications/initialized'));
    assert.equal(server.seen.at(-1)!.sessionId, 'S2');
    await session.close();
    const del = server.seen.find((s) => s.method === 'DELETE');
    assert.equal(del?.sessionId, 'S2');
  });
});

test('a re-initialization that failed is tried again at the next message', async () => {
  await withSession(async ({ session, received, server }) => {
    await session.send(init);
    server.forgetSessions();
    server.failNextInitialize();
    await assert.rejects(session.send(raw({ jsonrpc: '2.0', id: 6, method: 'tools/list' })), /HTTP 503/);
    await session.send(raw({ jsonrpc: '2.0', id: 7, method: 'tools/list' }));
    assert.deepEqual(received.filter((m) => m.id !== undefined).map((m) => m.id), [0, 7]);
    assert.equal(server.seen.at(-1)!.sessionId, 'S2', 'the new session');
  });
});

test('a batch goes out as one JSON array and its answer comes back as one', async () => {
  await withSession(async ({ session, received, server }) => {
    await session.send(init);
    const batch = raw([{ jsonrpc: '2.0', id: 'b1', method: 'tools/list' }, { jsonrpc: '2.0', method: 'notifications/x' }, { jsonrpc: '2.0', id: 'b2', method: 'ping' }]);
    await session.send(batch);
    assert.deepEqual(server.seen.at(-1)!.body, batch.value);
    assert.deepEqual(received.at(-1), [{ jsonrpc: '2.0', id: 'b1', result: { echoed: 'tools/list' } }, { jsonrpc: '2.0', id: 'b2', result: { echoed: 'ping' } }]);
  });
});

test('readSse keeps the last id and retry across events and joins multi-line data', async () => {
  const body = new Response('retry: 1500\nid: 7\ndata: {"a":\ndata: 1}\n\n: comment\n\nevent: endpoint\ndata: /x\n\n').body;
  const events: Array<{ data: string; event?: string }> = [];
  const cursor = await readSse(body, (e) => events.push(e));
  assert.deepEqual(events.map((e) => e.data), ['{"a":\n1}', '/x']);
  assert.equal(events[1].event, 'endpoint');
  assert.deepEqual(cursor, { lastEventId: '7', retryMs: 1500 });
});
