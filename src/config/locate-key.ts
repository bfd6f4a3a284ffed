/**
 * Finds the line of a key in TOML text, so that a schema error (which only knows the key path)
 * can point the user at `file:line`. TOML is parsed by smol-toml; this is a line scanner that
 * understands table headers (`[a."b c"]`), dotted keys (`a.b = 1`) and quoted keys, which covers
 * how people write config files. When the exact key is not on its own line (an inline table),
 * the line of the longest enclosing key or table header is returned.
 */
export function lineOfKey(text: string, path: Array<string | number>): number | undefined {
  const target = path.filter((p): p is string => typeof p === 'string');
  let table: string[] = [];
  let best: { line: number; depth: number } | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    let full: string[] | undefined;
    const header = /^\[\[?(.*?)\]\]?\s*(#.*)?$/.exec(line);
    if (header) {
      const keys = parseDottedKey(header[1])?.keys;
      if (!keys) continue;
      table = keys;
      full = keys;
    } else {
      const parsed = parseDottedKey(line);
      if (!parsed || !parsed.rest.startsWith('=')) continue;
      full = [...table, ...parsed.keys];
    }
    const depth = commonPrefix(full, target);
    if (depth === full.length && depth === target.length) return i + 1;
    if (depth === full.length && depth > 0 && (!best || depth > best.depth)) best = { line: i + 1, depth };
  }
  return best?.line;
}

/**
 * The reverse of lineOfKey, for TOML syntax errors (which only know a line): the key path being
 * written at that line — the last key assignment or table header that starts at or before it.
 */
export function keyAtLine(text: string, lineNumber: number): Array<string> | undefined {
  let table: string[] = [];
  let last: string[] | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < Math.min(lineNumber, lines.length); i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[\[?(.*?)\]\]?\s*(#.*)?$/.exec(line);
    if (header) {
      const keys = parseDottedKey(header[1])?.keys;
      if (keys) last = table = keys;
      continue;
    }
    const parsed = parseDottedKey(line);
    if (parsed?.rest.startsWith('=')) last = [...table, ...parsed.keys];
  }
  return last;
}

function commonPrefix(a: string[], b: string[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** Parses `a."b.c".'d'` at the start of `s`; returns the keys and what follows (trimmed). */
export function parseDottedKey(s: string): { keys: string[]; rest: string } | undefined {
  const keys: string[] = [];
  let i = 0;
  const skipWs = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  for (;;) {
    skipWs();
    if (s[i] === '"') {
      let out = '';
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) {
          const esc = s[i + 1];
          out += esc === 'n' ? '\n' : esc === 't' ? '\t' : esc;
          i += 2;
        } else out += s[i++];
      }
      if (s[i] !== '"') return undefined;
      i++;
      keys.push(out);
    } else if (s[i] === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return undefined;
      keys.push(s.slice(i + 1, end));
      i = end + 1;
    } else {
      const m = /^[A-Za-z0-9_-]+/.exec(s.slice(i));
      if (!m) return undefined;
      keys.push(m[0]);
      i += m[0].length;
    }
    skipWs();
    if (s[i] !== '.') break;
    i++;
  }
  return { keys, rest: s.slice(i).trim() };
}

/** `['mcp_servers', 'x', 'scopes', 1]` → `mcp_servers.x.scopes[1]`; odd names are quoted. */
export function formatKeyPath(path: Array<string | number | symbol>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const key = String(p);
      const part = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
      out += out ? `.${part}` : part;
    }
  }
  return out;
}
