import { homeFor, jsonEntry, pathFor, type InstallClient, type PlatformInfo } from './client.ts';
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
  applyEntry: ({ existing, file, entryName, launch, force }) =>
    applyJsonEntry({ existing, file, containerKey: 'mcpServers', entryName, entry: jsonEntry(launch), force, clientTitle: 'Cursor' }),
};

export function cursorConfigPath(info: PlatformInfo): string {
  return pathFor(info.platform).join(homeFor(info), '.cursor', 'mcp.json');
}
