import { homeFor, jsonEntry, jsonHttpEntry, pathFor, type InstallClient, type PlatformInfo } from './client.ts';
import { applyJsonEntry, renderJsonEntry } from './json-config.ts';

/**
 * Claude Code (the `claude` CLI): user scope, the top-level `mcpServers` of `~/.claude.json`
 * (`$CLAUDE_CONFIG_DIR/.claude.json` when that is set), the entry `claude mcp add --scope user
 * NAME -- CMD ARGS…` writes: `{ "type": "stdio", command, args, env }`; with --gateway
 * `{ "type": "http", url, headers }` (Claude Code docs, "Option 1: Add a remote HTTP server").
 * Claude Code docs, "MCP installation scopes": local scope lives under `projects[<dir>]` of the
 * same file, project scope in `.mcp.json` (use --config-file for that one), user scope at the top.
 *
 * The file is edited directly (json-config.ts), not through `claude mcp add`: the backup, --print
 * and --force then behave exactly as for the other clients, `claude` need not be on PATH, and
 * nothing in the file but the entry changes (it is also Claude Code's state file: every other key
 * is kept byte for byte).
 */
export const claudeCode: InstallClient = {
  id: 'claude-code',
  title: 'Claude Code',
  configPath: claudeCodeConfigPath,
  renderEntry: (entryName, launch) => renderJsonEntry('mcpServers', entryName, jsonEntry(launch, { type: 'stdio' })),
  applyEntry: ({ launch, ...opts }) => applyJsonEntry({ ...opts, containerKey: 'mcpServers', entry: jsonEntry(launch, { type: 'stdio' }), clientTitle: 'Claude Code' }),
  // `claude mcp add --transport http NAME URL --header "Authorization: Bearer …"` writes this shape.
  http: {
    renderEntry: (entryName, entry) => renderJsonEntry('mcpServers', entryName, jsonHttpEntry(entry, { type: 'http' })),
    applyEntry: ({ entry, ...opts }) => applyJsonEntry({ ...opts, containerKey: 'mcpServers', entry: jsonHttpEntry(entry, { type: 'http' }), clientTitle: 'Claude Code' }),
  },
};

/** `$CLAUDE_CONFIG_DIR/.claude.json`, else `<home>/.claude.json` on every platform. */
export function claudeCodeConfigPath(info: PlatformInfo): string {
  const path = pathFor(info.platform);
  return path.join(info.env.CLAUDE_CONFIG_DIR || homeFor(info), '.claude.json');
}
