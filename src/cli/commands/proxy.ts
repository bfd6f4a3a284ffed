/**
 * `mcp-oauth proxy NAME|URL`: a local stdio MCP server for clients that cannot do OAuth themselves.
 * stdout is the protocol: everything human goes to stderr and to HOME/logs/proxy-NAME.log.
 * Start-up is on the client's clock, so modules load lazily and nothing touches the network until
 * the client's first message.
 */
import { join } from 'node:path';
import { McpOAuthError } from '../../errors.ts';
import { createLogger } from '../../log.ts';
import type { LogLevel } from '../../types.ts';
import { parse, requirePositional, type CliContext } from '../context.ts';

export { lifecycleLogger } from '../forwarding-auth.ts';

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
    const { forwardingAuth } = await import('../forwarding-auth.ts');
    const { fetch, coordinator } = await forwardingAuth(ctx, server, logger, {
      timeoutMs: timeoutSeconds * 1000,
      onAuthorizeUrl: (url) => process.stderr.write(`mcp-oauth: sign in to ${server.name} in your browser; if it did not open, visit:\n${url}\n`),
    });
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

