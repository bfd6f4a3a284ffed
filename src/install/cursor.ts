import { homeFor, jsonEntry, jsonHttpEntry, pathFor, type InstallClient, type PlatformInfo } from './client.ts';
import { applyJsonEntry, renderJsonEntry } from './json-config.ts';

/**
 * Cursor: global `~/.cursor/mcp.json` on every platform (a project's `.cursor/mcp.json` via
 * --config-file), `{ "mcpServers": { NAME: { command, args, env } } }`.
 */
export const cursor: InstallClient = {
  id: 'cursor',
  title: 'Cursor',
  configPath: cursorConfigPath,
  renderEntry: (entryName, launch) => renderJsonEntry('mcpServers', entryName, jsonEntry(launch)),
  applyEntry: ({ launch, ...opts }) => applyJsonEntry({ ...opts, containerKey: 'mcpServers', entry: jsonEntry(launch), clientTitle: 'Cursor' }),
  // Cursor docs, "Remote servers": an entry with `url` (and optional `headers`) instead of `command`.
  http: {
    renderEntry: (entryName, entry) => renderJsonEntry('mcpServers', entryName, jsonHttpEntry(entry)),
    applyEntry: ({ entry, ...opts }) => applyJsonEntry({ ...opts, containerKey: 'mcpServers', entry: jsonHttpEntry(entry), clientTitle: 'Cursor' }),
  },
};

export function cursorConfigPath(info: PlatformInfo): string {
  return pathFor(info.platform).join(homeFor(info), '.cursor', 'mcp.json');
}
