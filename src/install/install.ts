import { resolve as resolvePath } from 'node:path';
import { McpOAuthError } from '../errors.ts';
import type { ServerConfig } from '../types.ts';
import type { ClientId, InstallClient, PlatformInfo } from './client.ts';
import { claudeCode } from './claude-code.ts';
import { claudeDesktop } from './claude-desktop.ts';
import { codex, codexConfigPath } from './codex.ts';
import { cursor } from './cursor.ts';
import { vscode } from './vscode.ts';
import { backupFile, NEW_FILE_MODE, readExisting, writeFileKeepingMode } from './file-write.ts';
import { CLI_SCRIPT_PATH, entryNameFor, launchWarnings, proxyLaunch, type ProxyLaunch, type StoreChoice } from './launch.ts';

export type { ClientId, InstallClient, PlatformInfo } from './client.ts';
export { entryNameFor, proxyLaunch, CLI_SCRIPT_PATH, type ProxyLaunch, type StoreChoice } from './launch.ts';
export { codexConfigPath } from './codex.ts';

export const CLIENTS: Record<ClientId, InstallClient> = {
  codex,
  'claude-code': claudeCode,
  'claude-desktop': claudeDesktop,
  cursor,
  vscode,
};

const ALIASES: Record<string, ClientId> = { code: 'vscode', 'vs-code': 'vscode' };

export function clientFor(name: string): InstallClient {
  const lower = name.toLowerCase();
  // `claude` is both Claude Code's command and the start of Claude Desktop's name: never guessed.
  if (lower === 'claude') {
    throw new McpOAuthError('usage', '"claude" could mean Claude Code or Claude Desktop; name the client', {
      hint: 'mcp-oauth install claude-code NAME (the `claude` CLI), or mcp-oauth install claude-desktop NAME (the desktop app)',
    });
  }
  const id = (Object.hasOwn(CLIENTS, lower) ? lower : Object.hasOwn(ALIASES, lower) ? ALIASES[lower] : undefined) as ClientId | undefined;
  if (!id) {
    throw new McpOAuthError('usage', `unknown client ${JSON.stringify(name)}; known clients: ${Object.keys(CLIENTS).join(', ')}`, {
      hint: `mcp-oauth install ${Object.keys(CLIENTS).join('|')} NAME`,
    });
  }
  return CLIENTS[id];
}

/** The client's config path for this platform: a pure function of `info` (see each client module). */
export function clientConfigPath(client: ClientId, info: PlatformInfo): string {
  return CLIENTS[client].configPath(info);
}

/**
 * `mcp-oauth install CLIENT NAME|URL` without the printing: resolves the client and the server
 * (an unknown NAME fails here, before any file is touched), builds the launch line, picks the
 * file, installs. `resolveServer` is injected (config.ts's resolveServer at the edge).
 */
export async function installForCommand(opts: {
  clientName: string;
  target: string;
  as?: string;
  configFile?: string;
  force: boolean;
  print: boolean;
  env: NodeJS.ProcessEnv;
  /** mcp-oauth's home as the CLI resolved it ($MCP_OAUTH_HOME or the XDG default). */
  home: string;
  platform: NodeJS.Platform;
  homedir: string;
  resolveServer: (nameOrUrl: string) => Promise<ServerConfig>;
  /** `[settings] store` of our config (MCP_OAUTH_STORE in `env` wins, as everywhere). */
  storeSetting?: StoreChoice;
  execPath?: string;
  cliPath?: string;
  now?: () => Date;
}): Promise<InstallResult & { server: ServerConfig }> {
  const client = clientFor(opts.clientName);
  const server = await opts.resolveServer(opts.target);
  const entryName = entryNameFor(server, opts.as);
  const launch = proxyLaunch({
    target: opts.target,
    server,
    env: opts.env,
    home: opts.home,
    execPath: opts.execPath ?? process.execPath,
    cliPath: opts.cliPath ?? CLI_SCRIPT_PATH,
    client: client.id,
    platform: opts.platform,
    ...(opts.storeSetting ? { storeSetting: opts.storeSetting } : {}),
  });
  const info: PlatformInfo = { platform: opts.platform, env: opts.env, homedir: opts.homedir };
  const result = await installProxyEntry({
    client,
    server,
    entryName,
    launch,
    file: opts.configFile ? resolvePath(opts.configFile) : client.configPath(info),
    codexConfigFile: codexConfigPath(info),
    force: opts.force,
    print: opts.print,
    ...(opts.now ? { now: opts.now } : {}),
  });
  return { ...result, server };
}

export interface InstallOptions {
  client: InstallClient;
  server: ServerConfig;
  entryName: string;
  launch: ProxyLaunch;
  /** The file to edit (the client's default path, or --config-file). */
  file: string;
  /** Codex's config.toml as mcp-oauth reads it (to refuse replacing the entry the proxy itself reads). */
  codexConfigFile: string;
  force: boolean;
  /**
   * Show the entry and write nothing. Everything else runs as for real (the file is read and the
   * edit computed), so --print fails exactly where install would, with the same error and exit code.
   */
  print: boolean;
  now?: () => Date;
}

export interface InstallResult {
  client: ClientId;
  title: string;
  file: string;
  entryName: string;
  launch: ProxyLaunch;
  /** The entry as the client's file spells it (what --print shows). */
  entryText: string;
  status: 'created' | 'replaced' | 'unchanged' | 'printed';
  /** With --print: what install would do (created, replaced with --force, or nothing to change). */
  wouldBe?: 'created' | 'replaced' | 'unchanged';
  backup?: string;
  commentsDropped: boolean;
  warnings: string[];
}

/** Puts the proxy entry into the client's config file: validate, back up, write atomically. */
export async function installProxyEntry(opts: InstallOptions): Promise<InstallResult> {
  const { client, entryName, launch, file } = opts;
  const base = {
    client: client.id,
    title: client.title,
    file,
    entryName,
    launch,
    entryText: client.renderEntry(entryName, launch),
    commentsDropped: false,
    warnings: launchWarnings(launch),
  };
  refuseSelfShadowing(opts);
  const existing = await readExisting(file);
  const edit = client.applyEntry({ existing: existing?.text, file, entryName, launch, force: opts.force });
  // --print stops here: the same checks as a real install have run (a refusal has been thrown).
  if (opts.print) return { ...base, status: 'printed', wouldBe: edit.status, commentsDropped: edit.commentsDropped };
  if (edit.status === 'unchanged') return { ...base, status: 'unchanged' };
  const backup = existing ? await backupFile(file, existing, (opts.now ?? (() => new Date()))()) : undefined;
  await writeFileKeepingMode(existing?.realPath ?? file, edit.text, existing?.mode ?? NEW_FILE_MODE);
  return { ...base, status: edit.status, ...(backup ? { backup } : {}), commentsDropped: edit.commentsDropped };
}

/**
 * mcp-oauth reads server entries from Codex's config too. When NAME lives only there, replacing
 * `[mcp_servers.NAME]` (its url) with the proxy's command would leave `mcp-oauth proxy NAME`
 * nothing to resolve: the proxy would fail on every start. Refused even with --force.
 */
function refuseSelfShadowing(opts: InstallOptions): void {
  const { server, entryName } = opts;
  if (opts.client.id !== 'codex' || server.source !== 'codex' || server.name !== entryName) return;
  if (resolvePath(opts.file) !== resolvePath(server.configFile ?? opts.codexConfigFile)) return;
  throw new McpOAuthError(
    'usage',
    `[mcp_servers.${entryName}] in ${opts.file} is the entry mcp-oauth itself reads for ${entryName} (url = ${server.url}); replacing it with the proxy would leave the proxy without a server`,
    {
      hint: `mcp-oauth install codex ${entryName} --as ${entryName}-oauth (keeps both), or first \`mcp-oauth add ${entryName} ${server.url}\` and then install with --force`,
      details: { file: opts.file, entry: entryName },
    },
  );
}
