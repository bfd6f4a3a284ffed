import { dirname, resolve as resolvePath } from 'node:path';
import { canonicalResourceUri } from '../oauth/canonical.ts';
import { McpOAuthError } from '../errors.ts';
import type { ServerConfig } from '../types.ts';
import { codexConfigFilePath, configFilePath } from './paths.ts';
import { readConfigFile, type ParsedFile } from './parse.ts';
import { isHttpUrl, SERVER_NAME, toServerConfig } from './schema.ts';

export { addServer, removeServer, type AddServerOptions } from './edit.ts';
export { parseConfigText } from './parse.ts';

export type StoreSetting = 'auto' | 'keychain' | 'file' | 'redis';

export interface LoadedConfig {
  file: string;
  exists: boolean;
  servers: Record<string, ServerConfig>;
  settings: {
    store: StoreSetting;
    refreshMarginSeconds: number;
    /** `[settings] redis_url` (never with a password) and `redis_key_file` (absolute, or relative to the config file). */
    redisUrl?: string;
    redisKeyFile?: string;
  };
  /** `[gateway]` (src/gateway/): where `mcp-oauth serve` listens; paths resolved against the config file. */
  gateway: GatewaySettings;
}

export interface GatewaySettings {
  host: string;
  port: number;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  allowedHosts: string[];
}

/** `mcp-oauth serve` listens here unless `[gateway]` says otherwise: a fixed port, so client
 * configs written by `install --gateway` stay valid across restarts. */
export const DEFAULT_GATEWAY_HOST = '127.0.0.1';
export const DEFAULT_GATEWAY_PORT = 7319;

/** Refresh this long before `expiresAt` unless `[settings] refresh_margin_seconds` says otherwise. */
export const DEFAULT_REFRESH_MARGIN_SECONDS = 60;

/** Reads and validates our config.toml. A missing file is an empty config, not an error. */
export async function loadConfig(opts: { env: NodeJS.ProcessEnv }): Promise<LoadedConfig> {
  const parsed = await readConfigFile(configFilePath(opts.env), 'ours');
  const servers: Record<string, ServerConfig> = {};
  for (const [name, table] of Object.entries(parsed.data.mcp_servers ?? {})) {
    if (table.url !== undefined && table.command === undefined) servers[name] = toServerConfig(name, table, 'config', parsed.file);
  }
  const g = parsed.data.gateway;
  return {
    file: parsed.file,
    exists: parsed.exists,
    servers,
    settings: {
      store: parsed.data.settings?.store ?? 'auto',
      refreshMarginSeconds: parsed.data.settings?.refresh_margin_seconds ?? DEFAULT_REFRESH_MARGIN_SECONDS,
      ...(parsed.data.settings?.redis_url ? { redisUrl: parsed.data.settings.redis_url } : {}),
      ...(parsed.data.settings?.redis_key_file ? { redisKeyFile: resolvePath(dirname(parsed.file), parsed.data.settings.redis_key_file) } : {}),
    },
    gateway: {
      host: g?.host ?? DEFAULT_GATEWAY_HOST,
      port: g?.port ?? DEFAULT_GATEWAY_PORT,
      ...(g?.tls_cert_file ? { tlsCertFile: resolvePath(dirname(parsed.file), g.tls_cert_file) } : {}),
      ...(g?.tls_key_file ? { tlsKeyFile: resolvePath(dirname(parsed.file), g.tls_key_file) } : {}),
      allowedHosts: g?.allowed_hosts ?? [],
    },
  };
}

/**
 * NAME in our config → that entry; else NAME in Codex's config (read-only) → that entry; else an
 * http(s) URL → an ad-hoc entry named by the URL; else `server_unknown` listing the known names.
 */
export async function resolveServer(nameOrUrl: string, opts: { env: NodeJS.ProcessEnv }): Promise<ServerConfig> {
  const ours = await readConfigFile(configFilePath(opts.env), 'ours');
  const fromOurs = serverFrom(ours, nameOrUrl, 'config');
  if (fromOurs) return fromOurs;
  const codex = await readConfigFile(codexConfigFilePath(opts.env), 'codex');
  const fromCodex = serverFrom(codex, nameOrUrl, 'codex');
  if (fromCodex) return fromCodex;
  if (isHttpUrl(nameOrUrl)) {
    // A bare URL is named by its canonical form, so `x/mcp` and `x/mcp/` share one credential.
    return { name: canonicalResourceUri(nameOrUrl), url: nameOrUrl, source: 'url', httpHeaders: {}, envHttpHeaders: {}, oauth: { authorizeParams: {} } };
  }
  const known = [...new Set([...remoteNames(ours), ...remoteNames(codex)])].sort();
  const shown = JSON.stringify(nameOrUrl);
  throw new McpOAuthError(
    'server_unknown',
    `no server named ${shown} in ${ours.file} or ${codex.file}, and it is not an http(s) URL; ` +
      (known.length ? `known servers: ${known.join(', ')}` : 'no servers are configured yet'),
    {
      hint: `mcp-oauth add ${SERVER_NAME.test(nameOrUrl) ? nameOrUrl : 'NAME'} URL`,
      details: { known, configFile: ours.file, codexConfigFile: codex.file },
    },
  );
}

/** Our entries plus Codex's remote entries whose names we do not shadow; stdio entries skipped. */
export async function listServers(opts: { env: NodeJS.ProcessEnv }): Promise<ServerConfig[]> {
  const ours = await readConfigFile(configFilePath(opts.env), 'ours');
  const codex = await readConfigFile(codexConfigFilePath(opts.env), 'codex');
  const out: ServerConfig[] = [];
  const seen = new Set<string>();
  for (const [parsed, source] of [[ours, 'config'], [codex, 'codex']] as const) {
    for (const [name, table] of Object.entries(parsed.data.mcp_servers ?? {})) {
      if (seen.has(name)) continue;
      seen.add(name);
      if (table.url !== undefined && table.command === undefined) out.push(toServerConfig(name, table, source, parsed.file));
    }
  }
  return out;
}

/** Entries that are stdio servers (`command`): shown by `list` as `unsupported`, never used. */
export async function listStdioServers(opts: { env: NodeJS.ProcessEnv }): Promise<Array<{ name: string; source: 'config' | 'codex'; command: string }>> {
  const ours = await readConfigFile(configFilePath(opts.env), 'ours');
  const codex = await readConfigFile(codexConfigFilePath(opts.env), 'codex');
  const out: Array<{ name: string; source: 'config' | 'codex'; command: string }> = [];
  const seen = new Set<string>();
  for (const [parsed, source] of [[ours, 'config'], [codex, 'codex']] as const) {
    for (const [name, table] of Object.entries(parsed.data.mcp_servers ?? {})) {
      if (seen.has(name)) continue;
      seen.add(name);
      if (table.command !== undefined) out.push({ name, source, command: String(table.command) });
    }
  }
  return out;
}

function remoteNames(parsed: ParsedFile): string[] {
  return Object.entries(parsed.data.mcp_servers ?? {})
    .filter(([, t]) => t.url !== undefined && t.command === undefined)
    .map(([name]) => name);
}

function serverFrom(parsed: ParsedFile, name: string, source: 'config' | 'codex'): ServerConfig | undefined {
  const servers = parsed.data.mcp_servers ?? {};
  if (!Object.hasOwn(servers, name)) return undefined;
  const table = servers[name];
  if (table.command !== undefined) {
    throw new McpOAuthError(
      'usage',
      `${name} is a stdio server (command=${table.command}); mcp-oauth only handles remote (url) servers`,
      { hint: 'run stdio servers directly from your MCP client; use mcp-oauth for servers with a url', details: { configFile: parsed.file } },
    );
  }
  return toServerConfig(name, table, source, parsed.file);
}
