import { win32 } from 'node:path';
import { McpOAuthError } from '../errors.ts';
import { gatewayEndpoint, isLoopbackHost } from '../gateway/address.ts';
import type { ServerConfig } from '../types.ts';
import type { HttpEntry, InstallClient } from './client.ts';

/**
 * `install CLIENT NAME --gateway`: the client reaches `mcp-oauth serve` over Streamable HTTP
 * instead of starting a stdio proxy. The entry is the gateway's endpoint for NAME plus the header
 * that carries the gateway secret (src/gateway/secret.ts): `Authorization: Bearer SECRET`, the one
 * header every client's HTTP config can set (Codex `http_headers`, Claude Code / Cursor / VS Code
 * `headers`). Pure: the base URL and the secret are passed in.
 */

/** The header the gateway reads (RFC 6750 §2.1), spelled as clients' configs usually spell it. */
export const GATEWAY_HEADER_NAME = 'Authorization';

/**
 * Stands for the secret wherever an entry is SHOWN (--print, --json, the human output): the secret
 * is a bearer credential and never goes to stdout or a log. Only the file gets the real value.
 */
export const SECRET_PLACEHOLDER = '<gateway secret>';

export function gatewayHttpEntry(opts: { base: string; serverName: string; secret: string }): HttpEntry {
  return { url: gatewayEndpoint(opts.base, opts.serverName), headers: { [GATEWAY_HEADER_NAME]: `Bearer ${opts.secret}` } };
}

/**
 * The gateway serves the servers of our config (and Codex's remote entries) by NAME; a bare URL
 * has no name there. Claude Desktop's config file holds stdio servers only (remote servers are
 * added in its Settings → Connectors, and not with a custom header): refused, the stdio entry works.
 */
export function checkGatewayInstall(client: InstallClient, target: string, server?: ServerConfig): void {
  if (!client.http) {
    throw new McpOAuthError('usage', `${client.title}'s config file cannot hold an HTTP server, so --gateway cannot be installed there`, {
      hint: `install the stdio entry instead (it starts the proxy): mcp-oauth install ${client.id} ${target} (without --gateway)`,
    });
  }
  if (server && server.source === 'url') {
    throw new McpOAuthError('usage', `the gateway serves configured servers by name, and ${server.url} is a bare URL`, {
      hint: `name it first: mcp-oauth add NAME ${server.url}, then mcp-oauth install ${client.id} NAME --gateway`,
    });
  }
}

/**
 * Which kind of entry mcp-oauth itself wrote, if `value` is one for this server: the stdio proxy
 * (`… mcp-oauth.js proxy NAME`) or a gateway endpoint (a loopback URL ending /servers/NAME/mcp).
 * Such an entry is replaced without --force when switching between the two (and a gateway entry
 * when the port or the secret changed): it is ours, not the user's.
 */
export function ownEntryKind(value: unknown, serverName: string): 'stdio' | 'gateway' | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.url === 'string' && v.command === undefined) {
    try {
      const u = new URL(v.url);
      const path = `/servers/${encodeURIComponent(serverName)}/mcp`;
      return isLoopbackHost(u.hostname) && (u.pathname === path || u.pathname === `${path}/`) ? 'gateway' : undefined;
    } catch {
      return undefined;
    }
  }
  if (typeof v.command !== 'string' || !Array.isArray(v.args) || !v.args.every((a) => typeof a === 'string')) return undefined;
  const args = v.args as string[];
  const at = args.indexOf('proxy');
  if (at < 0 || args[at + 1] !== serverName) return undefined;
  // win32.basename splits at both / and \ (an entry may have been written on either platform).
  const ours = (p: string) => /^mcp-oauth(\.js|\.cmd|\.exe)?$/i.test(win32.basename(p));
  return ours(v.command) || args.slice(0, at).some(ours) ? 'stdio' : undefined;
}
