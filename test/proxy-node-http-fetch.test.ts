import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { createAuthenticatedFetch } from '../src/lifecycle/auth-fetch.ts';
import type { TokenManager } from '../src/lifecycle/token-manager.ts';
import { describeNetworkError } from '../src/oauth/tokens.ts';
import { createNodeHttpFetch, headerRecord } from '../src/proxy/node-http-fetch.ts';
import { readSse, sseBodyOf } from '../src/proxy/sse.ts';
import { discardBody } from '../src/proxy/upstream.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

interface TestServer {
  url: string;
  connections: number;
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }>;
  routes: Map<string, Handler>;
  close(): Promise<void>;
}

async function startServer(): Promise<TestServer> {
  const routes = new Map<string, Handler>();
  const state: TestServer = {
    url: '',
    connections: 0,
    requests: [],
    routes,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      state.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const handler = routes.get(new URL(req.url!, 'http://x').pathname);
      if (handler) handler(req, res, body);
      else res.writeHead(404, { 'content-type': 'text/plain' }).end('no such route');
    });
  });
  server.on('connection', () => state.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

/** Fails the test instead of hanging when something that must happen does not. */
function within<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]);
}

describe('createNodeHttpFetch', () => {
  let server: TestServer;
  const fetch = createNodeHttpFetch();
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    fetch.close();
    await server.close();
  });

  test('status, status text, headers and a JSON body', async () => {
    server.routes.set('/json', (_req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.writeHead(201, 'Made It', { 'content-type': 'application/json', 'x-thing': 'yes' }).end('{"hello":"world"}');
    });
    const res = await fetch(`${server.url}/json`);
    assert.equal(res.status, 201);
    assert.equal(res.statusText, 'Made It');
    assert.equal(res.ok, true);
    assert.equal(res.headers.get('Content-Type'), 'application/json');
    assert.equal(res.headers.get('X-THING'), 'yes');
    assert.equal(res.headers.get('missing'), null);
    assert.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2']);
    assert.deepEqual(
      [...(res.headers as unknown as Iterable<[string, string]>)].filter(([k]) => k === 'set-cookie'),
      [['set-cookie', 'a=1'], ['set-cookie', 'b=2']],
    );
    assert.throws(() => res.headers.set('x', 'y'), TypeError);
    assert.equal(res.bodyUsed, false);
    assert.deepEqual(await res.json(), { hello: 'world' });
    assert.equal(res.bodyUsed, true);
    await assert.rejects(res.text(), TypeError, 'a body reads once');
  });

  test('error statuses keep their body; 204 and HEAD have none', async () => {
    const missing = await fetch(`${server.url}/nowhere`);
    assert.equal(missing.status, 404);
    assert.equal(missing.ok, false);
    assert.equal(await missing.text(), 'no such route');

    server.routes.set('/empty', (_req, res) => res.writeHead(204).end());
    const empty = await fetch(`${server.url}/empty`, { method: 'POST', body: '{}' });
    assert.equal(empty.status, 204);
    assert.equal(empty.body, null);
    assert.equal(await empty.text(), '');

    server.routes.set('/head', (_req, res) => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end());
    const head = await fetch(`${server.url}/head`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, null);
    assert.equal(head.headers.get('content-length'), '5');

    server.routes.set('/accepted', (_req, res) => res.writeHead(202).end());
    const accepted = await fetch(`${server.url}/accepted`, { method: 'POST', body: '{}' });
    assert.equal(accepted.status, 202);
    await accepted.body?.cancel();
  });

  test('an SSE body streams: the first event arrives before the response ends', async () => {
    let sendRest!: () => void;
    const rest = new Promise<void>((resolve) => (sendRest = resolve));
    server.routes.set('/sse', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('id: 1\ndata: {"first":true}\n\n');
      void rest.then(() => res.end('id: 2\ndata: {"second":true}\n\n'));
    });
    const res = await fetch(`${server.url}/sse`, { method: 'POST', body: '{}' });
    const seen: string[] = [];
    const read = readSse(res.body, (e) => {
      seen.push(e.data);
      // The server holds the rest back until the first event got here: a buffering fetch hangs.
      if (seen.length === 1) sendRest();
    });
    const cursor = await within(read, 'the first SSE event before the end of the response');
    assert.deepEqual(seen, ['{"first":true}', '{"second":true}']);
    assert.equal(cursor.lastEventId, '2');
  });

  test('the proxy reads SSE through readChunks: no web stream, events before the end, a failing reader drops the connection', async () => {
    let sendRest!: () => void;
    const rest = new Promise<void>((resolve) => (sendRest = resolve));
    server.routes.set('/sse-chunks', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('id: a\ndata: {"first":true}\n\n');
      void rest.then(() => res.end('id: b\ndata: {"second":true}\n\n'));
    });
    const res = await fetch(`${server.url}/sse-chunks`, { method: 'POST', body: '{}' });
    const body = sseBodyOf(res);
    assert.ok(body && !(body instanceof ReadableStream), 'the chunked path, not the web stream');
    const seen: string[] = [];
    const cursor = await within(
      readSse(body, (e) => {
        seen.push(e.data);
        if (seen.length === 1) sendRest();
      }),
      'the first SSE event before the end of the response',
    );
    assert.deepEqual(seen, ['{"first":true}', '{"second":true}']);
    assert.equal(cursor.lastEventId, 'b');
    assert.equal(res.bodyUsed, true);

    let closed!: () => void;
    const connectionClosed = new Promise<void>((resolve) => (closed = resolve));
    server.routes.set('/sse-refused', (_req, res2) => {
      res2.writeHead(200, { 'content-type': 'text/event-stream' });
      res2.write('event: endpoint\ndata: https://elsewhere.example/\n\n');
      res2.on('close', closed);
    });
    const refused = await fetch(`${server.url}/sse-refused`);
    await assert.rejects(
      readSse(sseBodyOf(refused), () => {
        throw new Error('refused by the reader');
      }),
      /refused by the reader/,
    );
    await within(connectionClosed, 'the server to see the stream dropped');
  });

  test('POST bodies: string, bytes, ArrayBuffer, URLSearchParams, with the content type fetch would set', async () => {
    server.routes.set('/echo', (_req, res) => res.writeHead(200).end());
    const cases: Array<{ body: RequestInit['body']; bytes: string; type: string }> = [
      { body: '{"a":1}', bytes: '{"a":1}', type: 'text/plain;charset=UTF-8' },
      { body: new TextEncoder().encode('bytes'), bytes: 'bytes', type: '' },
      { body: new TextEncoder().encode('buffer').buffer, bytes: 'buffer', type: '' },
      { body: new URLSearchParams({ grant_type: 'refresh_token', x: 'a b' }), bytes: 'grant_type=refresh_token&x=a+b', type: 'application/x-www-form-urlencoded;charset=UTF-8' },
      { body: new Blob(['blob body'], { type: 'application/octet-stream' }), bytes: 'blob body', type: 'application/octet-stream' },
      { body: 'ünïcödé', bytes: 'ünïcödé', type: 'text/plain;charset=UTF-8' },
    ];
    for (const c of cases) {
      const res = await fetch(`${server.url}/echo`, { method: 'POST', body: c.body });
      await res.text();
      const seen = server.requests.at(-1)!;
      assert.equal(seen.method, 'POST');
      assert.equal(seen.body.toString(), c.bytes);
      assert.equal(seen.headers['content-length'], String(Buffer.byteLength(c.bytes)));
      assert.equal(seen.headers['content-type'] ?? '', c.type);
    }
    // A content type the caller set wins.
    await (await fetch(`${server.url}/echo`, { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } })).text();
    assert.equal(server.requests.at(-1)!.headers['content-type'], 'application/json');
  });

  test('request headers as a record, a Headers object or pairs', async () => {
    server.routes.set('/h', (_req, res) => res.writeHead(200).end());
    for (const headers of [{ 'X-One': '1', Authorization: 'Bearer t' }, new Headers({ 'x-one': '1', authorization: 'Bearer t' }), [['x-one', '1'], ['Authorization', 'Bearer t']] as [string, string][]]) {
      await (await fetch(`${server.url}/h`, { headers })).text();
      const seen = server.requests.at(-1)!.headers;
      assert.equal(seen['x-one'], '1');
      assert.equal(seen.authorization, 'Bearer t');
    }
    assert.deepEqual(headerRecord([['a', '1'], ['A', '2']]), { a: '1, 2' });
  });

  test('keep-alive: sequential requests share one connection', async () => {
    const own = createNodeHttpFetch();
    const local = await startServer();
    try {
      local.routes.set('/ok', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
      for (let i = 0; i < 5; i++) await (await own(`${local.url}/ok`, { method: 'POST', body: '{}' })).text();
      // SSE answers read to the end free their socket too.
      local.routes.set('/sse', (_req, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end('data: {}\n\n'));
      for (let i = 0; i < 3; i++) await readSse((await own(`${local.url}/sse`, { method: 'POST', body: '{}' })).body, () => {});
      // So does a discarded 202 (a notification taken), and the next request still finds the socket.
      local.routes.set('/accepted', (_req, res) => res.writeHead(202).end());
      await discardBody(await own(`${local.url}/accepted`, { method: 'POST', body: '{}' }));
      await readSse(sseBodyOf(await own(`${local.url}/sse`, { method: 'POST', body: '{}' })), () => {});
      assert.equal(local.requests.length, 10);
      assert.equal(local.connections, 1);
    } finally {
      own.close();
      await local.close();
    }
  });

  test('a keep-alive socket the server dropped is replaced, and the request sent again', async () => {
    const own = createNodeHttpFetch();
    const local = await startServer();
    try {
      let served = 0;
      local.routes.set('/flaky', (req, res) => {
        // The second request on the first connection finds it closed (as after an idle timeout).
        if (++served === 2) return req.socket.destroy();
        res.writeHead(200).end(`answer ${served}`);
      });
      assert.equal(await (await own(`${local.url}/flaky`, { method: 'POST', body: '{}' })).text(), 'answer 1');
      assert.equal(await (await own(`${local.url}/flaky`, { method: 'POST', body: '{}' })).text(), 'answer 3');
      assert.equal(local.connections, 2);
    } finally {
      own.close();
      await local.close();
    }
  });

  test('abort before the answer rejects with the signal reason and drops the request', async () => {
    let closed!: () => void;
    const requestClosed = new Promise<void>((resolve) => (closed = resolve));
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    server.routes.set('/hang', (_req, res) => {
      res.on('close', closed);
      arrived();
    });
    const controller = new AbortController();
    const pending = fetch(`${server.url}/hang`, { method: 'POST', body: '{}', signal: controller.signal });
    await within(requestArrived, 'the request');
    controller.abort();
    await assert.rejects(pending, (err: Error) => err.name === 'AbortError');
    await within(requestClosed, 'the server to see the request dropped');

    const reason = new Error('custom reason');
    const c2 = new AbortController();
    c2.abort(reason);
    const before = server.requests.length;
    await assert.rejects(fetch(`${server.url}/hang`, { signal: c2.signal }), (err) => err === reason);
    assert.equal(server.requests.length, before, 'an aborted signal sends nothing');
  });

  test('abort in the middle of a streamed body errors the stream with the reason', async () => {
    server.routes.set('/stream', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"n":1}\n\n');
    });
    const controller = new AbortController();
    const res = await fetch(`${server.url}/stream`, { signal: controller.signal });
    const reader = res.body!.getReader();
    const first = await within(reader.read(), 'the first chunk');
    assert.match(Buffer.from(first.value!).toString(), /"n":1/);
    controller.abort();
    await assert.rejects(reader.read(), (err: Error) => err.name === 'AbortError');
  });

  test('a body the server cuts off fails with a TypeError, not a clean end', async () => {
    server.routes.set('/cut', (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"partial":');
      setTimeout(() => req.socket.destroy(), 20);
    });
    const res = await fetch(`${server.url}/cut`);
    await assert.rejects(res.text(), (err: Error) => err instanceof TypeError && err.message === 'terminated');
  });

  test('cancelling a streamed body closes the connection; listeners on a shared signal do not pile up', async () => {
    let closed!: () => void;
    const connectionClosed = new Promise<void>((resolve) => (closed = resolve));
    server.routes.set('/forever', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': keep-alive\n\n');
      res.on('close', closed);
    });
    const shared = new AbortController();
    const res = await fetch(`${server.url}/forever`, { signal: shared.signal });
    await res.body!.cancel();
    await within(connectionClosed, 'the server to see the stream closed');
    // discardBody (no web stream) drops an unfinished body the same way.
    let closedAgain!: () => void;
    const connectionClosedAgain = new Promise<void>((resolve) => (closedAgain = resolve));
    server.routes.set('/forever', (_req, res2) => {
      res2.writeHead(200, { 'content-type': 'text/event-stream' });
      res2.write(': keep-alive\n\n');
      res2.on('close', closedAgain);
    });
    await discardBody(await fetch(`${server.url}/forever`, { signal: shared.signal }));
    await within(connectionClosedAgain, 'the server to see the discarded stream closed');

    server.routes.set('/ok', (_req, res2) => res2.writeHead(200).end('ok'));
    for (let i = 0; i < 20; i++) await (await fetch(`${server.url}/ok`, { method: 'POST', body: '{}', signal: shared.signal })).text();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(getEventListeners(shared.signal, 'abort').length, 0);
  });

  test('connection refused: TypeError("fetch failed") with the Node error as cause', async () => {
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const err = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST', body: '{}' }).then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof TypeError);
    assert.equal(err.message, 'fetch failed');
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    assert.equal(describeNetworkError(err), 'fetch failed (ECONNREFUSED)');
  });

  test('redirects are returned, never followed (a bearer token must not travel to the target)', async () => {
    server.routes.set('/moved', (_req, res) => res.writeHead(302, { location: '/target' }).end());
    server.routes.set('/target', (_req, res) => res.writeHead(200).end('followed'));
    const before = server.requests.filter((r) => r.url === '/target').length;
    for (const redirect of [undefined, 'follow', 'manual'] as const) {
      const res = await fetch(`${server.url}/moved`, { redirect, headers: { authorization: 'Bearer secret' } });
      assert.equal(res.status, 302);
      assert.equal(res.headers.get('location'), '/target');
      await res.text();
    }
    assert.equal(server.requests.filter((r) => r.url === '/target').length, before);
    await assert.rejects(fetch(`${server.url}/moved`, { redirect: 'error' }), TypeError);
  });

  test('a gzip body the server sent anyway is decoded', async () => {
    server.routes.set('/gz', (_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync('{"zipped":true}')));
    const res = await fetch(`${server.url}/gz`);
    assert.deepEqual(await res.json(), { zipped: true });
  });

  test('under the authenticated fetch: exactly one Authorization, whatever form the headers take', async () => {
    server.routes.set('/mcp', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    const manager = { serverName: 'test', tokenForRequest: async () => 'the-token', dpopKeyFor: () => undefined, signIns: 0 } as unknown as TokenManager;
    const authFetch = createAuthenticatedFetch(manager, { fetch, allowedOrigin: new URL(server.url).origin });
    const forms: HeadersInit[] = [
      { Authorization: 'Basic old', 'content-type': 'application/json' },
      [['authorization', 'Basic old'], ['content-type', 'application/json']],
      new Headers({ authorization: 'Basic old', 'content-type': 'application/json' }),
    ];
    for (const headers of forms) {
      await (await authFetch(`${server.url}/mcp`, { method: 'POST', headers, body: '{"jsonrpc":"2.0"}' })).text();
      const seen = server.requests.at(-1)!;
      assert.equal(seen.headers.authorization, 'Bearer the-token');
      assert.equal(seen.headers['content-type'], 'application/json');
      assert.equal(seen.body.toString(), '{"jsonrpc":"2.0"}');
    }
    await assert.rejects(authFetch('http://127.0.0.2:1/mcp'), /Refusing to send the access token/);
  });

  test('clone() gives two readable copies; GET with a body is refused', async () => {
    server.routes.set('/twice', (_req, res) => res.writeHead(200).end('same'));
    const res = await fetch(`${server.url}/twice`);
    const copy = res.clone();
    assert.equal(await res.text(), 'same');
    assert.equal(await copy.text(), 'same');
    await assert.rejects(fetch(`${server.url}/twice`, { method: 'GET', body: 'x' }), TypeError);
  });
});
