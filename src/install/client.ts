import { posix, win32 } from 'node:path';
import type { ProxyLaunch } from './launch.ts';

/** The MCP clients `mcp-oauth install` knows, each in its own module. */
export type ClientId = 'codex' | 'claude-code' | 'claude-desktop' | 'cursor' | 'vscode';

/** What decides a client's config path; passed in, so path selection is a pure function. */
export interface PlatformInfo {
  platform: NodeJS.Platform;
  env: NodeJS.ProcessEnv;
  /** The user's home directory (os.homedir() at the edge). */
  homedir: string;
}

/** The result of putting the entry into a config file's text. */
export interface EntryEdit {
  /** The complete new file text (the old text when `unchanged`). */
  text: string;
  /** `unchanged`: the same entry is already there; nothing is written. */
  status: 'created' | 'replaced' | 'unchanged';
  /** True when comments or formatting of the old file could not be kept (the backup has them). */
  commentsDropped: boolean;
}

/** A Streamable HTTP server entry (`install --gateway`): the gateway's endpoint and the headers to send. */
export interface HttpEntry {
  url: string;
  headers: Record<string, string>;
}

/** What every entry edit takes besides the entry itself. */
export interface EditOptions {
  existing: string | undefined;
  file: string;
  entryName: string;
  force: boolean;
  /** An existing, different entry this returns true for is replaced without --force (one mcp-oauth wrote). */
  replaceable?: (current: unknown) => boolean;
}

export interface InstallClient {
  id: ClientId;
  /** Human name, e.g. "Claude Desktop". */
  title: string;
  /** The user-level config file on this platform. */
  configPath(info: PlatformInfo): string;
  /** The exact text (TOML table / JSON document) `--print` shows for the entry. */
  renderEntry(entryName: string, launch: ProxyLaunch): string;
  /**
   * The new file text with the entry set. `existing` is undefined when the file does not exist.
   * Throws `config_invalid` for a malformed file and `usage` for an existing, different entry
   * without `force`.
   */
  applyEntry(opts: EditOptions & { launch: ProxyLaunch }): EntryEdit;
  /**
   * The same for a Streamable HTTP entry (`install --gateway`). Absent when the client's config
   * file cannot hold an HTTP server (Claude Desktop).
   */
  http?: {
    renderEntry(entryName: string, entry: HttpEntry): string;
    applyEntry(opts: EditOptions & { entry: HttpEntry }): EntryEdit;
  };
}

/** Path functions of the target platform (Windows paths stay Windows paths in tests on Linux). */
export function pathFor(platform: NodeJS.Platform): typeof posix {
  return platform === 'win32' ? win32 : posix;
}

/** Home directory on the target platform: %USERPROFILE% on Windows, $HOME elsewhere. */
export function homeFor(info: PlatformInfo): string {
  return (info.platform === 'win32' ? info.env.USERPROFILE : info.env.HOME) || info.homedir;
}

/** %APPDATA% on Windows (Roaming), default <home>\AppData\Roaming. */
export function appDataFor(info: PlatformInfo): string {
  return info.env.APPDATA || win32.join(homeFor(info), 'AppData', 'Roaming');
}

/** $XDG_CONFIG_HOME (only when absolute, per the XDG Base Directory spec), default ~/.config. */
export function xdgConfigHome(info: PlatformInfo): string {
  const xdg = info.env.XDG_CONFIG_HOME;
  return xdg && posix.isAbsolute(xdg) ? xdg : posix.join(homeFor(info), '.config');
}

/**
 * The entry object as JSON clients store it: `env` only when there is something in it.
 * `launch.forwardEnv` is not written: JSON configs have no way to pass a variable on by name
 * (Cursor, VS Code and Claude Code start servers with their own whole environment anyway).
 */
export function jsonEntry(launch: ProxyLaunch, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...extra, command: launch.command, args: [...launch.args], ...(launch.env ? { env: { ...launch.env } } : {}) };
}

/** An HTTP entry as JSON clients store it: `url` and `headers` (plus `type` where the client wants one). */
export function jsonHttpEntry(entry: HttpEntry, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...extra, url: entry.url, headers: { ...entry.headers } };
}
