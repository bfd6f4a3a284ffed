import { appDataFor, homeFor, jsonEntry, jsonHttpEntry, pathFor, xdgConfigHome, type InstallClient, type PlatformInfo } from './client.ts';
import { applyJsonEntry, renderJsonEntry } from './json-config.ts';

/**
 * VS Code: the user-profile `mcp.json` (a workspace's `.vscode/mcp.json` via --config-file). Its
 * shape differs from the others: `{ "servers": { NAME: { "type": "stdio", command, args, env } } }`,
 * and the file is JSONC: comments and trailing commas are read, and kept on edit (see json-config.ts).
 */
export const vscode: InstallClient = {
  id: 'vscode',
  title: 'VS Code',
  configPath: vscodeConfigPath,
  renderEntry: (entryName, launch) => renderJsonEntry('servers', entryName, jsonEntry(launch, { type: 'stdio' })),
  applyEntry: ({ launch, ...opts }) => applyJsonEntry({ ...opts, containerKey: 'servers', entry: jsonEntry(launch, { type: 'stdio' }), clientTitle: 'VS Code' }),
  // VS Code docs, "MCP configuration reference": `"type": "http"` with `url` and `headers`.
  http: {
    renderEntry: (entryName, entry) => renderJsonEntry('servers', entryName, jsonHttpEntry(entry, { type: 'http' })),
    applyEntry: ({ entry, ...opts }) => applyJsonEntry({ ...opts, containerKey: 'servers', entry: jsonHttpEntry(entry, { type: 'http' }), clientTitle: 'VS Code' }),
  },
};

/** macOS: ~/Library/Application Support/Code/User; Windows: %APPDATA%\Code\User; Linux: $XDG_CONFIG_HOME/Code/User. */
export function vscodeConfigPath(info: PlatformInfo): string {
  const path = pathFor(info.platform);
  if (info.platform === 'darwin') return path.join(homeFor(info), 'Library', 'Application Support', 'Code', 'User', 'mcp.json');
  if (info.platform === 'win32') return path.join(appDataFor(info), 'Code', 'User', 'mcp.json');
  return path.join(xdgConfigHome(info), 'Code', 'User', 'mcp.json');
}
