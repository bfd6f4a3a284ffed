import { fs } from '../builtins.ts';
import { parse, TomlError } from 'smol-toml';
import { McpOAuthError } from '../errors.ts';
import { formatKeyPath, keyAtLine, lineOfKey } from './locate-key.ts';
import { configFileSchema, type ConfigFile, type ServerTable } from './schema.ts';

const OUR_HINT = 'fix the file, or run `mcp-oauth add NAME URL` to rewrite the entry';
const CODEX_HINT = "fix the file (it is Codex CLI's config; mcp-oauth only reads it), or add the server with `mcp-oauth add NAME URL`";

export interface ParsedFile {
  file: string;
  exists: boolean;
  text: string;
  data: ConfigFile;
}

export async function readConfigFile(file: string, kind: 'ours' | 'codex'): Promise<ParsedFile> {
  let text: string;
  try {
    text = fs().readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { file, exists: false, text: '', data: {} };
    throw new McpOAuthError('config_invalid', `${file}: cannot read the config file (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
      hint: `check the permissions of ${file}`,
      cause: e,
    });
  }
  // One command resolves a server and reads the settings from the same file: parse (TOML + zod)
  // once per distinct text. Keyed by the text itself, so an edited file is always parsed afresh.
  const key = `${kind}:${file}`;
  const last = lastParsed.get(key);
  if (last?.text === text) return { file, exists: true, text, data: last.data };
  const data = parseConfigText(text, file, kind);
  lastParsed.set(key, { text, data });
  return { file, exists: true, text, data };
}

const lastParsed = new Map<string, { text: string; data: ConfigFile }>();

/**
 * TOML text → validated config. Errors name the file, the line and the key, never a value (a
 * header value may be a token). For Codex's file only `mcp_servers` is read.
 */
export function parseConfigText(text: string, file: string, kind: 'ours' | 'codex' = 'ours'): ConfigFile {
  const hint = kind === 'ours' ? OUR_HINT : CODEX_HINT;
  let raw: Record<string, unknown>;
  try {
    raw = parse(text) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof TomlError) {
      // Only the first line: the rest is a code excerpt of the file, which may contain secrets.
      const reason = e.message.split('\n')[0].replace(/^Invalid TOML document: /, '');
      // Name the key too (the file may be long and the line alone ambiguous after edits).
      const key = keyAtLine(text, e.line);
      const at = key ? `, at ${formatKeyPath(key)}` : '';
      throw new McpOAuthError('config_invalid', `${file}:${e.line}: invalid TOML: ${reason} (column ${e.column}${at})`, {
        hint,
        details: { file, line: e.line, ...(key ? { key: formatKeyPath(key) } : {}) },
      });
    }
    throw new McpOAuthError('config_invalid', `${file}: invalid TOML`, { hint, cause: e });
  }
  const input = kind === 'ours' ? raw : { mcp_servers: raw.mcp_servers };
  rejectInlineSecrets(input, text, file);
  const result = configFileSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = [...issue.path];
    if (issue.code === 'unrecognized_keys') path.push(issue.keys[0]);
    throw invalidKey(text, file, path as Array<string | number>, issue.message, hint);
  }
  for (const [name, table] of Object.entries(result.data.mcp_servers ?? {}) as Array<[string, ServerTable]>) {
    if (table.url === undefined && table.command === undefined) {
      throw invalidKey(text, file, ['mcp_servers', name], 'needs a url (the remote MCP server endpoint)', hint);
    }
  }
  return result.data;
}

/** Client secrets never live in config files (they get committed, synced and shared). */
function rejectInlineSecrets(input: Record<string, unknown>, text: string, file: string): void {
  const servers = input.mcp_servers;
  if (!servers || typeof servers !== 'object') return;
  for (const [name, table] of Object.entries(servers as Record<string, unknown>)) {
    const oauth = (table as { oauth?: unknown } | null)?.oauth;
    if (oauth && typeof oauth === 'object' && Object.hasOwn(oauth, 'client_secret')) {
      throw invalidKey(
        text,
        file,
        ['mcp_servers', name, 'oauth', 'client_secret'],
        'is not allowed: move the secret into an environment variable and set client_secret_env = "VAR_NAME" instead',
        `remove client_secret from ${file}, export it as an environment variable, and name that variable in client_secret_env`,
      );
    }
  }
}

function invalidKey(text: string, file: string, path: Array<string | number>, message: string, hint: string): McpOAuthError {
  const line = lineOfKey(text, path);
  const key = formatKeyPath(path);
  return new McpOAuthError('config_invalid', `${file}${line ? `:${line}` : ''}: ${key} ${message}`, {
    hint,
    details: { file, line, key },
  });
}
