/**
 * The OAuth side of a forwarding edge, shared by `mcp-oauth proxy` and `mcp-oauth serve`: loaded on
 * first use, so the proxy's start-up pays for none of it before the client's first message.
 */
import type { LifecycleEvent } from '../lifecycle/token-manager.ts';
import type { SignInCoordinator } from '../proxy/signin-coordinator.ts';
import type { FetchLike, Logger, ServerConfig } from '../types.ts';
import type { CliContext } from './context.ts';

/**
 * What a forwarding edge (the stdio proxy, the HTTP gateway) needs for one server: the
 * authenticated fetch for the MCP hop, and the coordinator that signs in once when a request finds
 * the user signed out.
 */
export async function forwardingAuth(
  ctx: CliContext,
  server: ServerConfig,
  logger: Logger,
  opts: { timeoutMs: number; onAuthorizeUrl: (url: string) => void },
): Promise<{ fetch: FetchLike; coordinator?: SignInCoordinator }> {
  if (server.bearerTokenEnvVar) {
    // A static bearer token (Codex's bearer_token_env_var): nothing to refresh, nobody to sign in.
    const { mcpFetchFor } = await import('./server-session.ts');
    return { fetch: (await mcpFetchFor(ctx, server.source === 'url' ? server.url : server.name, { interactive: false })).fetch, coordinator: undefined };
  }
  const [{ createOAuthSession }, { SignInCoordinator }, { createNodeHttpFetch }, store, settings] = await Promise.all([
    import('../client/session.ts'),
    import('../proxy/signin-coordinator.ts'),
    import('../proxy/node-http-fetch.ts'),
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
    timeoutMs: opts.timeoutMs,
    onAuthorizeUrl: opts.onAuthorizeUrl,
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
