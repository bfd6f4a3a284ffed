/**
 * What every command needs, built lazily so a command pays only for what it uses (the proxy's
 * cold start matters): config, credential store, logger, fetch, and a TokenManager wired to the
 * interactive sign-in.
 */
import type { ParseArgsConfig } from 'node:util';

// Not `import { parseArgs } from 'node:util'`: an ESM import of node:util evaluates every export,
// and one of them pulls in internal diff and colour modules (~15 ms on every start).
const { parseArgs } = process.getBuiltinModule('node:util');
import { McpOAuthError } from '../errors.ts';
import type { CredentialStore, FetchLike, Logger, ServerConfig } from '../types.ts';
import { createLogger } from '../log.ts';
import { mcpOAuthHome } from '../config/paths.ts';
import { httpTimeoutFrom, withTimeout } from '../oauth/http.ts';

export interface CliContext {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  home: string;
  debug: boolean;
  logger: Logger;
  fetch: FetchLike;
  /** `fetch` with the OAuth request deadline ($MCP_OAUTH_HTTP_TIMEOUT_MS, default 10 s): for
   * discovery, registration, token and revocation requests, never for MCP requests (long streams). */
  oauthFetch: FetchLike;
  /** Set by parse() when the command was given --json. */
  json: boolean;
  server(nameOrUrl: string): Promise<ServerConfig>;
  settings(): Promise<{ store: 'auto' | 'keychain' | 'file' | 'redis'; refreshMarginSeconds: number; redisUrl?: string; redisKeyFile?: string }>;
  store(): Promise<CredentialStore>;
  out(text: string): void;
  /** Progress and waiting lines: stderr, so stdout stays clean for --json and `token`. */
  note(text: string): void;
  close(): Promise<void>;
}

const GLOBAL_OPTIONS = {
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Parses a command's arguments plus the global options; unknown flags are a usage error. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(ctx: CliContext, argv: string[], options: T, usage: string) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new McpOAuthError('usage', e instanceof Error ? e.message : String(e), { hint: `usage: ${usage}` });
  }
  const values = parsed.values as Record<string, unknown>;
  if (values.help) {
    ctx.out(`usage: ${usage}`);
    return undefined;
  }
  ctx.json = Boolean(values.json);
  return parsed as typeof parsed;
}

export function requirePositional(positionals: string[], index: number, what: string, usage: string): string {
  const v = positionals[index];
  if (!v) throw new McpOAuthError('usage', `missing ${what}`, { hint: `usage: ${usage}` });
  return v;
}

export function createCliContext(opts: { env: NodeJS.ProcessEnv; argv: string[] }): CliContext {
  const env = opts.env;
  const debug = opts.argv.includes('--debug') || env.MCP_OAUTH_DEBUG === '1';
  const level = debug ? 'debug' : ((env.MCP_OAUTH_LOG_LEVEL as 'error' | 'warn' | 'info' | 'debug' | undefined) ?? 'warn');
  const logger = createLogger({ level, stream: process.stderr });
  let settingsPromise: ReturnType<CliContext['settings']> | undefined;
  let storePromise: Promise<CredentialStore> | undefined;
  const home = mcpOAuthHome(env);

  const ctx: CliContext = {
    env,
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    home,
    debug,
    logger,
    fetch: globalThis.fetch.bind(globalThis),
    oauthFetch: withTimeout(globalThis.fetch.bind(globalThis), httpTimeoutFrom(env)),
    json: false,
    async server(nameOrUrl) {
      const { resolveServer } = await import('../config/config.ts');
      return resolveServer(nameOrUrl, { env });
    },
    settings() {
      settingsPromise ??= import('../config/config.ts').then(async ({ loadConfig }) => (await loadConfig({ env })).settings);
      return settingsPromise;
    },
    store() {
      storePromise ??= (async () => {
        const { openCredentialStore } = await import('../store/open-store.ts');
        const forced = env.MCP_OAUTH_STORE as 'auto' | 'keychain' | 'file' | 'memory' | 'redis' | undefined;
        const settings = await ctx.settings();
        const mode = forced ?? settings.store;
        return openCredentialStore({ home, mode, logger, redis: { url: settings.redisUrl, keyFile: settings.redisKeyFile, env } });
      })();
      return storePromise;
    },
    out(text) {
      process.stdout.write(text.endsWith('\n') ? text : text + '\n');
    },
    note(text) {
      process.stderr.write(text.endsWith('\n') ? text : text + '\n');
    },
    async close() {
      await (logger as { close?: () => Promise<void> }).close?.();
    },
  };
  return ctx;
}
