import { fileURLToPath } from 'node:url';
import { sep } from 'node:path';
import { McpOAuthError } from '../errors.ts';
import { SERVER_NAME } from '../config/schema.ts';
import type { ServerConfig } from '../types.ts';
import type { ClientId } from './client.ts';

/** How an MCP client starts the proxy: the `command` / `args` / `env` of a stdio server entry. */
export interface ProxyLaunch {
  command: string;
  args: string[];
  env?: Record<string, string>;
  /**
   * Variables the client should pass on from its OWN environment at each start (Codex's
   * `env_vars`), for values that must stay live rather than be frozen into the file.
   */
  forwardEnv?: string[];
}

/** The store choices `[settings] store` and MCP_OAUTH_STORE accept. */
export type StoreChoice = 'auto' | 'keychain' | 'file' | 'memory' | 'redis';

/** The CLI entry point of this very installation (bin/mcp-oauth.js), as an absolute path. */
export const CLI_SCRIPT_PATH = fileURLToPath(new URL('../../bin/mcp-oauth.js', import.meta.url));

/**
 * The proxy's launch line, with ABSOLUTE paths for both Node and the CLI script: GUI clients
 * (Claude Desktop on macOS, VS Code started from the Dock) start servers with a minimal PATH that
 * usually has neither `node` nor an npm global bin dir, so `mcp-oauth proxy NAME` by name would
 * fail with "command not found". `process.execPath` is also the Node version this CLI runs on.
 *
 * The client does not start the proxy with our shell's environment (Codex passes only HOME, PATH,
 * USER, LANG and a few more: codex-rs/rmcp-client/src/utils.rs DEFAULT_ENV_VARS; GUI apps rarely
 * inherit a shell's variables at all), so the variables that decide where the proxy finds its config and
 * credentials are written into the entry's `env`:
 * - MCP_OAUTH_HOME when set, or derived from XDG_CONFIG_HOME (GUI apps rarely inherit it);
 * - MCP_OAUTH_STORE when set: without it the proxy would look in the config's (or the default)
 *   store, not in the one `mcp-oauth login` wrote to;
 * - CODEX_HOME when set and the server entry itself lives in Codex's config.
 * And on Linux, for Codex, DBUS_SESSION_BUS_ADDRESS is passed on by name (`env_vars`) whenever the
 * keychain may be the store: without a session bus there is no Secret Service, and `auto` would
 * silently fall back to the file store. Its value is per login session, so it is never frozen.
 * Nothing secret is ever put there.
 */
export function proxyLaunch(opts: {
  target: string;
  server: ServerConfig;
  env: NodeJS.ProcessEnv;
  home: string;
  execPath: string;
  cliPath: string;
  /** Which client's entry this is, and on which platform (for `forwardEnv`). */
  client?: ClientId;
  platform?: NodeJS.Platform;
  /** `[settings] store` from our config (MCP_OAUTH_STORE wins over it, as in the CLI). */
  storeSetting?: StoreChoice;
}): ProxyLaunch {
  const env: Record<string, string> = {};
  if (opts.env.MCP_OAUTH_HOME || opts.env.XDG_CONFIG_HOME) env.MCP_OAUTH_HOME = opts.home;
  if (opts.env.MCP_OAUTH_STORE) env.MCP_OAUTH_STORE = opts.env.MCP_OAUTH_STORE;
  if (opts.env.CODEX_HOME && opts.server.source === 'codex') env.CODEX_HOME = opts.env.CODEX_HOME;
  const store = opts.env.MCP_OAUTH_STORE || opts.storeSetting || 'auto';
  const forwardEnv = opts.client === 'codex' && opts.platform === 'linux' && (store === 'auto' || store === 'keychain') ? ['DBUS_SESSION_BUS_ADDRESS'] : [];
  return {
    command: opts.execPath,
    args: [opts.cliPath, 'proxy', opts.target],
    ...(Object.keys(env).length ? { env } : {}),
    ...(forwardEnv.length ? { forwardEnv } : {}),
  };
}

/** Warnings about a launch line that will not survive (e.g. run from npx's temporary cache). */
export function launchWarnings(launch: ProxyLaunch): string[] {
  const warnings: string[] = [];
  const cliPath = launch.args[0] ?? '';
  if (cliPath.includes(`${sep}_npx${sep}`)) {
    warnings.push(`${cliPath} is in npx's temporary cache and may be deleted; install mcp-oauth (npm install -g mcp-oauth) and run install again`);
  }
  if (launch.env?.MCP_OAUTH_STORE === 'memory') {
    warnings.push('MCP_OAUTH_STORE=memory is passed on: the proxy forgets every sign-in when it exits, so each start of the client signs in again; unset it (or choose "file" or "keychain") and run install again');
  }
  return warnings;
}

/**
 * The entry name in the client's config: --as, else the server's name, else (a bare URL) a slug of
 * the host, e.g. https://mcp.example.com/mcp → "mcp-example-com". Clients (Codex in particular)
 * accept only letters, digits, "-" and "_" in server names.
 */
export function entryNameFor(server: ServerConfig, as?: string): string {
  const name = as ?? (server.source === 'url' ? hostSlug(server.url) : server.name);
  if (!SERVER_NAME.test(name) || name === '__proto__') {
    throw new McpOAuthError('usage', `invalid entry name ${JSON.stringify(name)}: use letters, digits, "-" and "_"`, {
      hint: 'choose the name with --as NAME',
    });
  }
  return name;
}

export function hostSlug(url: string): string {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const slug = `${host}${u.port ? `-${u.port}` : ''}`
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug || 'mcp-server';
}
