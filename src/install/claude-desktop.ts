import { appDataFor, homeFor, jsonEntry, pathFor, xdgConfigHome, type InstallClient, type PlatformInfo } from './client.ts';
import { applyJsonEntry, renderJsonEntry } from './json-config.ts';

/**
 * Claude Desktop: `claude_desktop_config.json`, `{ "mcpServers": { NAME: { command, args, env } } }`.
 * It starts stdio servers only from this file, with a minimal environment (hence absolute paths).
 */
export const claudeDesktop: InstallClient = {
  id: 'claude-desktop',
  title: 'Claude Desktop',
  configPath: claudeDesktopConfigPath,
  renderEntry: (entryName, launch) => renderJsonEntry('mcpServers', entryName, jsonEntry(launch)),
  applyEntry: ({ launch, ...opts }) => applyJsonEntry({ ...opts, containerKey: 'mcpServers', entry: jsonEntry(launch), clientTitle: 'Claude Desktop' }),
  // No `http`: "Claude Desktop will not connect to remote servers that are configured directly via
  // claude_desktop_config.json" (Claude Help Center, "Building custom connectors via remote MCP
  // servers"; they are added under Settings → Connectors), so `install --gateway` is refused for it.
};

/** macOS: ~/Library/Application Support/Claude; Windows: %APPDATA%\Claude; Linux: $XDG_CONFIG_HOME/Claude. */
export function claudeDesktopConfigPath(info: PlatformInfo): string {
  const path = pathFor(info.platform);
  if (info.platform === 'darwin') return path.join(homeFor(info), 'Library', 'Application Support', 'Claude', 'claude_desktop_config.json');
  if (info.platform === 'win32') return path.join(appDataFor(info), 'Claude', 'claude_desktop_config.json');
  return path.join(xdgConfigHome(info), 'Claude', 'claude_desktop_config.json');
}
