// Which protocol era the sandbox MCP server speaks, and the 2026-07-28 endpoint (SDK v2
// `createMcpHandler`) mounted on node:http next to the SDK 1.x session transport of 2025-11-25.
//
// - 'dual' (default): a request carrying the 2026-07-28 per-request `_meta` envelope is served by
//   the SDK v2 handler; `initialize`, session requests, GET and DELETE by the SDK 1.x transport
//   (MCP 2026-07-28 basic/versioning § Backward Compatibility: "A dual-era server selects its
//   behavior from how the client opens"). The routing is the SDK's own `isLegacyRequest`.
// - '2026-07-28': only the SDK v2 handler, strict (`legacy: 'reject'`): SEP-2243 header validation
//   (400 + -32020 HeaderMismatch), `initialize`/2025 requests → 400 + -32022
//   UnsupportedProtocolVersion naming the supported versions, GET/DELETE → 405.
// - '2025-11-25': only the SDK 1.x transport; a modern request gets what a 2025 server answers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createMcpHandler, isLegacyRequest } from '@modelcontextprotocol/server';
import type { AuthInfo, McpHttpHandler } from '@modelcontextprotocol/server';
import { modernToolsServer } from './modern-tools.ts';
import type { ToolHooks } from './tool-catalog.ts';
import { sendWebResponse, webRequestOf } from './web-bridge.ts';

export type SandboxProtocol = 'dual' | '2026-07-28' | '2025-11-25';
export type Era = 'modern' | 'legacy';

export const SANDBOX_PROTOCOLS: readonly SandboxProtocol[] = ['dual', '2026-07-28', '2025-11-25'];

export const SANDBOX_PROTOCOL_DESCRIPTIONS: Record<SandboxProtocol, string> = {
  dual: 'both eras: 2026-07-28 requests (per-request _meta) statelessly, 2025-11-25 initialize + sessions as before',
  '2026-07-28': 'only 2026-07-28, strict: SEP-2243 headers enforced (400 -32020), initialize → 400 -32022, GET/DELETE → 405',
  '2025-11-25': 'only 2025-11-25 (initialize, Mcp-Session-Id, GET stream); a 2026-07-28 request gets 400 "no valid session ID"',
};

export function isSandboxProtocol(value: string): value is SandboxProtocol {
  return (SANDBOX_PROTOCOLS as readonly string[]).includes(value);
}

/**
 * The SEP-2243 request headers as received (node lower-cases names and trims surrounding
 * whitespace): `mcp-protocol-version`, `mcp-method`, `mcp-name` and every `mcp-param-*`.
 */
export function mcpHeadersOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (name === 'mcp-protocol-version' || name === 'mcp-method' || name === 'mcp-name' || name.startsWith('mcp-param-')) {
      out[name] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  return out;
}

/** The era that serves this request under `protocol` (dual: the SDK's own classification). */
export async function eraOf(protocol: SandboxProtocol, req: IncomingMessage, body: unknown): Promise<Era> {
  if (protocol === '2025-11-25') return 'legacy';
  if (protocol === '2026-07-28') return 'modern';
  let request: Request;
  try {
    request = webRequestOf(req, 'http://127.0.0.1/', new AbortController().signal);
  } catch {
    return 'modern'; // a header fetch refuses: the modern endpoint answers it (400 -32020)
  }
  return (await isLegacyRequest(request, body)) ? 'legacy' : 'modern';
}

function jsonRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

export interface ModernEndpoint {
  /** Serves one request of the 2026-07-28 era; `hooks` are the tool hooks for this request. */
  serve(req: IncomingMessage, res: ServerResponse, body: unknown, authInfo: AuthInfo | undefined, hooks: ToolHooks): Promise<void>;
  /** notifications/tools/list_changed on every open `subscriptions/listen` stream that asked for it. */
  notifyToolsChanged(): void;
  close(): Promise<void>;
}

export function createModernEndpoint(mcpUrl: string): ModernEndpoint {
  const hooksByRequest = new WeakMap<Request, ToolHooks>();
  const noHooks: ToolHooks = { called: () => {}, notifyToolsChanged: () => handler.notify.toolsChanged() };
  // One server instance per request, the SDK's model for the stateless era.
  const handler: McpHttpHandler = createMcpHandler(
    (ctx) => modernToolsServer((ctx.requestInfo && hooksByRequest.get(ctx.requestInfo)) || noHooks),
    { legacy: 'reject' },
  );
  return {
    async serve(req, res, body, authInfo, hooks) {
      const aborted = new AbortController();
      // Closing the response stream cancels the request (2026-07-28 § Cancellation) and ends a
      // subscriptions/listen stream.
      res.once('close', () => aborted.abort());
      let request: Request;
      try {
        request = webRequestOf(req, new URL(req.url ?? '/', mcpUrl).href, aborted.signal);
      } catch {
        // SEP-2243 § Server Validation: "A header value contains invalid characters."
        return jsonRpcError(res, 400, -32020, 'Bad Request: a header value contains invalid characters');
      }
      hooksByRequest.set(request, hooks);
      const response = await handler.fetch(request, { parsedBody: body, ...(authInfo ? { authInfo } : {}) });
      await sendWebResponse(response, res);
    },
    notifyToolsChanged: () => handler.notify.toolsChanged(),
    close: () => handler.close(),
  };
}

