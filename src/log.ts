// Not a static `import … from 'node:fs'`: the ESM import evaluates fs.ReadStream and friends
// (~6 ms), and every command, the proxy included, creates a logger at start-up.
const { closeSync, fchmodSync, mkdirSync, openSync, writeSync } = process.getBuiltinModule('node:fs');
import { dirname } from 'node:path';
import { McpOAuthError } from './errors.ts';
import { fingerprint, redact } from './secrets.ts';
import type { Logger, LogLevel } from './types.ts';

/**
 * The one Logger implementation. Lines look like
 *   2026-11-25T20:30:00.000Z info  refreshed token {"server":"x","fp":"sha256:…"}
 * Two defences keep secrets out even when a caller slips: fields whose NAME says secret are
 * replaced by their fingerprint, and every finished line passes through `redact()` with the
 * secrets currently known (tokens, client secret, code, verifier).
 */

export interface CreateLoggerOptions {
  level: LogLevel;
  /** Default process.stderr (stdout can be an MCP protocol stream). `null` = no stream. */
  stream?: NodeJS.WritableStream | null;
  /** Also append to this file: created 0600 in a 0700 directory (logs can name servers/users). */
  file?: string;
  /** Secrets to redact from every line, asked per line so newly obtained tokens are covered. */
  secrets?: () => Array<string | undefined>;
  /** Clock for the timestamp; tests pin it. */
  now?: () => number;
}

export type ClosableLogger = Logger & { close(): Promise<void> };

const LEVEL_RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** Field names that hold secrets. `code` alone is deliberately absent: it is also our error code
 * field; the authorization code must be passed via `secrets()`. */
const SECRET_FIELD = /token|secret|code_?verifier|password|passwd|authorization|cookie|api_?key|assertion/i;
/** …unless the name says it is metadata about a secret, not the secret itself. */
const NOT_A_SECRET_FIELD = /endpoint|url|uri|type|method|expires|fingerprint|(^|_)fp$|Fp$|hint|count|present|missing|reason/i;

export function isSecretFieldName(name: string): boolean {
  return SECRET_FIELD.test(name) && !NOT_A_SECRET_FIELD.test(name);
}

export function createLogger(opts: CreateLoggerOptions): ClosableLogger {
  const maxRank = LEVEL_RANK[opts.level];
  const stream = opts.stream === undefined ? process.stderr : opts.stream;
  const now = opts.now ?? Date.now;
  let fd = opts.file ? openLogFile(opts.file) : undefined;

  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (LEVEL_RANK[level] > maxRank) return;
    try {
      const json = fields && Object.keys(fields).length > 0 ? ' ' + stringifyFields(fields) : '';
      let line = `${new Date(now()).toISOString()} ${level.padEnd(5)} ${oneLine(msg)}${json}`;
      line = redact(line, opts.secrets?.() ?? []) + '\n';
      stream?.write(line);
      if (fd !== undefined) writeSync(fd, line);
    } catch {
      // Logging must never break sign-in or a refresh.
    }
  };

  return {
    error: (msg, fields) => write('error', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    debug: (msg, fields) => write('debug', msg, fields),
    async close() {
      if (fd === undefined) return;
      const f = fd;
      fd = undefined;
      closeSync(f);
    },
  };
}

export function createSilentLogger(): ClosableLogger {
  return { error() {}, warn() {}, info() {}, debug() {}, async close() {} };
}

function openLogFile(file: string): number {
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const fd = openSync(file, 'a', 0o600);
    // The mode above only applies on creation; tighten a pre-existing file too.
    if (process.platform !== 'win32') fchmodSync(fd, 0o600);
    return fd;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new McpOAuthError('usage', `cannot open log file ${file} (${code})`, {
      hint: 'choose a writable log file path',
      cause: err,
    });
  }
}

/** Newlines in a message would let one log entry forge another. */
function oneLine(text: string): string {
  return text.replace(/\r?\n/g, '\\n');
}

function stringifyFields(fields: Record<string, unknown>): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(fields, function (key, value: unknown) {
    if (typeof value === 'bigint') return value.toString();
    if (key && typeof value === 'string' && isSecretFieldName(key) && !isFingerprint(value)) {
      return fingerprint(value);
    }
    if (value instanceof Error) {
      const e = value as Error & { code?: unknown; hint?: unknown };
      return { name: e.name, message: e.message, ...(e.code ? { code: e.code } : {}), ...(e.hint ? { hint: e.hint } : {}) };
    }
    if (value instanceof URLSearchParams) {
      // Query strings carry codes; show only which parameters were there.
      return { params: [...new Set(value.keys())] };
    }
    if (value && typeof value === 'object') {
      if (seen.has(value)) return '[circular]';
      seen.add(value);
    }
    return value;
  });
}

function isFingerprint(value: string): boolean {
  return /^sha256:[0-9a-f]{12}$/.test(value) || value === '(none)';
}
