/**
 * A thin MCP client over Streamable HTTP (SDK v2), used by `tools`, `call`, `doctor` and the demo.
 * The OAuth work is all in the injected fetch; this module knows nothing about tokens. It speaks
 * both protocol eras: the SDK's `versionNegotiation: 'auto'` probes with `server/discover` and
 * uses 2026-07-28 (stateless, per-request `_meta`, SEP-2243 headers) with servers that offer it,
 * else the 2025-11-25 `initialize` handshake.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { McpOAuthError } from '../errors.ts';
import type { FetchLike } from '../types.ts';

export interface McpConnection {
  client: Client;
  /** Pass to every request: the timeout that leaves room for a sign-in (see connectMcp). */
  requestOptions: { timeout: number };
  serverInfo?: { name: string; version: string };
  protocolVersion?: string;
  /** 'modern': 2026-07-28 and later (no initialize, no session); 'legacy': the initialize era. */
  era: 'modern' | 'legacy';
  /** The MCP headers of the last request sent (names and values; never Authorization). */
  lastRequestHeaders(): Record<string, string>;
  close(): Promise<void>;
}

/** The SDK's own request timeout (60 s) plus the longest sign-in a request may wait for. */
export const DEFAULT_MCP_REQUEST_TIMEOUT_MS = 60_000 + 5 * 60_000;

/**
 * `requestTimeoutMs`: a request whose first 401 starts a sign-in waits for the user inside the
 * fetch. The SDK's 60-second request timeout would then report "Request timed out" for what is a
 * sign-in in progress, so the timeout leaves room for the sign-in's own (which ends in a clear
 * `signin_timeout`).
 */
export async function connectMcp(opts: {
  url: string;
  fetch: FetchLike;
  clientName?: string;
  requestTimeoutMs?: number;
  /** 'auto' (default): the newest era the server offers; 'legacy': 2025-11-25 only. */
  era?: 'auto' | 'legacy';
}): Promise<McpConnection> {
  let lastHeaders: Record<string, string> = {};
  // Records what went on the wire (for `doctor`): the MCP headers only, never the token.
  const recording: FetchLike = (input, init) => {
    const seen: Record<string, string> = {};
    new Headers(init?.headers).forEach((value, name) => {
      if (name.startsWith('mcp-')) seen[name] = value;
    });
    if (init?.method === 'POST') lastHeaders = seen;
    return opts.fetch(input, init);
  };
  const transport = new StreamableHTTPClientTransport(new URL(opts.url), { fetch: recording as typeof fetch });
  const client = new Client(
    { name: opts.clientName ?? 'mcp-oauth', version: '0.1.0' },
    { capabilities: {}, versionNegotiation: { mode: opts.era === 'legacy' ? 'legacy' : 'auto' } },
  );
  const requestOptions = { timeout: opts.requestTimeoutMs ?? DEFAULT_MCP_REQUEST_TIMEOUT_MS };
  try {
    await client.connect(transport, requestOptions);
  } catch (e) {
    await client.close().catch(() => {});
    throw asMcpError(e, opts.url);
  }
  return {
    client,
    requestOptions,
    serverInfo: client.getServerVersion() as { name: string; version: string } | undefined,
    protocolVersion: client.getNegotiatedProtocolVersion() ?? transport.protocolVersion,
    era: (client.getNegotiatedProtocolVersion() ?? transport.protocolVersion ?? '') >= '2026-07-28' ? 'modern' : 'legacy',
    lastRequestHeaders: () => ({ ...lastHeaders }),
    async close() {
      // End the session on the server (Streamable HTTP: DELETE with the session id).
      await transport.terminateSession().catch(() => {});
      await client.close().catch(() => {});
    },
  };
}

/** Our own errors (sign-in required, outage) pass through the SDK unchanged; others get context. */
export function asMcpError(e: unknown, url: string): McpOAuthError {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur; i++) {
    if (cur instanceof McpOAuthError) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  // The server is not reachable at all (refused, unknown host, reset): a transient network
  // problem with its own exit code, not an MCP protocol failure.
  const network = networkCause(e);
  if (network) {
    const host = new URL(url).host;
    return new McpOAuthError('network_error', `could not reach the MCP server at ${url}: ${network}`, {
      cause: e,
      hint: `check that ${host} is reachable (is the server running? the network up?), then retry`,
      details: { url },
    });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new McpOAuthError('mcp_error', `The MCP server at ${url} failed: ${message}`, { cause: e, hint: 'run `mcp-oauth doctor NAME` for a step-by-step check' });
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);

/** undici's "fetch failed" hides the reason (ECONNREFUSED, ENOTFOUND…) in a `cause` somewhere down the chain. */
function networkCause(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}
