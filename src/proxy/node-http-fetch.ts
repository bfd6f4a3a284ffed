/**
 * A `fetch` for the proxy's hop to the MCP server, on `node:http` / `node:https` with keep-alive
 * agents instead of undici. The proxy forwards every JSON-RPC message as one POST; with undici's
 * `fetch()` about a third of its CPU per call went to undici and WHATWG streams, and the first
 * request waited ~50–70 ms for undici to load. Same contract as `fetch` where this code base
 * relies on it:
 *
 * - a network failure rejects with `TypeError('fetch failed', { cause })`, the Node error (with its
 *   `code`: ECONNREFUSED, ENOTFOUND…) as the cause, as undici does; `asMcpError` (src/client/mcp.ts)
 *   and `describeNetworkError` (src/oauth/tokens.ts) read it there;
 * - `signal` aborts the request (rejecting with the signal's reason) or, once the answer is
 *   streaming, errors its body with that reason;
 * - the body streams as it arrives (SSE), with backpressure; never buffered;
 * - redirects are never followed, whatever `redirect` says (see `redirectPolicy`).
 *
 * The response is a `NodeHttpResponse` (see node-http-response.ts for why not undici's `Response`).
 */
import type * as Http from 'node:http';
import type { Agent, ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import type { Readable } from 'node:stream';
import type { FetchLike } from '../types.ts';
import { isNullBodyStatus, NodeHttpResponse, ResponseHeaders, type BodySource } from './node-http-response.ts';

export interface NodeHttpFetchOptions {
  /** Sockets per origin (default 256): every request waiting on an SSE answer holds one. */
  maxSockets?: number;
  /** Idle sockets kept per origin (default 16). */
  maxFreeSockets?: number;
  /** Give up connecting after this long (default 10 s, as undici). */
  connectTimeoutMs?: number;
}

export interface NodeHttpFetch extends FetchLike {
  /** Closes every pooled socket (tests; a process that exits needs nothing: idle sockets are unref'd). */
  close(): void;
}

const DEFAULT_MAX_SOCKETS = 256;
const DEFAULT_MAX_FREE_SOCKETS = 16;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Errors on a reused keep-alive socket that mean the server had closed it before our request. */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
const MAX_STALE_RETRIES = 4;

/** A string goes out as is: Node then writes headers and body in one `write`, no Buffer copy. */
type Body = string | Buffer | undefined;

interface Target {
  href: string;
  https: boolean;
  hostname: string;
  port: string;
  path: string;
}

/** Where the request goes. The proxy posts to one URL all day: the last one parsed is kept. */
function targetOf(input: string | URL, last: Target | undefined): Target {
  const href = typeof input === 'string' ? input : input.href;
  if (last && last.href === href) return last;
  const url = new URL(href);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw failed(new Error(`unsupported URL scheme ${url.protocol}`));
  // Fetch spec "Request constructor": a URL with credentials is a TypeError.
  if (url.username || url.password) throw new TypeError('Request cannot be constructed from a URL that includes credentials');
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { href, https: url.protocol === 'https:', hostname, port: url.port, path: `${url.pathname}${url.search}` };
}

/** Headers in any HeadersInit form, as one lower-case record (repeats joined, as Headers does). */
export function headerRecord(init: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (!init) return out;
  const add = (name: string, value: string) => {
    const key = name.toLowerCase();
    const v = String(value).trim();
    out[key] = out[key] === undefined ? v : `${out[key]}, ${v}`;
  };
  if (Array.isArray(init)) {
    for (const pair of init) add(pair[0]!, pair[1]!);
  } else if (typeof (init as Headers).forEach === 'function' && typeof (init as Headers).get === 'function') {
    (init as Headers).forEach((value, name) => add(name, value));
  } else {
    for (const name of Object.keys(init)) add(name, (init as Record<string, string>)[name]!);
  }
  return out;
}

/**
 * The bytes to send, and the content type fetch would add for them. Strings, bytes and
 * URLSearchParams are what this code base sends (auth-fetch buffers streams to bytes); anything
 * else is serialised by a real Request (rare; loads undici).
 */
interface OutgoingBody {
  bytes: Body;
  type?: string;
}

function bodyBytes(body: RequestInit['body']): OutgoingBody | Promise<OutgoingBody> {
  if (body === undefined || body === null) return { bytes: undefined };
  if (typeof body === 'string') return { bytes: body, type: 'text/plain;charset=UTF-8' };
  if (ArrayBuffer.isView(body)) return { bytes: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
  if (body instanceof ArrayBuffer) return { bytes: Buffer.from(body) };
  if (body instanceof URLSearchParams) return { bytes: body.toString(), type: 'application/x-www-form-urlencoded;charset=UTF-8' };
  return serialisedBody(body);
}

async function serialisedBody(body: RequestInit['body']): Promise<OutgoingBody> {
  const request = new Request('http://body.invalid/', { method: 'POST', body: body as BodyInit, duplex: 'half' } as RequestInit);
  return { bytes: Buffer.from(await request.arrayBuffer()), type: request.headers.get('content-type') ?? undefined };
}

/**
 * Redirects are never followed, for every `redirect` mode: 'manual' returns the 3xx as is (as
 * Node's fetch does), and so does the default 'follow'. The MCP hop carries a bearer token, and a
 * token goes only to the server it was issued for (RFC 6750 §5.3, RFC 9700 §4.10); the token and
 * registration endpoints are called with 'manual' already. 'error' rejects, as fetch does.
 */
function redirectPolicy(mode: RequestInit['redirect'], status: number): Error | undefined {
  if (mode === 'error' && status >= 300 && status < 400) return failed(new Error(`unexpected redirect (HTTP ${status})`));
  return undefined;
}

function failed(cause: unknown): TypeError {
  return new TypeError('fetch failed', { cause });
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** Content-Encoding the server applied anyway (we do not ask for it): decoded as fetch would. */
function decoded(res: IncomingMessage): Readable {
  const encoding = (res.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding !== 'gzip' && encoding !== 'x-gzip' && encoding !== 'deflate' && encoding !== 'br') return res;
  const zlib = process.getBuiltinModule('node:zlib');
  const flush = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  const decoder =
    encoding === 'br'
      ? zlib.createBrotliDecompress({ flush: zlib.constants.BROTLI_OPERATION_FLUSH, finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH })
      : encoding === 'deflate'
        ? zlib.createInflate(flush)
        : zlib.createGunzip(flush);
  res.on('error', (err) => decoder.destroy(err));
  // Errors reach the body's reader through its own listeners; an unread body must not crash.
  decoder.on('error', () => {});
  decoder.on('close', () => {
    if (!res.complete) res.destroy();
  });
  return res.pipe(decoder);
}

export function createNodeHttpFetch(opts: NodeHttpFetchOptions = {}): NodeHttpFetch {
  const agentOptions = {
    keepAlive: true,
    maxSockets: opts.maxSockets ?? DEFAULT_MAX_SOCKETS,
    maxFreeSockets: opts.maxFreeSockets ?? DEFAULT_MAX_FREE_SOCKETS,
    scheduling: 'lifo' as const,
  };
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  // Not `import … from 'node:http'`: the ESM facade of node:http reads every export, and its
  // lazy `WebSocket`/`EventSource` exports load undici (~45 ms) on the way.
  const http = process.getBuiltinModule('node:http');
  const httpAgent = new http.Agent(agentOptions);
  let httpsAgent: Agent | undefined;
  let httpsRequest: typeof Http.request | undefined;
  let lastTarget: Target | undefined;

  const fetch = async (input: string | URL, init: RequestInit = {}): Promise<Response> => {
    const signal = init.signal ?? undefined;
    if (signal?.aborted) throw abortReason(signal);
    const method = (init.method ?? 'GET').toUpperCase();
    const target = targetOf(input, lastTarget);
    lastTarget = target;
    const headers = headerRecord(init.headers);
    const outgoing = bodyBytes(init.body);
    const { bytes, type } = outgoing instanceof Promise ? await outgoing : outgoing;
    if (bytes !== undefined && (method === 'GET' || method === 'HEAD')) throw new TypeError('Request with GET/HEAD method cannot have body.');
    if (type && headers['content-type'] === undefined) headers['content-type'] = type;
    if (bytes !== undefined) headers['content-length'] = String(typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length);
    else if (method === 'POST' || method === 'PUT') headers['content-length'] = '0';
    // What undici sends when the caller does not say (some servers insist on an Accept).
    headers.accept ??= '*/*';
    headers['user-agent'] ??= 'node';

    let request = http.request;
    let agent: Agent = httpAgent;
    if (target.https) {
      // node:https (and tls) load on the first https request only.
      const https = process.getBuiltinModule('node:https');
      httpsAgent ??= new https.Agent(agentOptions);
      httpsRequest ??= https.request;
      request = httpsRequest;
      agent = httpsAgent;
    }
    const options: RequestOptions = { agent, method, hostname: target.hostname, port: target.port || undefined, path: target.path, headers };
    return send({ request, options, bytes, signal, method, url: target.href, redirect: init.redirect, connectTimeoutMs });
  };
  return Object.assign(fetch, {
    close() {
      httpAgent.destroy();
      httpsAgent?.destroy();
    },
  });
}

interface SendArgs {
  request: typeof Http.request;
  options: RequestOptions;
  bytes: Body;
  signal: AbortSignal | undefined;
  method: string;
  url: string;
  redirect: RequestInit['redirect'];
  connectTimeoutMs: number;
}

function send(args: SendArgs, attempt = 0): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const { signal } = args;
    let req: ClientRequest;
    try {
      req = args.request(args.options);
    } catch (err) {
      // Invalid header name or value: fetch throws a TypeError too.
      reject(err instanceof TypeError ? err : new TypeError(err instanceof Error ? err.message : String(err), { cause: err }));
      return;
    }
    let response: IncomingMessage | undefined;
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      const reason = abortReason(signal!);
      // Before the answer: the promise rejects; after: the body (if still flowing) errors.
      if (response) response.destroy(reason instanceof Error ? reason : new Error(String(reason)));
      req.destroy();
      reject(reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    // The listener lives until the exchange is over: the proxy passes one long-lived signal to
    // every request, and listeners must not pile up on it.
    req.once('close', () => signal?.removeEventListener('abort', onAbort));

    req.on('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error(`connect timeout after ${args.connectTimeoutMs} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
      }, args.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });

    req.on('error', (err: NodeJS.ErrnoException) => {
      if (aborted) return;
      if (response) return; // reported through the body
      // A keep-alive socket the server closed while it sat idle: the request never reached the
      // server, so sending it again on a fresh socket is safe (Node docs, `request.reusedSocket`).
      if (req.reusedSocket && STALE_SOCKET_CODES.has(err.code ?? '') && attempt < MAX_STALE_RETRIES && !signal?.aborted) {
        signal?.removeEventListener('abort', onAbort);
        send(args, attempt + 1).then(resolve, reject);
        return;
      }
      reject(failed(err));
    });

    req.on('response', (res) => {
      response = res;
      const status = res.statusCode ?? 0;
      const refused = redirectPolicy(args.redirect, status);
      if (refused) {
        res.destroy();
        reject(refused);
        return;
      }
      const nullBody = args.method === 'HEAD' || isNullBodyStatus(status);
      if (nullBody) res.resume();
      const source: BodySource = {
        readable: nullBody ? null : decoded(res),
        failure: (err) => (aborted ? abortReason(signal!) : new TypeError('terminated', { cause: err })),
        cancel: () => {
          // A complete body is drained so the socket goes back to the pool (resolved once it is:
          // the next request then finds it); else the socket goes.
          if (!res.complete || res.destroyed) {
            res.destroy();
            return Promise.resolve();
          }
          return new Promise<void>((resolve) => {
            res.once('end', resolve);
            res.once('close', resolve);
            res.resume();
          });
        },
      };
      const headers = new ResponseHeaders(res.headers);
      resolve(new NodeHttpResponse({ status, statusText: res.statusMessage ?? '', headers, url: args.url, source }) as unknown as Response);
    });

    req.end(args.bytes);
  });
}
