import { os } from '../builtins.ts';
import { join } from 'node:path';

/**
 * Where mcp-oauth keeps its config, credentials file and lock files. Follows the XDG Base
 * Directory spec ($XDG_CONFIG_HOME, default ~/.config) unless $MCP_OAUTH_HOME overrides it.
 */
export function mcpOAuthHome(env: NodeJS.ProcessEnv): string {
  if (env.MCP_OAUTH_HOME) return env.MCP_OAUTH_HOME;
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'mcp-oauth');
  return join(homeDir(env), '.config', 'mcp-oauth');
}

/** Codex CLI's home: its config.toml is read (never written) as a fallback for server entries. */
export function codexHome(env: NodeJS.ProcessEnv): string {
  if (env.CODEX_HOME) return env.CODEX_HOME;
  return join(homeDir(env), '.codex');
}

export function configFilePath(env: NodeJS.ProcessEnv): string {
  return join(mcpOAuthHome(env), 'config.toml');
}

export function codexConfigFilePath(env: NodeJS.ProcessEnv): string {
  return join(codexHome(env), 'config.toml');
}

function homeDir(env: NodeJS.ProcessEnv): string {
  return env.HOME || os().homedir();
}
