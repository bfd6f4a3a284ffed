/**
 * `mcp-oauth proxy NAME|URL`: a local stdio MCP server for clients that cannot do OAuth themselves.
 * stdout is the protocol: everything human goes to stderr and to HOME/logs/proxy-NAME.log.
 * Start-up is on the client's clock, so modules load lazily and nothing touches the network until
 * the client's first message.
 */
import { join } from 'node:path';
import { McpOAuthError } from '../../errors.ts';
import { createLogger } from '../../log.ts';
import type { LifecycleEvent } from '../../lifecycle/token-manager.ts';
import type { Logger, LogLevel, ServerConfig } from '../../types.ts';
import { parse, requirePositional, type CliContext } from '../context.ts';

const USAGE = 'mcp-oauth proxy NAME|URL [--signin-timeout SECONDS] [--debug]';
const DEFAULT_SIGNIN_TIMEOUT_SECONDS = 300;

/** HOME/logs/proxy-NAME.log; the name is made file-safe (a URL is a valid server name). */
export function proxyLogFile(home: string, serverName: string): string {
  const safe = serverName.replace(/^https?:\/\//, '').replace(/[^\w.-]+/g, '_').slice(0, 80);
  return join(home, 'logs', `proxy-${safe}.log`);
}

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, { 'signin-timeout': { type: 'string' } }, USAGE);
  if (!args) return 0;
  const target = requirePositional(args.positionals, 0, 'server NAME or URL', USAGE);
  const timeoutArg = args.values['signin-timeout'];
  const timeoutSeconds = timeoutArg === undefined ? DEFAULT_SIGNIN_TIMEOUT_SECONDS : Number(timeoutArg);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    throw new McpOAuthError('usage', `--signin-timeout must be a positive number of seconds, not ${JSON.stringify(timeoutArg)}`, { hint: `usage: ${USAGE}` });
  }

  const server = await ctx.server(target);
  const level: LogLevel = ctx.debug ? 'debug' : ((ctx.env.MCP_OAUTH_LOG_LEVEL as LogLevel | undefined) ?? 'info');
  const logger = createLogger({ level, stream: process.stderr, file: proxyLogFile(ctx.home, server.name) });
  // A long-running server: one failed request must never take the client's tools down with it.
  process.on('unhandledRejection', (err) => logger.error('unexpected error; the proxy keeps running', { error: err instanceof Error ? err.message : String(err) }));
  try {
    const { fetch, coordinator } = await connect(ctx, server, target, logger, timeoutSeconds * 1000);
    const { startProxy } = await import('../../proxy/proxy.ts');
    const proxy = startProxy({ server, fetch, coordinator, input: process.stdin, output: process.stdout, logger });
    const onSignal = (signal: NodeJS.Signals) => void proxy.close(signal);
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    process.once('SIGHUP', onSignal);
    await proxy.done;
    // A sign-in still waiting for its browser keeps a loopback server open: do not linger for it.
    setTimeout(() => process.exit(), 1000).unref();
    return 0;
  } finally {
    await logger.close();
  }
}

async function connect(ctx: CliContext, server: ServerConfig, target: string, logger: ReturnType<typeof createLogger>, timeoutMs: number) {
  if (server.bearerTokenEnvVar) {
    // A static bearer token (Codex's bearer_token_env_var): nothing to refresh, nobody to sign in.
    const { mcpFetchFor } = await import('../server-session.ts');
    return { fetch: (await mcpFetchFor(ctx, target, { interactive: false })).fetch, coordinator: undefined };
  }
  const [{ createOAuthSession }, { SignInCoordinator }, { createNodeHttpFetch }, store, settings] = await Promise.all([
    import('../../client/session.ts'),
    import('../../proxy/signin-coordinator.ts'),
    import('../../proxy/node-http-fetch.ts'),
    ctx.store(),
    ctx.settings(),
  ]);
  // Non-interactive: a needed sign-in surfaces as signin_required, and the coordinator runs it
  // once across processes (the session's own sign-in would open one tab per process).
  // The MCP hop (and the refreshes the session makes) goes over node:http with keep-alive instead
  // of undici's fetch: a third less CPU per forwarded message, and no undici load before the first
  // answer. It never follows redirects (a bearer token stays with its server). The sign-in, which
  // is rare and interactive, keeps the global fetch.
  const session = createOAuthSession({
    server,
    store,
    fetch: createNodeHttpFetch(),
    env: ctx.env,
    logger,
    refreshMarginMs: settings.refreshMarginSeconds * 1000,
    interactive: false,
    onEvent: lifecycleLogger(logger),
  });
  const coordinator = new SignInCoordinator({
    server,
    store,
    manager: session.manager,
    fetch: ctx.fetch,
    env: ctx.env,
    logger,
    home: ctx.home,
    timeoutMs,
    onAuthorizeUrl: (url) => process.stderr.write(`mcp-oauth: sign in to ${server.name} in your browser; if it did not open, visit:\n${url}\n`),
  });
  return { fetch: session.fetch, coordinator };
}

/**
 * The token lifecycle in the proxy's log at the default level: the log is what a user reads when
 * a client misbehaves, so refreshes, sign-ins and failures are there, not only start and stop.
 * Never a token: the events carry none (the TokenManager logs fingerprints at debug level).
 */
export function lifecycleLogger(logger: Logger): (e: LifecycleEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'refresh_started':
        logger.debug('refreshing the access token', { server: e.server });
        return;
      case 'refreshed': {
        const expires = e.expiresAt === undefined ? {} : { expiresAt: new Date(e.expiresAt).toISOString() };
        if (e.byOtherProcess) logger.info('another process had refreshed the access token; using its token', { server: e.server, ...expires });
        else logger.info('refreshed the access token', { server: e.server, rotated: e.rotated, ...expires });
        return;
      }
      case 'refresh_failed':
        logger.warn('token refresh failed', { server: e.server, code: e.error.code, error: e.error.message, willRetry: e.willRetry });
        return;
      case 'signin_required':
        // The first use of a server is no warning; a grant that is gone is.
        if (e.reason === 'no_credential') logger.info('sign-in required', { server: e.server, reason: e.reason });
        else logger.warn('sign-in required', { server: e.server, reason: e.reason });
        return;
      case 'signed_in':
        logger.info('signed in', { server: e.server });
        return;
      case 'reloaded':
        logger.info('picked up a credential written by another process (a login or another proxy\'s refresh)', { server: e.server });
        return;
    }
  };
}
