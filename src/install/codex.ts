import { isDeepStrictEqual } from 'node:util';
import { parse, stringify, TomlError } from 'smol-toml';
import { homeFor, pathFor, type EditOptions, type EntryEdit, type HttpEntry, type InstallClient, type PlatformInfo } from './client.ts';
import { entryExists, malformed, shownUrl } from './json-config.ts';
import type { ProxyLaunch } from './launch.ts';

/**
 * Codex CLI: `$CODEX_HOME/config.toml` (default ~/.codex/config.toml), table `[mcp_servers.NAME]`
 * with `command` / `args` / `env` (or, for --gateway, `url` / `http_headers`), and `env_vars` (names Codex passes on from its own environment;
 * Codex starts stdio servers with only a short list of variables otherwise).
 *
 * The file is edited as TEXT so the user's comments and layout survive (smol-toml drops comments):
 * a new table is appended; with --force an existing table's block (and its sub-tables) is replaced
 * in place. The result is parsed back and must equal the old document plus exactly our entry;
 * only if it does not (the entry was written as an inline table or dotted keys, say) is the whole
 * file re-serialized, which drops comments (reported, and the backup keeps them).
 */
export const codex: InstallClient = {
  id: 'codex',
  title: 'Codex',
  configPath: codexConfigPath,
  renderEntry: (entryName, launch) => renderCodexTable(entryName, launch, '\n'),
  applyEntry: applyCodexEntry,
  // Streamable HTTP: `url` plus `http_headers` (literal header values), as `codex mcp get --json`
  // reads them back (transport "streamable_http"); Codex docs, "MCP" → "Streamable HTTP servers".
  http: {
    renderEntry: (entryName, entry) => renderTomlTable(entryName, codexHttpTable(entry), '\n'),
    applyEntry: ({ entry, ...opts }) => applyCodexTable({ ...opts, table: codexHttpTable(entry) }),
  },
};

export function codexConfigPath(info: PlatformInfo): string {
  const path = pathFor(info.platform);
  return path.join(info.env.CODEX_HOME || path.join(homeFor(info), '.codex'), 'config.toml');
}

/** Values a server table holds: strings, lists of strings, and one-level tables of strings. */
type TomlValue = string | string[] | Record<string, string>;

export function codexTable(launch: ProxyLaunch): Record<string, TomlValue> {
  return {
    command: launch.command,
    args: [...launch.args],
    ...(launch.env ? { env: { ...launch.env } } : {}),
    ...(launch.forwardEnv?.length ? { env_vars: [...launch.forwardEnv] } : {}),
  };
}

export function codexHttpTable(entry: HttpEntry): Record<string, TomlValue> {
  return { url: entry.url, http_headers: { ...entry.headers } };
}

export function renderCodexTable(entryName: string, launch: ProxyLaunch, eol: string): string {
  return renderTomlTable(entryName, codexTable(launch), eol);
}

/** `[mcp_servers.NAME]` and one `key = value` line per entry, in order (inline tables for maps). */
function renderTomlTable(entryName: string, table: Record<string, TomlValue>, eol: string): string {
  const value = (v: TomlValue): string =>
    typeof v === 'string'
      ? tomlString(v)
      : Array.isArray(v)
        ? `[${v.map(tomlString).join(', ')}]`
        : `{ ${Object.entries(v).map(([k, x]) => `${tomlKey(k)} = ${tomlString(x)}`).join(', ')} }`;
  const lines = [`[mcp_servers.${tomlKey(entryName)}]`, ...Object.entries(table).map(([k, v]) => `${tomlKey(k)} = ${value(v)}`)];
  return lines.join(eol) + eol;
}

export function applyCodexEntry(opts: EditOptions & { launch: ProxyLaunch }): EntryEdit {
  const { launch, ...rest } = opts;
  return applyCodexTable({ ...rest, table: codexTable(launch) });
}

function applyCodexTable(opts: EditOptions & { table: Record<string, TomlValue> }): EntryEdit {
  const { file, entryName, table } = opts;
  const text = opts.existing ?? '';
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const before = parseToml(text, file);
  const servers = before.mcp_servers;
  if (servers !== undefined && !isTable(servers)) throw malformed(file, '`mcp_servers` must be a table of servers');
  let status: EntryEdit['status'] = 'created';
  if (servers && Object.hasOwn(servers, entryName)) {
    const current = servers[entryName];
    if (sameData(current, table)) return { text, status: 'unchanged', commentsDropped: false };
    if (!opts.force && !opts.replaceable?.(plain(current))) {
      // An entry with `url` is most likely the remote server itself, configured in Codex directly.
      const remote = isTable(current) && typeof current.url === 'string' ? ` (Codex's own remote entry, url = ${shownUrl(current.url)})` : '';
      throw entryExists(file, `[mcp_servers.${entryName}]`, entryName, 'Codex', remote);
    }
    status = 'replaced';
  }

  const expected = parseToml(text, file);
  const expectedServers = isTable(expected.mcp_servers) ? expected.mcp_servers : {};
  Object.defineProperty(expectedServers, entryName, { value: table, enumerable: true, writable: true, configurable: true });
  expected.mcp_servers = expectedServers;

  const block = renderTomlTable(entryName, table, eol);
  const candidate = status === 'created' ? appendTable(text, block, eol) : replaceTable(text, entryName, block, eol);
  if (candidate !== undefined && sameDocument(candidate, expected)) return { text: candidate, status, commentsDropped: false };
  return { text: stringify(expected) + '\n', status, commentsDropped: /#/.test(text) };
}

function appendTable(text: string, block: string, eol: string): string {
  if (!text.trim()) return block;
  const base = /\n$/.test(text) ? text : text + eol;
  return base + eol + block;
}

/**
 * Replaces the lines from `[mcp_servers.NAME]` up to the next table header that is not one of its
 * sub-tables; comment and blank lines just before that header stay (they usually describe it).
 */
function replaceTable(text: string, entryName: string, block: string, eol: string): string | undefined {
  const lines = text.split('\n');
  const paths = lines.map(headerPath);
  const start = paths.findIndex((p) => p !== undefined && p.length === 2 && p[0] === 'mcp_servers' && p[1] === entryName);
  if (start < 0) return undefined;
  let end = start + 1;
  while (end < lines.length) {
    const p = paths[end];
    if (p !== undefined && !(p.length > 2 && p[0] === 'mcp_servers' && p[1] === entryName)) break;
    end++;
  }
  const hasNext = end < lines.length;
  if (hasNext) while (end - 1 > start && /^\s*(#.*)?\r?$/.test(lines[end - 1])) end--;
  const head = lines.slice(0, start).join('\n');
  const tail = lines.slice(end).join('\n');
  // One blank line between our table and what follows (kept blank lines count).
  const gap = hasNext && !/^\s*\r?$/.test(lines[end]) ? eol : '';
  return (start ? head + '\n' : '') + block + gap + tail;
}

/** The key path of a `[table]` / `[[array]]` header line, or undefined for any other line. */
export function headerPath(line: string): string[] | undefined {
  const m = /^\s*\[{1,2}(.*?)\]{1,2}\s*(#.*)?\r?$/.exec(line);
  if (!m) return undefined;
  const keys: string[] = [];
  const re = /\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(\.|$)/y;
  let pos = 0;
  const inner = m[1];
  while (pos < inner.length) {
    re.lastIndex = pos;
    const k = re.exec(inner);
    if (!k) return undefined;
    if (k[1] !== undefined) keys.push(k[1]);
    else if (k[2] !== undefined) {
      try {
        keys.push(JSON.parse(`"${k[2]}"`) as string);
      } catch {
        return undefined;
      }
    } else keys.push(k[3]);
    pos = re.lastIndex;
    if (k[4] === '') break;
  }
  return keys.length ? keys : undefined;
}

function sameDocument(candidate: string, expected: Record<string, unknown>): boolean {
  try {
    return sameData(parse(candidate), expected);
  } catch {
    return false;
  }
}

/** Structural equality of TOML data; smol-toml's tables have a null prototype, ours do not. */
function sameData(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(plain(a), plain(b));
}

function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Date) return `date:${v.toISOString()}`;
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function parseToml(text: string, file: string): Record<string, unknown> {
  try {
    return parse(text) as Record<string, unknown>;
  } catch (e) {
    // Only line and column: TomlError's message quotes the file, which may hold API keys.
    if (e instanceof TomlError) throw malformed(file, `invalid TOML at line ${e.line}, column ${e.column}`);
    throw malformed(file, 'invalid TOML');
  }
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function tomlKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : tomlString(key);
}

/** TOML basic string: JSON's escapes are valid TOML; DEL must be escaped too in TOML. */
function tomlString(value: string): string {
  return JSON.stringify(value).replace(/\u007f/g, '\\u007F');
}
