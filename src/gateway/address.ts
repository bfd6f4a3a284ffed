/**
 * Where the gateway (`mcp-oauth serve`) is reached, and which Host / Origin values are its own.
 * Pure: no I/O. The MCP spec ("Transports", Streamable HTTP "Security Warning") says a local server
 * MUST validate Origin, SHOULD bind to localhost only, and SHOULD authenticate every connection;
 * DNS rebinding is the attack: a web page whose name resolves to 127.0.0.1 sends requests that
 * carry its own Host and Origin.
 */
import { McpOAuthError } from '../errors.ts';
import type { GatewaySettings } from '../config/config.ts';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return LOOPBACK_NAMES.has(h) || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** The gateway's base URL (no trailing slash), as clients are told to reach it. */
export function gatewayBaseUrl(settings: Pick<GatewaySettings, 'host' | 'port' | 'tlsCertFile'>): string {
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  return `${settings.tlsCertFile ? 'https' : 'http'}://${host}:${settings.port}`;
}

/** The Streamable HTTP endpoint for one configured server: BASE/servers/NAME/mcp. */
export function gatewayEndpoint(base: string, serverName: string): string {
  return `${base.replace(/\/+$/, '')}/servers/${encodeURIComponent(serverName)}/mcp`;
}

/** The server name in a request path, or undefined when the path is not an endpoint. */
export function serverNameFromPath(pathname: string): string | undefined {
  const m = /^\/servers\/([^/]+)\/mcp\/?$/.exec(pathname);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return undefined;
  }
}

/**
 * The settings `serve` may listen with. A non-loopback address needs TLS: the gateway secret is a
 * bearer credential and must not cross a network in clear text (RFC 6750 §5.3).
 */
export function checkListenSettings(settings: GatewaySettings): void {
  if ((settings.tlsCertFile === undefined) !== (settings.tlsKeyFile === undefined)) {
    throw new McpOAuthError('config_invalid', '[gateway] needs both tls_cert_file and tls_key_file, or neither', {
      hint: 'set both paths in the [gateway] table of config.toml',
    });
  }
  if (!isLoopbackHost(settings.host) && settings.tlsCertFile === undefined) {
    throw new McpOAuthError('config_invalid', `[gateway] host = ${JSON.stringify(settings.host)} is not a loopback address, and no TLS certificate is configured`, {
      hint: 'set tls_cert_file and tls_key_file in [gateway], or listen on 127.0.0.1',
    });
  }
}

/**
 * Host header values the gateway answers to: loopback names on its port, plus `allowed_hosts`. A
 * Host naming anything else is a DNS-rebinding attempt (or a misrouted request) and is refused.
 */
export function isAllowedHost(hostHeader: string | undefined, port: number, settings: Pick<GatewaySettings, 'host' | 'allowedHosts'>): boolean {
  if (!hostHeader) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader.trim());
  if (!m) return false;
  const name = m[1]!.replace(/^\[|\]$/g, '').toLowerCase();
  if (m[2] !== undefined && Number(m[2]) !== port) return false;
  if (isLoopbackHost(name)) return true;
  const extra = [settings.host, ...settings.allowedHosts].map((h) => h.toLowerCase());
  return extra.includes(name);
}

/**
 * An Origin header is sent by browsers (and by no MCP client we know of): when present it must be
 * a loopback origin or an allowed host. "null" (a sandboxed page or a file://) is refused.
 */
export function isAllowedOrigin(origin: string | undefined, settings: Pick<GatewaySettings, 'host' | 'allowedHosts'>): boolean {
  if (origin === undefined) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const name = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (isLoopbackHost(name)) return true;
  return [settings.host, ...settings.allowedHosts].map((h) => h.toLowerCase()).includes(name);
}
