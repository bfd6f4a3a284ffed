/**
 * The benchmark's remote MCP server on 127.0.0.1, protected by one static bearer token (RFC 6750
 * §2.1 header; anything else gets 401 with a `WWW-Authenticate: Bearer` challenge, RFC 6750 §3).
 * `protocol` picks the era(s), like the sandbox's (src/sandbox/eras.ts):
 * - '2025-11-25': SDK 1.x `McpServer` behind `StreamableHTTPServerTransport` (stateful sessions);
 * - '2026-07-28': SDK v2 `createMcpHandler` with `legacy: 'reject'` (stateless, a server instance
 *   per request, SEP-2243 headers enforced: what a strict 2026 server does);
 * - 'dual' (default): the SDK v2 handler for requests carrying the 2026-07-28 `_meta` envelope, the
 *   SDK 1.x sessions for the rest (the SDK's own `isLegacyRequest` decides).
 *
 * It serves MCP at /mcp, and at /fleet/ID/mcp as well: the fleet figures (bench/fleet.ts) configure
 * ten servers with ten distinct URLs (ten resources, ten credentials) that all land here.
 *
 * Tools: `echo {text}` and `big {kb}` (a text result of kb KiB). It counts what the proxies do to it
 * (sessions opened, DELETEs, GET streams, requests outside the MCP path) so the bench can check
 * "one session per start, DELETE on exit".
 *
 * Run as a child process (`node bench/server.ts`, token in $BENCH_TOKEN, era in $BENCH_PROTOCOL): it prints one JSON line
 * `{"url": …}` on stdout and serves its counters at GET /__bench/stats. A separate process keeps the
 * server's work off the bench driver's event loop.
 */
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { McpServer as ModernMcpServer, createMcpHandler, isLegacyRequest } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { sendWebResponse, webRequestOf } from '../src/sandbox/web-bridge.ts';

export type BenchProtocol = 'dual' | '2026-07-28' | '2025-11-25';
export const BENCH_PROTOCOLS: readonly BenchProtocol[] = ['dual', '2026-07-28', '2025-11-25'];

export interface BenchServerStats {
  /** Every HTTP request, any path. */
  requests: number;
  /** Requests answered 401 (no or wrong bearer token). */
  unauthorized: number;
  /** MCP sessions created (an initialize that got a session id). */
  sessionsCreated: number;
  /** DELETE requests carrying a session id (MCP spec "Session Management": client ends a session). */
  deletes: number;
  /** GET requests on the MCP path (standalone SSE streams). */
  gets: number;
  /** Requests outside the MCP path (e.g. OAuth discovery probes). */
  otherPaths: number;
  /** TCP connections accepted. */
  connections: number;
  /** "METHOD /path" of the requests outside the MCP path, with counts. */
  otherPathsSeen: Record<string, number>;
  /** Requests served by the 2026-07-28 handler (stateless, no session). */
  modernRequests: number;
  /** Answers 400–499 other than 401 on the MCP path: refused eras, header mismatches, 404/405. */
  rejected: number;
}

export interface BenchServer {
  url: string;
  /** The server's own process when it runs in a child (for CPU figures); undefined in-process. */
  pid: number | undefined;
  stats(): Promise<BenchServerStats>;
  close(): Promise<void>;
}

const STATS_PATH = '/__bench/stats';
const MCP_PATH = '/mcp';
/** The fleet's per-server paths: /fleet/ID/mcp. */
const FLEET_PATH = /^\/fleet\/[A-Za-z0-9_-]+\/mcp$/;

function isMcpPath(pathname: string): boolean {
  return pathname === MCP_PATH || FLEET_PATH.test(pathname);
}

/** The same two tools on an SDK v2 server (one instance per 2026-07-28 request). */
function modernTools(): ModernMcpServer {
  const server = new ModernMcpServer({ name: 'mcp-oauth-bench', version: '0.1.0' });
  const bigTexts = new Map<number, string>();
  server.registerTool('echo', { description: 'Echo the text back.', inputSchema: z.object({ text: z.string() }) }, async ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
  server.registerTool('big', { description: 'A text result of `kb` KiB.', inputSchema: z.object({ kb: z.number().int().min(0).max(16384) }) }, async ({ kb }) => {
    let text = bigTexts.get(kb);
    if (text === undefined) bigTexts.set(kb, (text = 'x'.repeat(kb * 1024)));
    return { content: [{ type: 'text', text }] };
  });
  return server;
}

function tools(): McpServer {
  const server = new McpServer({ name: 'mcp-oauth-bench', version: '0.1.0' });
  const bigTexts = new Map<number, string>();
  server.registerTool('echo', { description: 'Echo the text back.', inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
  server.registerTool('big', { description: 'A text result of `kb` KiB.', inputSchema: { kb: z.number().int().min(0).max(16384) } }, async ({ kb }) => {
    let text = bigTexts.get(kb);
    if (text === undefined) bigTexts.set(kb, (text = 'x'.repeat(kb * 1024)));
    return { content: [{ type: 'text', text }] };
  });
  return server;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

/** The server in this process. */
export async function startBenchServer(opts: { token: string; protocol?: BenchProtocol }): Promise<BenchServer> {
  const protocol = opts.protocol ?? 'dual';
  const counters: BenchServerStats = {
    requests: 0, unauthorized: 0, sessionsCreated: 0, deletes: 0, gets: 0, otherPaths: 0, connections: 0, otherPathsSeen: {}, modernRequests: 0, rejected: 0,
  };
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const expected = `Bearer ${opts.token}`;
  const modern = protocol === '2025-11-25' ? undefined : createMcpHandler(() => modernTools(), { legacy: 'reject' });
  let origin = '';

  async function serveModern(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    counters.modernRequests += 1;
    const aborted = new AbortController();
    res.once('close', () => aborted.abort());
    const request = webRequestOf(req, `${origin}${req.url ?? MCP_PATH}`, aborted.signal);
    await sendWebResponse(await modern!.fetch(request, { parsedBody: body }), res);
  }

  async function isModern(req: IncomingMessage, body: unknown): Promise<boolean> {
    if (!modern) return false;
    if (protocol === '2026-07-28') return true;
    return !(await isLegacyRequest(webRequestOf(req, `${origin}${MCP_PATH}`, new AbortController().signal), body));
  }

  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.headers.authorization !== expected) {
      // RFC 6750 §3.1: a missing or wrong token gets 401 and a Bearer challenge (no metadata here).
      counters.unauthorized += 1;
      return sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    if (await isModern(req, body)) return serveModern(req, res, body);
    if (req.method === 'GET') counters.gets += 1;
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      if (req.method === 'DELETE') counters.deletes += 1;
      const transport = sessions.get(sessionId);
      // MCP spec "Session Management": an unknown session is 404, the client re-initializes.
      if (!transport) return sendJson(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      return transport.handleRequest(req, res, body);
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: no valid session ID' }, id: null });
    }
    const server = tools();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        counters.sessionsCreated += 1;
        sessions.set(id, transport);
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
      },
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  const http = createServer((req, res) => {
    counters.requests += 1;
    const { pathname } = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (pathname === STATS_PATH) return sendJson(res, 200, counters);
    if (!isMcpPath(pathname)) {
      counters.otherPaths += 1;
      const what = `${req.method} ${pathname}`;
      counters.otherPathsSeen[what] = (counters.otherPathsSeen[what] ?? 0) + 1;
      return sendJson(res, 404, { error: 'not_found' });
    }
    res.once('finish', () => {
      if (res.statusCode >= 400 && res.statusCode < 500 && res.statusCode !== 401) counters.rejected += 1;
    });
    handleMcp(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: (err as Error).message }, id: null });
      else res.destroy();
    });
  });
  http.on('connection', () => (counters.connections += 1));
  // The proxies hold keep-alive connections and SSE streams; close() must not wait for them.
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;
  return {
    url: `http://127.0.0.1:${port}${MCP_PATH}`,
    pid: undefined,
    stats: async () => ({ ...counters, otherPathsSeen: { ...counters.otherPathsSeen } }),
    async close() {
      await modern?.close();
      for (const transport of sessions.values()) await transport.close().catch(() => {});
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/**
 * The counters over a connection of their own (no agent: `Connection: close`), so every stats
 * request opens exactly one TCP connection, whatever pool an in-process client keeps: cold start
 * counts the connections a start opened as the difference minus this one.
 */
function statsOver(url: string): Promise<BenchServerStats> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as BenchServerStats);
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** The server in a child process (node bench/server.ts); stats over HTTP. */
export async function startBenchServerProcess(opts: { token: string; protocol?: BenchProtocol }): Promise<BenchServer> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    env: { ...process.env, BENCH_TOKEN: opts.token, BENCH_PROTOCOL: opts.protocol ?? 'dual' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const firstLine = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the bench server exited with ${code} before it listened`)));
  });
  const { url } = JSON.parse(firstLine) as { url: string };
  const statsUrl = new URL(STATS_PATH, url).href;
  return {
    url,
    pid: child.pid,
    stats: () => statsOver(statsUrl),
    async close() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

if (import.meta.main) {
  const token = process.env.BENCH_TOKEN;
  if (!token) {
    process.stderr.write('bench/server.ts needs $BENCH_TOKEN\n');
    process.exit(2);
  }
  const protocol = process.env.BENCH_PROTOCOL || 'dual';
  if (!(BENCH_PROTOCOLS as readonly string[]).includes(protocol)) {
    process.stderr.write(`$BENCH_PROTOCOL is one of ${BENCH_PROTOCOLS.join(', ')}, not ${protocol}\n`);
    process.exit(2);
  }
  const server = await startBenchServer({ token, protocol: protocol as BenchProtocol });
  process.stdout.write(JSON.stringify({ url: server.url }) + '\n');
  // The parent ends our stdin when it is done (or dies): shut down then.
  process.stdin.resume();
  process.stdin.once('end', () => void server.close().then(() => process.exit(0)));
}
