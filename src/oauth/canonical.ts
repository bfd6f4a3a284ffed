import { McpOAuthError } from '../errors.ts';

/**
 * The canonical URI of an MCP server: the RFC 8707 §2 resource identifier, written the way the MCP
 * spec 2025-11-25 "Canonical Server URI" asks for. It is both the `resource` parameter we send and
 * the value the server's Protected Resource Metadata `resource` must match (RFC 9728 §3.3), so it
 * must be computed the same way everywhere.
 *
 * - scheme and host lowercase, default port dropped (the WHATWG URL parser does both);
 * - no fragment: RFC 8707 §2 "MUST NOT include a fragment component";
 * - no trailing slash on the path, and a bare "/" path is dropped too: the MCP spec says clients
 *   SHOULD consistently use the form without the trailing slash;
 * - the query is kept (RFC 8707 §2 discourages one but it still identifies the resource).
 */
export function canonicalResourceUri(url: string): string {
  const parsed = parseAbsoluteUrl(url, 'MCP server URL');
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new McpOAuthError('usage', `MCP server URL ${JSON.stringify(url)} must use https (or http on loopback)`, {
      hint: 'use the full URL of the MCP endpoint, e.g. https://mcp.example.com/mcp',
    });
  }
  const path = parsed.pathname.replace(/\/+$/, '');
  return `${parsed.protocol}//${parsed.host}${path}${parsed.search}`;
}

/** True for names and addresses that can only reach this machine (RFC 8252 §7.3, RFC 6761 §6.3). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host === '[::1]' || host === '::1') return true;
  // The WHATWG parser has already normalised IPv4 literals (e.g. 0x7f.1 → 127.0.0.1).
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * OAuth 2.1 §1.5 and MCP spec 2025-11-25 "Communication Security": every authorization server
 * endpoint MUST be served over HTTPS. Plain http is tolerated only on loopback, where nothing
 * crosses the network (local development and our own tests).
 */
export function assertSecureEndpoint(url: string, what: string): URL {
  const parsed = parseAbsoluteUrl(url, what);
  if (parsed.protocol === 'https:') return parsed;
  if (parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname)) return parsed;
  throw new McpOAuthError(
    'insecure_url',
    `${what} ${JSON.stringify(url)} is not https; OAuth endpoints must use https so tokens and codes are never sent in clear text`,
    {
      hint: 'use the https:// URL of the server (plain http is only accepted for 127.0.0.1, ::1 and localhost)',
      details: { url, what },
    },
  );
}

function parseAbsoluteUrl(url: string, what: string): URL {
  try {
    return new URL(url);
  } catch (cause) {
    throw new McpOAuthError('usage', `${what} ${JSON.stringify(url)} is not an absolute URL`, {
      hint: 'use the full URL including the scheme, e.g. https://mcp.example.com/mcp',
      cause,
    });
  }
}
