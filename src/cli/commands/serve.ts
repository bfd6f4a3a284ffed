/**
 * `mcp-oauth serve`: the gateway (src/gateway/) in the foreground. Every configured server at
 * http://127.0.0.1:PORT/servers/NAME/mcp for any number of local clients, one credential and one
 * refresh per server however many clients there are. `--service` installs it as a user service.
 * Human lines go to stderr and HOME/logs/gateway.log; `--json` prints one line on stdout when listening.
 */
import { join } from 'node:path';
import { McpOAuthError, isMcpOAuthError } from '../../errors.ts';
import { createLogger } from '../../log.ts';
import type { LogLevel, ServerConfig } from '../../types.ts';
import { parse, type CliContext } from '../context.ts';

const USAGE = 'mcp-oauth serve [--port N] [--host ADDRESS] [--signin-timeout SECONDS] [--json] [--debug] | serve --service [--print]';
const DEFAULT_SIGNIN_TIMEOUT_SECONDS = 300;

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(
    ctx,
    argv,
    { port: { type: 'string' }, host: { type: 'string' }, 'signin-timeout': { type: 'string' }, service: { type: 'boolean' }, print: { type: 'boolean' } },
    USAGE,
  );
  if (!args) return 0;
  if (args.values.service) {
    const { runServiceInstall } = await import('../../gateway/service.ts');
    return runServiceInstall(ctx, { print: Boolean(args.values.print) });
  }
  if (args.values.print) throw new McpOAuthError('usage', '--print goes with --service', { hint: 'mcp-oauth serve --service --print' });
  const timeoutSeconds = positiveNumber(args.values['signin-timeout'], DEFAULT_SIGNIN_TIMEOUT_SECONDS, '--signin-timeout');

  const { loadConfig, listServers } = await import('../../config/config.ts');
  const { checkListenSettings } = await import('../../gateway/address.ts');
  const config = await loadConfig({ env: ctx.env });
  const settings = {
    ...config.gateway,
    ...(args.values.host !== undefined ? { host: args.values.host } : {}),
    ...(args.values.port !== undefined ? { port: port(args.values.port) } : {}),
  };
  checkListenSettings(settings);

  const level: LogLevel = ctx.debug ? 'debug' : ((ctx.env.MCP_OAUTH_LOG_LEVEL as LogLevel | undefined) ?? 'info');
  const logger = createLogger({ level, stream: process.stderr, file: join(ctx.home, 'logs', 'gateway.log') });
  // A long-running server: one failed request must never take every client's tools down with it.
  process.on('unhandledRejection', (err) => logger.error('unexpected error; the gateway keeps running', { error: err instanceof Error ? err.message : String(err) }));
  try {
    const [{ gatewaySecret }, { startGateway }, { forwardingAuth }, state, store] = await Promise.all([
      import('../../gateway/secret.ts'),
      import('../../gateway/server.ts'),
      import('../forwarding-auth.ts'),
      import('../../gateway/state.ts'),
      ctx.store(),
    ]);
    const secret = (await gatewaySecret(store, { create: true }))!;
    const serverNames = async () => (await listServers({ env: ctx.env })).map((s) => s.name);
    const resolveServer = async (name: string): Promise<ServerConfig | undefined> => {
      try {
        const server = await ctx.server(name);
        // Only configured entries: a URL is not a name the gateway serves.
        return server.source === 'url' ? undefined : server;
      } catch (err) {
        if (isMcpOAuthError(err, 'server_unknown') || isMcpOAuthError(err, 'usage')) return undefined;
        throw err;
      }
    };
    const gateway = await startGateway({
      settings,
      secret,
      logger,
      resolveServer,
      serverNames,
      authFor: (server) =>
        forwardingAuth(ctx, server, logger, {
          timeoutMs: timeoutSeconds * 1000,
          onAuthorizeUrl: (url) => process.stderr.write(`mcp-oauth: a client of the gateway needs ${server.name}: sign in in your browser; if it did not open, visit:\n${url}\n`),
        }),
      tls: await readTls(settings),
    });
    const names = await serverNames();
    await state.writeGatewayState(ctx.home, { pid: process.pid, url: gateway.url, startedAt: new Date().toISOString(), servers: names, tls: Boolean(settings.tlsCertFile) });
    logger.info('gateway listening', { url: gateway.url, servers: names.length, store: store.kind });
    // One line: whoever started it reads the address as soon as it is there.
    if (ctx.json) ctx.out(JSON.stringify({ url: gateway.url, pid: process.pid, servers: names }));
    else {
      const { gatewayEndpoint } = await import('../../gateway/address.ts');
      ctx.note(`mcp-oauth gateway listening on ${gateway.url} (Ctrl-C to stop)`);
      for (const name of names) ctx.note(`  ${name}  ${gatewayEndpoint(gateway.url, name)}`);
      ctx.note(names.length ? 'Next: mcp-oauth install CLIENT NAME --gateway' : 'No servers configured yet. Next: mcp-oauth add NAME URL');
    }
    await new Promise<void>((resolve) => {
      for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, () => resolve());
    });
    logger.info('gateway shutting down');
    await state.removeGatewayState(ctx.home, process.pid);
    await Promise.race([gateway.close(), new Promise((r) => setTimeout(r, 3000).unref())]);
    // A sign-in still waiting for its browser keeps a loopback server open: do not linger for it.
    setTimeout(() => process.exit(), 500).unref();
    return 0;
  } finally {
    await logger.close();
  }
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new McpOAuthError('usage', `--port must be a TCP port (0 for any free one), not ${JSON.stringify(value)}`, { hint: `usage: ${USAGE}` });
  return n;
}

function positiveNumber(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new McpOAuthError('usage', `${flag} must be a positive number of seconds, not ${JSON.stringify(value)}`, { hint: `usage: ${USAGE}` });
  return n;
}

async function readTls(settings: { tlsCertFile?: string; tlsKeyFile?: string }): Promise<{ cert: Buffer; key: Buffer } | undefined> {
  if (!settings.tlsCertFile || !settings.tlsKeyFile) return undefined;
  const { readFile } = process.getBuiltinModule('node:fs/promises');
  try {
    return { cert: await readFile(settings.tlsCertFile), key: await readFile(settings.tlsKeyFile) };
  } catch (err) {
    throw new McpOAuthError('config_invalid', `cannot read the gateway's TLS files: ${(err as Error).message}`, { hint: 'check tls_cert_file and tls_key_file in [gateway]' });
  }
}
