/** Opens an OAuth session for a command, with the CLI's sign-in UX (browser or --no-browser). */
import { createOAuthSession, type OAuthSession } from '../client/session.ts';
import type { BrowserMode } from '../signin/flow.ts';
import type { CredentialStore, ServerConfig } from '../types.ts';
import type { CliContext } from './context.ts';
import type { LifecycleEvent } from '../lifecycle/token-manager.ts';

export interface CommandSession extends OAuthSession {
  server: ServerConfig;
  store: CredentialStore;
}

/**
 * --no-browser prints the URL and accepts the callback or a pasted redirect. Otherwise the browser
 * opens; when it cannot, the URL is shown and, on a terminal, a pasted redirect completes the
 * sign-in. Without a terminal (a script, CI) nothing could complete it: fail at once (exit 4)
 * instead of waiting for a browser that never comes.
 */
export function browserModeFor(ctx: CliContext, noBrowser: boolean): BrowserMode {
  const input = ctx.stdin as never;
  const output = ctx.stderr as never;
  if (noBrowser) return { mode: 'print', input, output };
  const onBrowserFailed = (reason: string, url: string) => ctx.note(`mcp-oauth: ${reason}. Open this URL in a browser to sign in:\n\n  ${url}\n`);
  const tty = Boolean((ctx.stdin as { isTTY?: boolean }).isTTY);
  return { mode: 'open', whenNoBrowser: tty ? { paste: { input, output } } : 'fail', onBrowserFailed };
}

export async function openCommandSession(
  ctx: CliContext,
  nameOrUrl: string,
  opts: { interactive: boolean; noBrowser?: boolean; onEvent?: (e: LifecycleEvent) => void },
): Promise<CommandSession> {
  const server = await ctx.server(nameOrUrl);
  const [store, settings] = await Promise.all([ctx.store(), ctx.settings()]);
  const session = createOAuthSession({
    server,
    store,
    fetch: ctx.fetch,
    env: ctx.env,
    logger: ctx.logger,
    refreshMarginMs: settings.refreshMarginSeconds * 1000,
    interactive: opts.interactive
      ? {
          browser: browserModeFor(ctx, Boolean(opts.noBrowser)),
          onAuthorizeUrl: () => {
            if (!opts.noBrowser) ctx.note(`Waiting for you to sign in to ${server.name} in your browser… (Ctrl-C to cancel)`);
          },
        }
      : false,
    onEvent: opts.onEvent,
  });
  return { ...session, server, store };
}

/** The fetch to reach the MCP server with: a static bearer token from the environment (Codex's
 * `bearer_token_env_var`), else the OAuth session. */
export async function mcpFetchFor(ctx: CliContext, nameOrUrl: string, opts: { interactive: boolean; noBrowser?: boolean }) {
  const server = await ctx.server(nameOrUrl);
  if (server.bearerTokenEnvVar) {
    const token = ctx.env[server.bearerTokenEnvVar];
    if (!token) {
      const { McpOAuthError } = await import('../errors.ts');
      throw new McpOAuthError('config_invalid', `${server.name} uses a bearer token from $${server.bearerTokenEnvVar}, which is not set.`, {
        hint: `export ${server.bearerTokenEnvVar}=…`,
      });
    }
    const { withStaticHeaders } = await import('../client/session.ts');
    const inner = withStaticHeaders(ctx.fetch, server, ctx.env);
    const fetch: typeof ctx.fetch = (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('authorization', `Bearer ${token}`);
      return inner(input, { ...init, headers });
    };
    return { server, fetch };
  }
  const session = await openCommandSession(ctx, nameOrUrl, opts);
  return { server, fetch: session.fetch, session };
}
