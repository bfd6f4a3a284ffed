import { isDeepStrictEqual } from 'node:util';
import { applyEdits, findNodeAtLocation, getNodeValue, parseTree, printParseErrorCode, type Edit, type Node, type ParseError } from 'jsonc-parser';
import { McpOAuthError } from '../errors.ts';
import type { EntryEdit } from './client.ts';

/**
 * Editing the JSON config files of Claude Desktop, Cursor and VS Code: one object of servers
 * under `containerKey` ("mcpServers", or "servers" for VS Code), everything else kept.
 *
 * VS Code's mcp.json is JSONC (comments, trailing commas); the others are read the same way.
 * The file is parsed with jsonc-parser (the parser VS Code itself uses) and edited as TEXT: one
 * insertion (or, with --force, one replacement of the old entry's value), laid out in the file's
 * own indentation and line endings. Every byte outside the entry is kept: comments, key order,
 * formatting. (jsonc-parser's `modify` with formattingOptions is not used for the edit: its range
 * formatter also rewrites the neighbouring line, e.g. expands a one-line sibling entry.)
 */
export function applyJsonEntry(opts: {
  existing: string | undefined;
  file: string;
  containerKey: string;
  entryName: string;
  entry: Record<string, unknown>;
  force: boolean;
  clientTitle: string;
  /** An existing, different entry this accepts is replaced without --force (one mcp-oauth wrote). */
  replaceable?: (current: unknown) => boolean;
}): EntryEdit {
  const { file, containerKey, entryName, entry } = opts;
  const bom = opts.existing?.startsWith('\uFEFF') ? '\uFEFF' : '';
  const text = (opts.existing ?? '').slice(bom.length);
  if (!text.trim()) return { text: renderJsonEntry(containerKey, entryName, entry), status: 'created', commentsDropped: false };

  const root = parseJsonConfig(text, file);
  const style = detectStyle(text);
  const container = findNodeAtLocation(root, [containerKey]);
  let status: EntryEdit['status'] = 'created';
  let edits: Edit[];
  if (!container) {
    edits = insertProperty(text, root, containerKey, { [entryName]: entry }, style);
  } else if (container.type === 'null') {
    // `"servers": null` reads as "no servers" (as before): the null becomes the object.
    edits = [replaceValue(text, container, root, { [entryName]: entry }, style)];
  } else if (container.type !== 'object') {
    throw malformed(file, `"${containerKey}" must be a JSON object of servers`);
  } else {
    const current = findNodeAtLocation(container, [entryName]);
    if (current) {
      if (isDeepStrictEqual(plain(getNodeValue(current)), entry)) return { text: opts.existing ?? '', status: 'unchanged', commentsDropped: false };
      if (!opts.force && !opts.replaceable?.(plain(getNodeValue(current)))) {
        // An entry with `url` is most likely the remote server itself, configured in the client directly.
        const value = plain(getNodeValue(current));
        const url = isPlainObject(value) && typeof value.url === 'string' ? value.url : undefined;
        throw entryExists(file, `"${containerKey}"."${entryName}"`, entryName, opts.clientTitle, url ? ` (${opts.clientTitle}'s own remote entry, url = ${shownUrl(url)})` : '');
      }
      status = 'replaced';
      edits = [replaceValue(text, current, container, entry, style)];
    } else {
      edits = insertProperty(text, container, entryName, entry, style);
    }
  }
  const next = applyEdits(text, edits);
  // The edit is text surgery: check that the result reads back as exactly the old document with
  // the entry set (duplicate keys, say, would make it land where it does not count).
  if (!sameDocument(next, expectedDocument(root, containerKey, entryName, entry))) {
    throw malformed(file, `the entry could not be placed under "${containerKey}" without changing other settings (duplicate keys?)`);
  }
  return { text: bom + next, status, commentsDropped: false };
}

/** The snippet --print shows (and a new file's text): a JSON document with just the new entry. */
export function renderJsonEntry(containerKey: string, entryName: string, entry: Record<string, unknown>): string {
  return JSON.stringify({ [containerKey]: { [entryName]: entry } }, null, 2) + '\n';
}

const PARSE_OPTIONS = { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false };

/**
 * Parses a JSON / JSONC config into jsonc-parser's syntax tree (offsets kept for the edit).
 * Any parse error is a malformed file: named by line and column only, never quoting the text
 * (config files hold API keys and tokens).
 */
export function parseJsonConfig(text: string, file: string): Node {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, PARSE_OPTIONS);
  if (errors.length > 0) {
    const { error, offset } = errors[0];
    const { line, column } = lineColumn(text, offset);
    throw malformed(file, `not valid JSON (line ${line}, column ${column}: ${printParseErrorCode(error)})`);
  }
  if (!root || root.type !== 'object') throw malformed(file, 'the top level must be a JSON object');
  return root;
}

/** 1-based line and column (UTF-16 units) of a 0-based offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: offset - lineStart + 1 };
}

interface Style {
  /** One indentation level: a tab or N spaces (2 when the file shows none). */
  unit: string;
  eol: '\n' | '\r\n';
}

/** Keeps the file's indentation (tabs or N spaces) and line endings. */
function detectStyle(text: string): Style {
  const m = /^[{[][^\n]*\n([ \t]+)\S/m.exec(text) ?? /\n([ \t]+)\S/.exec(text);
  const unit = !m ? '  ' : m[1].startsWith('\t') ? '\t' : ' '.repeat(Math.min(m[1].length, 8));
  return { unit, eol: text.includes('\r\n') ? '\r\n' : '\n' };
}

/** `value` pretty-printed with the file's unit, its inner lines indented from `indent`. */
function layout(value: unknown, indent: string, style: Style): string {
  // JSON.stringify escapes newlines inside strings, so every '\n' here is a line break.
  return JSON.stringify(value, null, style.unit).split('\n').join(style.eol + indent);
}

function lineStartOf(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

/** The whitespace that starts the line `offset` is on. */
function indentOfLine(text: string, offset: number): string {
  return /^[ \t]*/.exec(text.slice(lineStartOf(text, offset), offset))![0];
}

/** Indentation of a member of `parent` starting at `member`: its own line's, or one level in. */
function memberIndent(text: string, parent: Node, member: Node | undefined, style: Style): string {
  if (member && lineStartOf(text, member.offset) > parent.offset) return indentOfLine(text, member.offset);
  return indentOfLine(text, parent.offset) + style.unit;
}

/** With --force: the old entry's value (comments inside it go with it) becomes the new one. */
function replaceValue(text: string, valueNode: Node, parent: Node, value: unknown, style: Style): Edit {
  const indent = memberIndent(text, parent, valueNode.parent, style);
  return { offset: valueNode.offset, length: valueNode.length, content: layout(value, indent, style) };
}

/** Adds `"key": value` as the last member of the object `parent`. */
function insertProperty(text: string, parent: Node, key: string, value: unknown, style: Style): Edit[] {
  const members = parent.children ?? [];
  const last = members.at(-1);
  const indent = memberIndent(text, parent, last, style);
  const property = `${JSON.stringify(key)}: ${layout(value, indent, style)}`;
  const { eol } = style;
  if (last) {
    const end = last.offset + last.length;
    // After the last member, on its line: maybe a (trailing) comma and a comment. The new member
    // goes on the next line so such a comment stays with the member it was written for.
    const rest = /^[ \t]*(,)?[ \t]*(?:\/\*[^\n]*?\*\/[ \t]*)*(?:\/\/[^\r\n]*)?(?=\r?\n)/.exec(text.slice(end));
    if (rest) {
      const lineEnd = end + rest[0].length;
      return [...(rest[1] ? [] : [{ offset: end, length: 0, content: ',' }]), { offset: lineEnd, length: 0, content: eol + indent + property }];
    }
    return [{ offset: end, length: 0, content: `,${eol}${indent}${property}` }];
  }
  const close = parent.offset + parent.length - 1;
  const inside = text.slice(parent.offset + 1, close);
  const closeLine = lineStartOf(text, close);
  const outer = indentOfLine(text, parent.offset);
  if (!inside.trim()) return [{ offset: parent.offset + 1, length: inside.length, content: `${eol}${indent}${property}${eol}${outer}` }];
  // Only comments inside (e.g. commented-out servers): the entry goes after them.
  if (closeLine > parent.offset && !text.slice(closeLine, close).trim()) return [{ offset: closeLine, length: 0, content: `${indent}${property}${eol}` }];
  return [{ offset: close, length: 0, content: `${eol}${indent}${property}${eol}${outer}` }];
}

/** JSON data as JSON.parse would give it (null-prototype objects from jsonc-parser made plain). */
function plain(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

function expectedDocument(root: Node, containerKey: string, entryName: string, entry: Record<string, unknown>): unknown {
  const doc = plain(getNodeValue(root)) as Record<string, unknown>;
  const old = doc[containerKey];
  const container = isPlainObject(old) ? old : {};
  // defineProperty, not assignment: a key like "__proto__" must stay a plain key.
  Object.defineProperty(container, entryName, { value: entry, enumerable: true, writable: true, configurable: true });
  Object.defineProperty(doc, containerKey, { value: container, enumerable: true, writable: true, configurable: true });
  return plain(doc);
}

function sameDocument(text: string, expected: unknown): boolean {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, PARSE_OPTIONS);
  return errors.length === 0 && root !== undefined && isDeepStrictEqual(plain(getNodeValue(root)), expected);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function malformed(file: string, why: string): McpOAuthError {
  return new McpOAuthError('config_invalid', `${file}: ${why}; the file was left unchanged`, {
    hint: `fix ${file} (or move it away) and run the command again`,
  });
}

/** A URL from a client's config as an error may show it: no query, fragment or user info (they can hold keys). */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search || u.hash ? '?…' : ''}`;
  } catch {
    return '(not a valid URL)';
  }
}

export function entryExists(file: string, where: string, entryName: string, clientTitle: string, extra = ''): McpOAuthError {
  return new McpOAuthError('usage', `${file} already has an entry ${where}${extra}; it was left unchanged`, {
    hint: `pass --force to replace it in ${clientTitle}'s config, or --as ${entryName}-oauth to add the proxy under another name`,
    details: { file, entry: entryName },
  });
}
