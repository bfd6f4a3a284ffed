import { resolve as resolvePath } from 'node:path';
import { McpOAuthError } from '../errors.ts';
import type { ServerConfig } from '../types.ts';
import type { ClientId, EditOptions, EntryEdit, HttpEntry, InstallClient, PlatformInfo } from './client.ts';
import { claudeCode } from './claude-code.ts';
import { claudeDesktop } from './claude-desktop.ts';
import { codex, codexConfigPath } from './codex.ts';
import { cursor } from './cursor.ts';
import { vscode } from './vscode.ts';
import { backupFile, NEW_FILE_MODE, readExisting, writeFileKeepingMode } from './file-write.ts';
import { CLI_SCRIPT_PATH, entryNameFor, launchWarnings, proxyLaunch, type ProxyLaunch, type StoreChoice } from './launch.ts';
import { checkGatewayInstall, gatewayHttpEntry, ownEntryKind, SECRET_PLACEHOLDER } from './gateway-entry.ts';
import { fingerprint } from '../secrets.ts';

export type { ClientId, HttpEntry, InstallClient, PlatformInfo } from './client.ts';
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
 * (an unknown NAME fails here, before any file is touched), builds the launch line (or, with
 * `gateway`, the gateway's HTTP entry), picks the file, installs. `resolveServer` is injected
 * (config.ts's resolveServer at the edge).
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
  /**
   * `--gateway`: an HTTP entry for the gateway at `base` instead of the stdio proxy. `secret` is
   * asked for only once the client and the server have passed their checks (with --print it must
   * not create one: undefined then, and the entry is computed with a placeholder).
   */
  gateway?: { base: string; secret: () => Promise<string | undefined> };
  execPath?: string;
  cliPath?: string;
  now?: () => Date;
}): Promise<InstallResult & { server: ServerConfig }> {
  const client = clientFor(opts.clientName);
  if (opts.gateway) checkGatewayInstall(client, opts.target);
  const server = await opts.resolveServer(opts.target);
  const entryName = entryNameFor(server, opts.as);
  const info: PlatformInfo = { platform: opts.platform, env: opts.env, homedir: opts.homedir };
  const common = {
    client,
    server,
    entryName,
    file: opts.configFile ? resolvePath(opts.configFile) : client.configPath(info),
    codexConfigFile: codexConfigPath(info),
    force: opts.force,
    print: opts.print,
    ...(opts.now ? { now: opts.now } : {}),
  };
  if (opts.gateway) {
    checkGatewayInstall(client, opts.target, server);
    const secret = await opts.gateway.secret();
    const entry = gatewayHttpEntry({ base: opts.gateway.base, serverName: server.name, secret: secret ?? SECRET_PLACEHOLDER });
    return { ...(await installHttpEntry({ ...common, entry, secret })), server };
  }
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
  return { ...(await installProxyEntry({ ...common, launch })), server };
}

interface EntryTargetOptions {
  client: InstallClient;
  server: ServerConfig;
  entryName: string;
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

export interface InstallOptions extends EntryTargetOptions {
  launch: ProxyLaunch;
}

export interface InstallResult {
  client: ClientId;
  title: string;
  file: string;
  entryName: string;
  /** `stdio`: the entry starts the proxy (`launch`); `http`: it reaches the gateway (`http`). */
  transport: 'stdio' | 'http';
  launch?: ProxyLaunch;
  http?: {
    /** The gateway endpoint the entry points at. */
    url: string;
    /** Header names sent (their values hold the secret and are never shown). */
    headerNames: string[];
    /** fingerprint() of the gateway secret, or null when --print ran before one exists. */
    secretFingerprint: string | null;
    /** Mode bits of the file after the write (or now, with --print / unchanged); null when it does not exist. */
    mode: number | null;
  };
  /** The entry as the client's file spells it (what --print shows); the gateway secret is replaced by a placeholder. */
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
  const { client, entryName, launch } = opts;
  const r = await writeEntry(opts, {
    entryText: client.renderEntry(entryName, launch),
    // Switching back from `--gateway`: the gateway entry mcp-oauth wrote is replaced without --force.
    apply: (existing) => client.applyEntry({ ...editOptions(opts, existing, (v) => ownEntryKind(v, opts.server.name) === 'gateway'), launch }),
  });
  return { ...r.result, transport: 'stdio', launch, warnings: launchWarnings(launch) };
}

/**
 * Puts the gateway's HTTP entry into the client's config file, as installProxyEntry does. The
 * file then holds the gateway secret: a new file is created 0600 (NEW_FILE_MODE); an existing one
 * keeps the user's mode, with a warning when others can read it.
 */
export async function installHttpEntry(opts: EntryTargetOptions & { entry: HttpEntry; secret: string | undefined }): Promise<InstallResult> {
  const { client, entryName, entry, secret } = opts;
  const http = client.http!;
  const shown = secret ? { ...entry, headers: Object.fromEntries(Object.entries(entry.headers).map(([k, v]) => [k, v.split(secret).join(SECRET_PLACEHOLDER)])) } : entry;
  const r = await writeEntry(opts, {
    entryText: http.renderEntry(entryName, shown),
    // The stdio proxy entry (or an older gateway entry) mcp-oauth wrote for this server is replaced without --force.
    apply: (existing) => http.applyEntry({ ...editOptions(opts, existing, (v) => ownEntryKind(v, opts.server.name) !== undefined), entry }),
  });
  const warnings: string[] = [];
  if (r.mode !== null && (r.mode & 0o077) !== 0 && process.platform !== 'win32') {
    warnings.push(`${opts.file} is readable by other users (mode ${r.mode.toString(8).padStart(4, '0')}) and ${r.result.status === 'printed' ? 'would hold' : 'holds'} the gateway secret: chmod 600 ${opts.file}`);
  }
  return {
    ...r.result,
    transport: 'http',
    http: { url: entry.url, headerNames: Object.keys(entry.headers), secretFingerprint: secret ? fingerprint(secret) : null, mode: r.mode },
    warnings,
  };
}

function editOptions(opts: EntryTargetOptions, existing: string | undefined, replaceable: (v: unknown) => boolean): EditOptions {
  return { existing, file: opts.file, entryName: opts.entryName, force: opts.force, replaceable };
}

/** The steps shared by both kinds of entry: checks, the edit, --print, backup, atomic write. */
async function writeEntry(
  opts: EntryTargetOptions,
  entry: { entryText: string; apply: (existing: string | undefined) => EntryEdit },
): Promise<{ result: Omit<InstallResult, 'transport' | 'warnings'>; mode: number | null }> {
  const { client, entryName, file } = opts;
  const base = { client: client.id, title: client.title, file, entryName, entryText: entry.entryText, commentsDropped: false };
  refuseSelfShadowing(opts);
  const existing = await readExisting(file);
  const edit = entry.apply(existing?.text);
  const mode = existing?.mode ?? null;
  // --print stops here: the same checks as a real install have run (a refusal has been thrown).
  if (opts.print) return { result: { ...base, status: 'printed', wouldBe: edit.status, commentsDropped: edit.commentsDropped }, mode: mode ?? NEW_FILE_MODE };
  if (edit.status === 'unchanged') return { result: { ...base, status: 'unchanged' }, mode };
  const backup = existing ? await backupFile(file, existing, (opts.now ?? (() => new Date()))()) : undefined;
  await writeFileKeepingMode(existing?.realPath ?? file, edit.text, existing?.mode ?? NEW_FILE_MODE);
  return { result: { ...base, status: edit.status, ...(backup ? { backup } : {}), commentsDropped: edit.commentsDropped }, mode: mode ?? NEW_FILE_MODE };
}

/**
 * mcp-oauth reads server entries from Codex's config too. When NAME lives only there, replacing
 * `[mcp_servers.NAME]` (its url) with the proxy's command would leave `mcp-oauth proxy NAME`
 * nothing to resolve: the proxy would fail on every start. Refused even with --force.
 */
function refuseSelfShadowing(opts: EntryTargetOptions): void {
  const { server, entryName } = opts;
  if (opts.client.id !== 'codex' || server.source !== 'codex' || server.name !== entryName) return;
  if (resolvePath(opts.file) !== resolvePath(server.configFile ?? opts.codexConfigFile)) return;
  throw new McpOAuthError(
    'usage',
    `[mcp_servers.${entryName}] in ${opts.file} is the entry mcp-oauth itself reads for ${entryName} (url = ${server.url}); replacing it would leave the proxy (and the gateway) without a server`,
    {
      hint: `mcp-oauth install codex ${entryName} --as ${entryName}-oauth (keeps both), or first \`mcp-oauth add ${entryName} ${server.url}\` and then install with --force`,
      details: { file: opts.file, entry: entryName },
    },
  );
}
