import { spawn } from 'node:child_process';
import { McpOAuthError } from '../errors.ts';
import type { Logger } from '../types.ts';
import { silentLogger } from '../types.ts';

/**
 * Opens the authorization URL in the user's browser (RFC 8252 §4: native apps use the external
 * user-agent, never an embedded one). The URL is attacker-influenced (it embeds AS metadata
 * values), so it never passes through a shell: `$BROWSER` is split into argv by
 * `parseCommandLine` and spawned with `shell: false`.
 */
export interface OpenBrowserOptions {
  env: NodeJS.ProcessEnv;
  logger?: Logger;
}

/** How long an opener may take to fail before we take it as started (a browser keeps running). */
const OPENER_GRACE_MS = 1500;

/**
 * Whether a browser could be opened at all: `$BROWSER` names one (tried when used), macOS and
 * Windows always have an opener, elsewhere `xdg-open` needs a graphical session.
 */
export function canOpenBrowser(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): boolean {
  if (env.BROWSER?.trim()) return true;
  if (platform === 'darwin' || platform === 'win32') return true;
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
}

export async function openBrowser(url: string, opts: OpenBrowserOptions): Promise<void> {
  const logger = opts.logger ?? silentLogger;
  const browserVar = opts.env.BROWSER?.trim();
  if (browserVar) return openWithBrowserVariable(url, browserVar, logger);
  if (!canOpenBrowser(opts.env)) {
    throw new McpOAuthError('browser_failed', 'could not open a browser (no $BROWSER and no graphical session)', {
      hint: 'use --no-browser and open the printed URL yourself',
    });
  }
  try {
    // Lazy: `open` pulls in several modules; most commands never open a browser.
    const { default: open } = await import('open');
    const child = await open(url, { wait: false });
    await startedOrFailed(child);
    child.unref?.();
    logger.debug('opened the browser');
  } catch (err) {
    throw new McpOAuthError('browser_failed', `could not open a browser (${describeError(err)})`, {
      hint: 'use --no-browser and open the printed URL yourself',
      cause: err,
    });
  }
}

/**
 * An opener that exits non-zero at once (xdg-open without a handler, `$BROWSER=false`) failed; one
 * still running after a grace period, or done with 0, started the browser.
 */
function startedOrFailed(child: import('node:child_process').ChildProcess): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(done, OPENER_GRACE_MS);
    timer.unref?.();
    function done() {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve();
    }
    function onExit(code: number | null, signal: NodeJS.Signals | null) {
      clearTimeout(timer);
      if (code === 0) return resolve();
      reject(new Error(code !== null ? `it exited with status ${code}` : `it was killed by ${signal}`));
    }
    if (child.exitCode !== null) return onExit(child.exitCode, null);
    child.once('exit', onExit);
  });
}

async function openWithBrowserVariable(url: string, browserVar: string, logger: Logger): Promise<void> {
  const failures: string[] = [];
  for (const candidate of splitBrowserList(browserVar)) {
    let argv: string[];
    try {
      argv = parseCommandLine(candidate);
    } catch (err) {
      failures.push(describeError(err));
      continue;
    }
    if (argv.length === 0) continue;
    const [command, ...args] = withUrl(argv, url);
    try {
      await spawnDetached(command, args);
      logger.debug('opened the browser with $BROWSER', { command });
      return;
    } catch (err) {
      logger.debug('$BROWSER candidate failed', { command, error: describeError(err) });
      failures.push(`${command}: ${describeError(err)}`);
    }
  }
  throw new McpOAuthError('browser_failed', `could not start $BROWSER (${failures.join('; ') || 'it is empty'})`, {
    hint: 'unset BROWSER or use --no-browser',
  });
}

/** The $BROWSER convention: `%s` is replaced by the URL; without it the URL is the last argument. */
function withUrl(argv: string[], url: string): string[] {
  if (!argv.some((a) => a.includes('%s'))) return [...argv, url];
  // split/join, not String.replace: a URL containing "$&" must not be read as a pattern.
  return argv.map((a) => a.split('%s').join(url));
}

function spawnDetached(command: string, args: string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let child;
    try {
      child = spawn(command, args, { shell: false, detached: true, stdio: 'ignore', windowsHide: true });
    } catch (err) {
      reject(err);
      return;
    }
    child.once('error', reject);
    child.once('spawn', () => {
      child.off('error', reject);
      child.on('error', () => {}); // late errors must not crash the CLI
      child.unref();
      startedOrFailed(child).then(resolve, reject);
    });
  });
}

/**
 * The old $BROWSER convention: several commands separated by ':', tried in order. Colons inside
 * quotes do not separate. On Windows ':' appears in drive letters, so there is no list there.
 */
function splitBrowserList(value: string): string[] {
  if (process.platform === 'win32') return [value];
  const parts: string[] = [];
  let current = '';
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '\\' && quote !== "'" && i + 1 < value.length) {
      current += ch + value[++i];
    } else if (quote) {
      if (ch === quote) quote = undefined;
      current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      current += ch;
    } else if (ch === ':') {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter(Boolean);
}

/**
 * Splits a command line into words like a POSIX shell would, without running one: whitespace
 * separates words; '…' is literal; "…" allows \" \\ \$ \` escapes; a backslash outside quotes
 * escapes the next character. No expansion of any kind ($VAR, globs, `…`, ;, |).
 */
export function parseCommandLine(cmd: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < cmd.length) {
    const ch = cmd[i];
    if (ch === "'") {
      const end = cmd.indexOf("'", i + 1);
      if (end < 0) throw unterminated("'");
      word += cmd.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (ch === '"') {
      i++;
      let closed = false;
      while (i < cmd.length) {
        const c = cmd[i];
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        if (c === '\\' && i + 1 < cmd.length && '"\\$`\n'.includes(cmd[i + 1])) {
          if (cmd[i + 1] !== '\n') word += cmd[i + 1];
          i += 2;
        } else {
          word += c;
          i++;
        }
      }
      if (!closed) throw unterminated('"');
      inWord = true;
    } else if (ch === '\\') {
      if (i + 1 < cmd.length) {
        if (cmd[i + 1] !== '\n') word += cmd[i + 1]; // backslash-newline is a line continuation
        inWord = true;
      }
      i += 2;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else {
      word += ch;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

function unterminated(quote: string): McpOAuthError {
  return new McpOAuthError('usage', `unterminated ${quote} quote in command`, {
    hint: 'fix the quoting in $BROWSER, or unset it',
  });
}

function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'command not found';
  if (e?.code === 'EACCES') return 'permission denied';
  if (e instanceof Error) return e.message;
  return String(err);
}
