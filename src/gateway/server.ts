/**
 * `mcp-oauth serve`: one local Streamable HTTP endpoint per configured server,
 * BASE/servers/NAME/mcp, for any number of clients at once, in both MCP eras. It forwards with the
 * same rules as the stdio proxy (src/proxy/forwarder.ts: one implementation) and the same
 * credential for every client. What is its own: the checks every request passes first (MCP spec
 * "Transports", Streamable HTTP "Security Warning": validate Origin, bind to localhost,
 * authenticate), the 2025-era sessions it hands out, and the HTTP shape of each answer (answer.ts).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { McpOAuthError } from '../errors.ts';
import type { GatewaySettings } from '../config/config.ts';
import { isInitializeRequest, parseRaw, requestIds, resultOf } from '../proxy/messages.ts';
import type { Logger, ServerConfig } from '../types.ts';
import { gatewayBaseUrl, gatewayEndpoint, isAllowedHost, isAllowedOrigin, serverNameFromPath } from './address.ts';
import { PostAnswer } from './answer.ts';
import { HEADER_MISMATCH, headerMismatch } from './header-check.ts';
import { secretCheck } from './secret.ts';
import { HEALTH_PATH } from './state.ts';
import { ServerRuntime, type ServerAuth } from './server-runtime.ts';

export interface GatewayOptions {
  settings: GatewaySettings;
  /** The gateway secret (secret.ts): every request but the health check must present it. */
  secret: string;
  logger: Logger;
  /** A configured server by name; undefined when there is none by that name. */
  resolveServer(name: string): Promise<ServerConfig | undefined>;
  /** The names it serves, for `/servers` and the state file. */
  serverNames(): Promise<string[]>;
  /** The authenticated fetch and sign-in coordinator for a server, made once per server. */
  authFor(server: ServerConfig): Promise<ServerAuth>;
  /** A 2025-era client session unused this long (and with no event stream open) is ended. Default 30 min. */
  idleSessionMs?: number;
  /** Largest request body accepted. Default 16 MiB. */
  maxBodyBytes?: number;
  /** TLS material, when settings name it (read by the caller). */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

export interface RunningGateway {
  url: string;
  port: number;
  close(): Promise<void>;
}

const DEFAULT_IDLE_SESSION_MS = 30 * 60_000;
const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

export async function startGateway(opts: GatewayOptions): Promise<RunningGateway> {
  const { logger, settings } = opts;
  const runtimes = new Map<string, Promise<ServerRuntime>>();
  let port = settings.port;
  const presentsSecret = secretCheck(opts.secret);

  const runtimeFor = async (name: string): Promise<ServerRuntime | undefined> => {
    const known = runtimes.get(name);
    if (known) return known;
    const server = await opts.resolveServer(name);
    if (!server) return undefined;
    const made = opts.authFor(server).then((auth) => new ServerRuntime(server, auth, logger));
    runtimes.set(name, made);
    // A failure (a bad config entry) is not cached: the user fixes it without restarting the gateway.
    made.catch(() => runtimes.delete(name));
    return made;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host and Origin.
    if (!isAllowedHost(req.headers.host, port, settings)) {
      return refuse(res, 403, `mcp-oauth gateway: requests must name a local host, not ${JSON.stringify(req.headers.host ?? '')} (DNS rebinding protection). Use ${gatewayBaseUrl({ ...settings, port })}.`);
    }
    if (!isAllowedOrigin(req.headers.origin, settings)) {
      return refuse(res, 403, `mcp-oauth gateway: requests from the web origin ${JSON.stringify(req.headers.origin)} are refused.`);
    }
    if (url.pathname === HEALTH_PATH && req.method === 'GET') return sendJson(res, 200, { service: 'mcp-oauth-gateway', pid: process.pid });
    if (!presentsSecret(req.headers.authorization)) {
      logger.warn('refused a request without the gateway secret', { path: url.pathname, presented: req.headers.authorization !== undefined });
      return refuse(res, 401, 'mcp-oauth gateway: missing or wrong gateway secret (Authorization: Bearer …). Configure the client with: mcp-oauth install CLIENT NAME --gateway', {
        'www-authenticate': 'Bearer realm="mcp-oauth-gateway"',
      });
    }
    const base = gatewayBaseUrl({ ...settings, port });
    if (url.pathname === '/servers' && req.method === 'GET') {
      const names = await opts.serverNames();
      return sendJson(res, 200, { servers: names.map((name) => ({ name, url: gatewayEndpoint(base, name) })) });
    }
    const name = serverNameFromPath(url.pathname);
    const runtime = name === undefined ? undefined : await runtimeFor(name);
    if (!runtime) {
      const names = await opts.serverNames();
      return refuse(res, 404, `mcp-oauth gateway: no configured server at ${url.pathname}. Served: ${names.map((n) => gatewayEndpoint(base, n)).join(', ') || 'none (add one: mcp-oauth add NAME URL)'}`);
    }
    if (req.method === 'POST') return post(runtime, req, res);
    if (req.method === 'GET') return listen(runtime, req, res);
    if (req.method === 'DELETE') return end(runtime, req, res);
    res.writeHead(405, { allow: 'GET, POST, DELETE' }).end();
  };

  const post = async (runtime: ServerRuntime, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const text = await readBody(req, opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    if (text === undefined) return refuse(res, 413, 'mcp-oauth gateway: the request body is too large.');
    const message = parseRaw(text);
    // JSON-RPC 2.0 §5.1: -32700 Parse error.
    if (!message) return sendJson(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
    const mismatch = headerMismatch(message.value, req.headers);
    if (mismatch) {
      const [id] = requestIds(message.value);
      return sendJson(res, 400, { jsonrpc: '2.0', id: id ?? null, error: { code: HEADER_MISMATCH, message: `Header mismatch: ${mismatch}` } });
    }
    const initialize = isInitializeRequest(message);
    const sessionId = header(req, 'mcp-session-id');
    let session = initialize ? runtime.newSession() : sessionId === undefined ? undefined : runtime.sessions.get(sessionId);
    // MCP 2025-11-25 "Session Management": an unknown session id is a 404; the client starts anew.
    if (!initialize && sessionId !== undefined && !session) return refuse(res, 404, 'Session not found', {}, -32001);
    const ids = requestIds(message.value);
    const answer = new PostAnswer(res, { ids, batch: Array.isArray(message.value), acceptsSse: accepts(req, 'text/event-stream'), logger });
    if (session) session.lastUsed = Date.now();
    let initialized = false;
    if (initialize && session) answer.setHeader('mcp-session-id', session.id);
    const sink = initialize ? (m: Parameters<typeof answer.sink>[0], s?: number) => ((initialized ||= resultOf(m.value, ids[0]) !== undefined), answer.sink(m, s)) : answer.sink;
    const abort = new AbortController();
    res.on('close', () => {
      if (answer.ended) return;
      abort.abort();
      answer.abandon();
    });
    const forwarder = session?.forwarder ?? runtime.stateless;
    const unexpect = session?.expect(ids, sink);
    try {
      await forwarder.forward(message, { sink, signal: abort.signal, waiting: (id) => answer.waits(id) });
      // The 2024-11-05 transport answers on the session's one SSE stream, after the POST was taken.
      if (forwarder.transport === 'sse') await answer.answered;
    } finally {
      unexpect?.();
    }
    if (initialize && session && !initialized) await runtime.endSession(session.id);
    if (session) session.lastUsed = Date.now();
    answer.finish();
  };

  const listen = async (runtime: ServerRuntime, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const sessionId = header(req, 'mcp-session-id');
    // MCP 2026-07-28 has no GET stream; a 2025 client without a session has nothing to listen to.
    if (sessionId === undefined) return void res.writeHead(405, { allow: 'POST' }).end();
    const session = runtime.sessions.get(sessionId);
    if (!session) return refuse(res, 404, 'Session not found', {}, -32001);
    session.lastUsed = Date.now();
    session.openStream(res);
  };

  const end = async (runtime: ServerRuntime, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const sessionId = header(req, 'mcp-session-id');
    if (sessionId === undefined) return void res.writeHead(405, { allow: 'POST' }).end();
    const ended = await runtime.endSession(sessionId);
    res.writeHead(ended ? 200 : 404).end();
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      logger.error('the gateway failed to answer a request', { error: err instanceof Error ? err.message : String(err) });
      if (res.headersSent) return void res.end();
      const text = err instanceof McpOAuthError ? `${err.message}${err.hint ? ` (${err.hint})` : ''}` : 'mcp-oauth gateway: internal error (see its log)';
      refuse(res, 500, text, {}, -32603);
    });
  };

  // No request timeout: a tool call's answer may stream for as long as the tool runs.
  const serverOptions = { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 };
  const server: Server = opts.tls
    ? process.getBuiltinModule('node:https').createServer({ ...serverOptions, ...opts.tls }, onRequest)
    : process.getBuiltinModule('node:http').createServer(serverOptions, onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(new McpOAuthError('usage', `port ${settings.port} on ${settings.host} is in use: is a gateway already running?`, {
          hint: 'mcp-oauth status, or choose another port: mcp-oauth serve --port N (and [gateway] port in config.toml)',
        }));
      } else reject(err);
    });
    server.listen(settings.port, settings.host, () => resolve());
  });
  port = (server.address() as { port: number }).port;
  const sweeper = setInterval(() => {
    for (const made of runtimes.values()) void made.then((r) => r.sweep(opts.idleSessionMs ?? DEFAULT_IDLE_SESSION_MS)).catch(() => {});
  }, 60_000);
  sweeper.unref();

  return {
    url: gatewayBaseUrl({ ...settings, port }),
    port,
    async close() {
      clearInterval(sweeper);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const all = await Promise.allSettled([...runtimes.values()]);
      await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
      server.closeAllConnections();
      await closed;
    },
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function accepts(req: IncomingMessage, type: string): boolean {
  return (header(req, 'accept') ?? '').toLowerCase().includes(type);
}

function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }).end(body);
}

/** A refusal as a JSON-RPC error (clients show its message), never naming a secret. */
function refuse(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}, code = -32600): void {
  sendJson(res, status, { jsonrpc: '2.0', id: null, error: { code, message } }, headers);
}
