import { isDeepStrictEqual } from 'node:util';
import { McpOAuthError } from '../errors.ts';
import type { EntryEdit } from './client.ts';

/**
 * Editing the JSON config files of Claude Desktop, Cursor and VS Code: one object of servers
 * under `containerKey` ("mcpServers", or "servers" for VS Code), every other key kept as is.
 *
 * VS Code's mcp.json is JSONC (comments, trailing commas). Plain JSON.parse is tried first; if it
 * fails, comments and trailing commas are stripped and the parse retried. The rewritten file is
 * plain JSON: COMMENTS ARE NOT PRESERVED (the caller reports it, and the backup keeps them).
 */
export function applyJsonEntry(opts: {
  existing: string | undefined;
  file: string;
  containerKey: string;
  entryName: string;
  entry: Record<string, unknown>;
  force: boolean;
  clientTitle: string;
}): EntryEdit {
  const { file, containerKey, entryName, entry } = opts;
  const existingText = (opts.existing ?? '').replace(/^\uFEFF/, '');
  const { doc, commentsDropped } = existingText.trim() ? parseJsonConfig(existingText, file) : { doc: {}, commentsDropped: false };
  const container = doc[containerKey] ?? {};
  if (!isPlainObject(container)) {
    throw malformed(file, `"${containerKey}" must be a JSON object of servers`);
  }
  let status: EntryEdit['status'] = 'created';
  if (Object.hasOwn(container, entryName)) {
    if (isDeepStrictEqual(container[entryName], entry)) return { text: opts.existing ?? '', status: 'unchanged', commentsDropped: false };
    if (!opts.force) throw entryExists(file, `"${containerKey}"."${entryName}"`, entryName, opts.clientTitle);
    status = 'replaced';
  }
  // defineProperty, not assignment: a key like "__proto__" must stay a plain key.
  Object.defineProperty(container, entryName, { value: entry, enumerable: true, writable: true, configurable: true });
  doc[containerKey] = container;
  return { text: JSON.stringify(doc, null, detectIndent(existingText)) + '\n', status, commentsDropped };
}

/** The snippet --print shows: a complete JSON document with just the new entry. */
export function renderJsonEntry(containerKey: string, entryName: string, entry: Record<string, unknown>): string {
  return JSON.stringify({ [containerKey]: { [entryName]: entry } }, null, 2) + '\n';
}

export function parseJsonConfig(text: string, file: string): { doc: Record<string, unknown>; commentsDropped: boolean } {
  let doc: unknown;
  let commentsDropped = false;
  try {
    doc = JSON.parse(text);
  } catch (first) {
    const stripped = stripJsonc(text);
    try {
      doc = JSON.parse(stripped);
      commentsDropped = true;
    } catch {
      // Only the position: JSON.parse's message quotes the file, which may hold API keys.
      const where = /line (\d+) column (\d+)/.exec((first as Error).message);
      throw malformed(file, `not valid JSON${where ? ` (line ${where[1]}, column ${where[2]})` : ''}`);
    }
  }
  if (!isPlainObject(doc)) throw malformed(file, 'the top level must be a JSON object');
  return { doc, commentsDropped };
}

/** JSONC → JSON: drops // and /* *\/ comments, then trailing commas, outside strings; newlines kept. */
export function stripJsonc(text: string): string {
  return dropTrailingCommas(dropComments(text));
}

function dropComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const j = stringEnd(text, i);
      out += text.slice(i, j);
      i = j;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const comment = text.slice(i, end < 0 ? text.length : end + 2);
      out += comment.replace(/[^\n]/g, '');
      i += comment.length;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function dropTrailingCommas(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const j = stringEnd(text, i);
      out += text.slice(i, j);
      i = j;
      continue;
    }
    if (c === ',') {
      let j = i + 1;
      while (j < text.length && /\s/.test(text[j])) j++;
      if (text[j] === '}' || text[j] === ']') {
        i++;
        continue;
      }
    }
    out += c;
    i++;
  }
  return out;
}

/** Index just past the JSON string starting at `start` (a quote), skipping escapes. */
function stringEnd(text: string, start: number): number {
  let j = start + 1;
  while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
  return Math.min(j + 1, text.length);
}

/** Keeps the file's indentation style (tabs or N spaces); 2 spaces for a new file. */
function detectIndent(text: string): string | number {
  const m = /^[{[][^\n]*\n([ \t]+)\S/m.exec(text) ?? /\n([ \t]+)\S/.exec(text);
  if (!m) return 2;
  return m[1].startsWith('\t') ? '\t' : Math.min(m[1].length, 8);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function malformed(file: string, why: string): McpOAuthError {
  return new McpOAuthError('config_invalid', `${file}: ${why}; the file was left unchanged`, {
    hint: `fix ${file} (or move it away) and run the command again`,
  });
}

export function entryExists(file: string, where: string, entryName: string, clientTitle: string, extra = ''): McpOAuthError {
  return new McpOAuthError('usage', `${file} already has an entry ${where}${extra}; it was left unchanged`, {
    hint: `pass --force to replace it in ${clientTitle}'s config, or --as ${entryName}-oauth to add the proxy under another name`,
    details: { file, entry: entryName },
  });
}
