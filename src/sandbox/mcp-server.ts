// The sandbox MCP server: a real Streamable HTTP MCP server behind an OAuth 2.1 resource server check
// (MCP spec "Authorization": RFC 6750 bearer tokens, RFC 9728 protected resource metadata,
// audience-bound JWT access tokens per RFC 8707/9068). Both protocol eras (eras.ts): 2025-11-25 on
// SDK 1.x stateful sessions, 2026-07-28 on the SDK v2 per-request handler; the OAuth check and the
// discovery modes stand in front of either.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { fingerprint } from '../secrets.ts';
import {
  audienceFor, calledTool, challengeMetadataUrl, hidesWellKnown, isPublicRequest, listedIssuer, publishedResource, rpcMethodsOf,
  servesResourceMetadata, unsatisfiableScopes, whenStatus, STEP_SCOPES,
} from './discovery-modes.ts';
import { createModernEndpoint, eraOf, mcpHeadersOf } from './eras.ts';
import type { SandboxProtocol } from './eras.ts';
import { legacyToolsServer } from './legacy-tools.ts';
import { ADMIN_SCOPE, ALL_TOOL_NAMES, TOOL_NAMES } from './tool-catalog.ts';
import type { ToolHooks } from './tool-catalog.ts';
import type { DiscoveryMode, McpLogEntry, SandboxState } from './types.ts';
import { createDpopResourceCheck } from './dpop-check.ts';
import type { DpopResourceCheck } from './dpop-check.ts';

export { TOOL_NAMES };

export interface McpResourceServer {
  handle(req: IncomingMessage, res: ServerResponse): void;
  dropSessions(): Promise<void>;
  /** notifications/tools/list_changed to every listener of both eras. */
  notifyToolsChanged(): void;
  close(): Promise<void>;
}

export interface McpResourceServerInit {
  /** The issuer whose tokens are accepted and listed now (switchAuthorizationServer changes it). */
  activeIssuer: () => string;
  mcpUrl: string;
  mode: DiscoveryMode;
  /** Which era(s) to speak (eras.ts). */
  protocol: SandboxProtocol;
  /** List the invalid x-mcp-header tools to 2025-11-25 sessions too (tool-catalog.ts). */
  invalidHeaderToolsInLegacyEra?: boolean;
  requiredScope: string;
  scopesSupported: string[];
  state: SandboxState;
  /** Where requests for other paths go: the authorization server when it shares the origin. */
  fallback?: (req: IncomingMessage, res: ServerResponse) => void;
  /** DPoP checks (dpop-check.ts); default: the sandbox's default mode. */
  dpop?: DpopResourceCheck;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

export function createMcpResourceServer(init: McpResourceServerInit): McpResourceServer {
  const { activeIssuer, mcpUrl, mode, protocol, requiredScope, scopesSupported, state } = init;
  const dpop = init.dpop ?? createDpopResourceCheck({ state });
  const mcpPath = new URL(mcpUrl).pathname;
  const origin = new URL(mcpUrl).origin;
  // RFC 8707 / RFC 9068: the audience of the access tokens (the MCP URL, or the origin when the
  // metadata names the origin as the resource).
  const audience = audienceFor(mode, mcpUrl);
  const jwksByIssuer = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
  const jwksOf = (issuer: string) => {
    let jwks = jwksByIssuer.get(issuer);
    if (!jwks) jwksByIssuer.set(issuer, (jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`))));
    return jwks;
  };
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; server: McpServer }>();
  const modern = createModernEndpoint(mcpUrl);
  // 2025-era tool calls reach their log entry through (session, JSON-RPC id), registered while
  // the POST that carries them is being answered.
  const legacyEntries = new Map<string, McpLogEntry>();
  const legacyKey = (sessionId: string | undefined, id: unknown) => `${sessionId ?? ''}\u0000${String(id)}`;

  function notifyToolsChanged(): void {
    modern.notifyToolsChanged();
    // 2025-11-25: on each session's standalone GET stream (dropped by the SDK when none is open).
    for (const { server } of sessions.values()) server.sendToolListChanged();
  }

  function toolHooks(entry: McpLogEntry | undefined): ToolHooks {
    return {
      called(tool) {
        state.counters.toolCalls[tool] = (state.counters.toolCalls[tool] ?? 0) + 1;
        if (entry) entry.reachedTool = tool;
      },
      notifyToolsChanged,
    };
  }

  // RFC 9728 §2: `resource` is the MCP server's canonical URI; `authorization_servers` the issuer.
  const protectedResourceMetadata = () => ({
    resource: publishedResource(mode, mcpUrl),
    authorization_servers: [listedIssuer(mode, activeIssuer())],
    scopes_supported: scopesSupported.filter((s) => s !== 'offline_access' && s !== 'openid' && !STEP_SCOPES.includes(s)),
    bearer_methods_supported: ['header'],
    resource_name: 'mcp-oauth sandbox MCP server',
    // RFC 9728 §2, only when DPoP is configured explicitly (the default document stays as it was).
    ...(dpop.mode === 'optional' || dpop.mode === 'required'
      ? { dpop_signing_alg_values_supported: dpop.algs, dpop_bound_access_tokens_required: dpop.mode === 'required' }
      : {}),
  });

  /** `scheme`: the scheme of the failed credentials (DPoP errors get a DPoP challenge, RFC 9449 §7.1); `nonce`: a DPoP-Nonce (§9). */
  function challenge(res: ServerResponse, status: 401 | 403, params: Record<string, string>, body: unknown, tool?: string, scheme?: 'Bearer' | 'DPoP', nonce?: string): void {
    if (status === 401) state.counters.mcp401 += 1;
    else state.counters.mcp403 += 1;
    // RFC 6750 §3 + RFC 9728 §5.1: point the client at the protected resource metadata (the
    // modes without one, or where the client must find it, name none).
    const resourceMetadata = challengeMetadataUrl(mode, mcpUrl, tool);
    const all = resourceMetadata ? { ...params, resource_metadata: resourceMetadata } : params;
    const header = dpop.challengeHeader(all, scheme);
    sendJson(res, status, body, { 'www-authenticate': header, ...(nonce ? { 'dpop-nonce': nonce } : {}) });
  }

  async function authenticate(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<AuthInfo | undefined> {
    const authorization = req.headers.authorization;
    // RFC 6750 §2.1 bearer, or RFC 9449 §7.1 DPoP (the same token68 syntax).
    const presented = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization ?? '');
    const scheme = presented?.[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
    const match = presented && [presented[0], presented[2]];
    const tool = calledTool(body);
    if (!authorization) {
      // RFC 6750 §3.1: no credentials → no error code, just the challenge (+ the scope to ask for).
      challenge(res, 401, { scope: requiredScope }, { error: 'unauthorized', error_description: 'Bearer token required' }, tool);
      return undefined;
    }
    let payload: JWTPayload;
    const issuer = activeIssuer();
    try {
      if (!match) throw new Error('malformed Authorization header');
      // RFC 9068 §4 / MCP spec "Token Audience Binding": signature, iss, aud == this server, exp.
      // Only the active issuer's tokens: after a switch the old one's are refused.
      ({ payload } = await jwtVerify(match[1], jwksOf(issuer), { issuer, audience, typ: 'at+jwt' }));
      if (typeof payload.gid === 'string' && state.revokedGrantIds.has(payload.gid)) throw new Error('grant revoked');
    } catch (err) {
      challenge(res, 401, { error: 'invalid_token', error_description: `The access token is invalid (${(err as Error).message.replace(/"/g, "'")})` },
        { error: 'invalid_token' }, tool, scheme);
      return undefined;
    }
    const bound = await dpop.check({
      method: req.method ?? 'GET', url: new URL(req.url ?? '/', origin).href, proof: req.headers.dpop, scheme, token: match![1], payload,
    });
    if ('refusal' in bound) {
      const { refusal } = bound;
      challenge(res, 401, { error: refusal.error, error_description: refusal.description }, { error: refusal.error }, tool, refusal.scheme, refusal.nonce);
      return undefined;
    }
    if (bound.announce) res.setHeader('dpop-nonce', bound.announce);
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
    const wanted = unsatisfiableScopes(mode, requiredScope, scopes) ?? (scopes.includes(requiredScope) ? undefined : [requiredScope]);
    if (wanted) {
      challenge(res, 403, { error: 'insufficient_scope', scope: wanted.join(' ') }, { error: 'insufficient_scope' }, tool, scheme);
      return undefined;
    }
    return {
      token: match![1],
      clientId: String(payload.client_id ?? ''),
      scopes,
      expiresAt: payload.exp,
      resource: new URL(mcpUrl),
      extra: { sub: payload.sub, scheme },
    };
  }

  function needsAdmin(body: unknown): boolean {
    const messages = Array.isArray(body) ? body : [body];
    return messages.some((m) => m && typeof m === 'object' && (m as any).method === 'tools/call' && (m as any).params?.name === 'admin_echo');
  }

  function logRequest(req: IncomingMessage, res: ServerResponse, body: unknown): McpLogEntry {
    const presented = /^(Bearer|DPoP) +(\S+)$/i.exec(req.headers.authorization ?? '');
    const token = presented?.[2];
    let tokenIssuer: string | undefined;
    try {
      tokenIssuer = token ? decodeJwt(token).iss : undefined;
    } catch {
      // not a JWT
    }
    const entry: McpLogEntry = {
      method: req.method ?? 'GET',
      rpcMethods: rpcMethodsOf(body),
      authorization: req.headers.authorization !== undefined,
      ...(presented ? { scheme: presented[1].toLowerCase() === 'dpop' ? 'DPoP' as const : 'Bearer' as const } : {}),
      ...(tokenIssuer ? { tokenIssuer } : {}),
      ...(token ? { tokenFingerprint: fingerprint(token) } : {}),
      status: 0,
      mcpHeaders: mcpHeadersOf(req),
    };
    state.counters.mcpLog.push(entry);
    whenStatus(res, (status) => (entry.status = status));
    return entry;
  }

  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    state.counters.mcpRequests += 1;
    let body: unknown;
    try {
      body = req.method === 'POST' ? await readJson(req) : undefined;
    } catch {
      logRequest(req, res, undefined);
      return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
    }
    const entry = logRequest(req, res, body);
    // per-tool (Google's hosted servers) answers everything but tools/call without a token, and
    // ignores one sent there; no-oauth never asks for one.
    let auth: AuthInfo | undefined;
    if (!isPublicRequest(mode, req.method ?? 'GET', body)) {
      auth = await authenticate(req, res, body);
      if (!auth) return;
      (req as IncomingMessage & { auth?: AuthInfo }).auth = auth;
      if (needsAdmin(body) && !auth.scopes.includes(ADMIN_SCOPE)) {
        // MCP spec "Scope Challenge Handling": 403 with every scope needed for this operation.
        challenge(res, 403, { error: 'insufficient_scope', scope: [requiredScope, ADMIN_SCOPE].join(' '), error_description: `${ADMIN_SCOPE} is required` },
          { error: 'insufficient_scope' }, calledTool(body), auth.extra?.scheme === 'DPoP' ? 'DPoP' : undefined);
        return;
      }
    }

    entry.era = await eraOf(protocol, req, body);
    if (entry.era === 'modern') return modern.serve(req, res, body, auth, toolHooks(entry));

    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const session = sessions.get(sessionId);
      // MCP spec "Session Management": unknown/expired session → 404, the client re-initializes.
      if (!session) return sendJson(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      const keys = (Array.isArray(body) ? body : [body])
        .filter((m) => m && typeof m === 'object' && 'method' in m && 'id' in m)
        .map((m) => legacyKey(sessionId, (m as { id: unknown }).id));
      for (const key of keys) legacyEntries.set(key, entry);
      res.once('close', () => keys.forEach((key) => legacyEntries.delete(key)));
      return session.transport.handleRequest(req, res, body);
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: no valid session ID' }, id: null });
    }
    const server = legacyToolsServer((extra) => toolHooks(legacyEntries.get(legacyKey(extra.sessionId, extra.requestId))), {
      invalidHeaderTools: Boolean(init.invalidHeaderToolsInLegacyEra),
    });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  async function dropSessions(): Promise<void> {
    const all = [...sessions.values()];
    sessions.clear();
    await Promise.allSettled(all.map(({ server }) => server.close()));
  }

  return {
    handle(req, res) {
      const { pathname } = new URL(req.url ?? '/', origin);
      if (req.method === 'GET' && servesResourceMetadata(mode, mcpPath, pathname, ALL_TOOL_NAMES)) {
        return sendJson(res, 200, protectedResourceMetadata(), { 'access-control-allow-origin': '*' });
      }
      if (pathname === mcpPath) {
        handleMcp(req, res).catch((err: unknown) => {
          if (!res.headersSent) sendJson(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: (err as Error).message }, id: null });
          else res.end();
        });
        return;
      }
      if (init.fallback && !hidesWellKnown(mode, pathname)) return init.fallback(req, res);
      sendJson(res, 404, { error: 'not_found' });
    },
    dropSessions,
    notifyToolsChanged,
    async close() {
      await modern.close();
      await dropSessions();
    },
  };
}
