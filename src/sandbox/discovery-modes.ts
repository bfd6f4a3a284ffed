// How the sandbox lets a client discover its authorization server. Each mode reproduces one kind of
// server seen in the wild (issue 6), so the end-to-end tests can run the library, the CLI and the
// proxy against each: `startSandbox({ discovery: MODE })`, `mcp-oauth sandbox --discovery MODE`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { canonicalResourceUri } from '../oauth/canonical.ts';
import type { DiscoveryMode, SandboxCounters } from './types.ts';

export const DISCOVERY_MODES: readonly DiscoveryMode[] = [
  'standard',
  'resource-prefix',
  'root-only',
  'per-tool',
  'trailing-slash-issuer',
  'no-prm-origin-as',
  'no-metadata',
  'no-oauth',
  'always-insufficient-scope',
];

/** One line per mode, for `mcp-oauth sandbox --help` and the docs. */
export const DISCOVERY_MODE_DESCRIPTIONS: Record<DiscoveryMode, string> = {
  standard: 'RFC 9728 metadata at the path-form and root well-known URLs, named by the 401',
  'resource-prefix': 'metadata only at the root well-known URL, its resource = the origin (a prefix of the MCP URL)',
  'root-only': 'metadata only at the root well-known URL, resource = the MCP URL, 401 without resource_metadata',
  'per-tool': 'initialize and tools/list public; tools/call 401 names /.well-known/oauth-protected-resource/<tool>, the only metadata URL',
  'trailing-slash-issuer': 'the metadata lists the issuer with a trailing "/" (like Google\'s)',
  'no-prm-origin-as': 'no resource metadata; the authorization server is the MCP origin, with RFC 8414 metadata there (2025-03-26)',
  'no-metadata': 'no metadata at all; /authorize, /token, /register on the MCP origin (2025-03-26 defaults)',
  'no-oauth': 'no OAuth: every request is served without a token',
  'always-insufficient-scope': 'every authenticated request gets 403 insufficient_scope asking for a new scope',
};

export function isDiscoveryMode(value: string): value is DiscoveryMode {
  return (DISCOVERY_MODES as readonly string[]).includes(value);
}

export const PRM_PATH = '/.well-known/oauth-protected-resource';
/** Scopes the always-insufficient-scope server asks for, one more on each 403. */
export const STEP_SCOPES = Array.from({ length: 9 }, (_, i) => `mcp:step${i + 1}`);

export interface DiscoveryProfile {
  mode: DiscoveryMode;
  /** The authorization server runs on the MCP server's origin (issuer = that origin). */
  asOnMcpOrigin: boolean;
  /** oidc-provider `routes` (no-metadata: MCP 2025-03-26 "Fallbacks for Servers without Metadata Discovery"). */
  asRoutes?: Record<string, string>;
  /** Scopes the authorization server must know besides the configured ones. */
  extraScopes: string[];
}

export function discoveryProfile(mode: DiscoveryMode): DiscoveryProfile {
  return {
    mode,
    asOnMcpOrigin: mode === 'no-prm-origin-as' || mode === 'no-metadata',
    asRoutes: mode === 'no-metadata' ? { authorization: '/authorize', token: '/token', registration: '/register' } : undefined,
    extraScopes: mode === 'always-insufficient-scope' ? STEP_SCOPES : [],
  };
}

/**
 * What the protected resource metadata calls `resource`, and so the RFC 8707 resource a client
 * asks tokens for (the audience the MCP server checks is its canonical form).
 */
export function publishedResource(mode: DiscoveryMode, mcpUrl: string): string {
  // Like servers that publish one document for the whole origin: `new URL(origin).href` has the "/".
  return mode === 'resource-prefix' ? `${new URL(mcpUrl).origin}/` : mcpUrl;
}

export function audienceFor(mode: DiscoveryMode, mcpUrl: string): string {
  return canonicalResourceUri(publishedResource(mode, mcpUrl));
}

/** Whether `pathname` (on the MCP origin) serves the protected resource metadata in this mode. */
export function servesResourceMetadata(mode: DiscoveryMode, mcpPath: string, pathname: string, toolNames: readonly string[]): boolean {
  switch (mode) {
    case 'standard':
    case 'trailing-slash-issuer':
    case 'always-insufficient-scope':
      return pathname === `${PRM_PATH}${mcpPath}` || pathname === PRM_PATH;
    case 'resource-prefix':
    case 'root-only':
      return pathname === PRM_PATH;
    case 'per-tool':
      return pathname.startsWith(`${PRM_PATH}/`) && toolNames.includes(pathname.slice(PRM_PATH.length + 1));
    default:
      return false;
  }
}

/** The `resource_metadata` URL a 401/403 names (RFC 9728 §5.1), if the mode names one. */
export function challengeMetadataUrl(mode: DiscoveryMode, mcpUrl: string, tool?: string): string | undefined {
  const { origin, pathname } = new URL(mcpUrl);
  switch (mode) {
    case 'standard':
    case 'trailing-slash-issuer':
    case 'always-insufficient-scope':
      return `${origin}${PRM_PATH}${pathname}`;
    case 'resource-prefix':
      return `${origin}${PRM_PATH}`;
    case 'per-tool':
      return tool ? `${origin}${PRM_PATH}/${encodeURIComponent(tool)}` : undefined;
    default:
      // root-only: the client must find the root document itself; the 2025-03-26 modes have none.
      return undefined;
  }
}

/** The issuer as the metadata lists it. */
export function listedIssuer(mode: DiscoveryMode, issuer: string): string {
  return mode === 'trailing-slash-issuer' ? `${issuer}/` : issuer;
}

type JsonRpcLike = { method?: unknown; params?: { name?: unknown } };

function messagesOf(body: unknown): JsonRpcLike[] {
  return (Array.isArray(body) ? body : [body]).filter((m): m is JsonRpcLike => Boolean(m) && typeof m === 'object');
}

export function rpcMethodsOf(body: unknown): string[] {
  return messagesOf(body).map((m) => m.method).filter((m): m is string => typeof m === 'string');
}

/** The tool a tools/call in this body names (the first one). */
export function calledTool(body: unknown): string | undefined {
  const call = messagesOf(body).find((m) => m.method === 'tools/call');
  return typeof call?.params?.name === 'string' ? call.params.name : undefined;
}

/**
 * Whether the request is served without any token. per-tool: like Google's hosted MCP servers,
 * everything but tools/call (initialize, tools/list, notifications, the GET stream, DELETE).
 */
export function isPublicRequest(mode: DiscoveryMode, httpMethod: string, body: unknown): boolean {
  if (mode === 'no-oauth') return true;
  if (mode !== 'per-tool') return false;
  return httpMethod !== 'POST' || !rpcMethodsOf(body).includes('tools/call');
}

/**
 * always-insufficient-scope: the scopes a 403 asks for, one step further than the token has, so
 * no sign-in ever satisfies the server. Undefined in the other modes.
 */
export function unsatisfiableScopes(mode: DiscoveryMode, requiredScope: string, granted: string[]): string[] | undefined {
  if (mode !== 'always-insufficient-scope') return undefined;
  const steps = granted.filter((s) => STEP_SCOPES.includes(s)).length;
  return [requiredScope, STEP_SCOPES[Math.min(steps, STEP_SCOPES.length - 1)]];
}

/** Whether a well-known path must 404 on the MCP origin before reaching anything else. */
export function hidesWellKnown(mode: DiscoveryMode, pathname: string): boolean {
  if (!pathname.startsWith('/.well-known/')) return false;
  // no-metadata and no-oauth publish nothing; the others never serve resource metadata from the
  // authorization server that may share the origin.
  return mode === 'no-metadata' || mode === 'no-oauth' || pathname === PRM_PATH || pathname.startsWith(`${PRM_PATH}/`);
}

/** Calls `onStatus` with the status code once the response head is written. */
export function whenStatus(res: ServerResponse, onStatus: (status: number) => void): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: Parameters<typeof writeHead>) {
    onStatus(args[0]);
    return writeHead.apply(this, args);
  } as typeof writeHead;
}

/** Wraps an HTTP handler to record every GET of a well-known URL (metadata fetches) and its status. */
export function recordingMetadataRequests(
  origin: string,
  counters: () => SandboxCounters,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const { pathname } = new URL(req.url ?? '/', origin);
    if (req.method === 'GET' && pathname.startsWith('/.well-known/')) {
      const entry = { url: `${origin}${pathname}`, status: 0 };
      counters().metadataRequests.push(entry);
      whenStatus(res, (status) => (entry.status = status));
    }
    handler(req, res);
  };
}
