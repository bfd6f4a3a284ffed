/**
 * An OAuth session for one MCP server: the TokenManager (lifecycle) wired to the interactive
 * sign-in, plus an authenticated fetch. This is what the CLI, the SDK adapters and the proxy use.
 */
import { TokenManager, type LifecycleEvent, type SignInRequest } from '../lifecycle/token-manager.ts';
import { createAuthenticatedFetch } from '../lifecycle/auth-fetch.ts';
import type { BrowserMode } from '../signin/flow.ts';
import type { Credential, CredentialStore, FetchLike, Logger, ServerConfig } from '../types.ts';
import { silentLogger } from '../types.ts';
import { canonicalResourceUri } from '../oauth/canonical.ts';
import { httpTimeoutFrom, withTimeout } from '../oauth/http.ts';
import { configuresMachineGrant } from '../oauth/grant-choice.ts';
import type { BearerChallenge } from '../oauth/www-authenticate.ts';

export interface OAuthSessionOptions {
  server: ServerConfig;
  store: CredentialStore;
  fetch?: FetchLike;
  env?: NodeJS.ProcessEnv;
  /** Deadline for each discovery, registration and token request (default: $MCP_OAUTH_HTTP_TIMEOUT_MS, else 10 s). */
  httpTimeoutMs?: number;
  logger?: Logger;
  refreshMarginMs?: number;
  /**
   * How to sign in when needed. `false`: never open a browser; a missing or dead grant is a
   * `signin_required` error naming the command to run.
   */
  interactive?: false | { browser: BrowserMode; timeoutMs?: number; onAuthorizeUrl?: (url: string) => void };
  onEvent?: (e: LifecycleEvent) => void;
}

export interface OAuthSession {
  manager: TokenManager;
  /** fetch that adds a fresh bearer token, refreshes once on 401, steps up on 403. */
  fetch: FetchLike;
  /** Signs in now (interactive), whatever is stored. */
  signIn(request?: Partial<SignInRequest>): Promise<Credential>;
}

/** A ServerConfig for a bare URL with no configuration. */
export function serverFromUrl(url: string): ServerConfig {
  return { name: canonicalResourceUri(url), url, source: 'url', httpHeaders: {}, envHttpHeaders: {}, oauth: { authorizeParams: {} } };
}

export function createOAuthSession(opts: OAuthSessionOptions): OAuthSession {
  const baseFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const env = opts.env ?? process.env;
  // Every OAuth request has a deadline (a metadata URL that streams forever must not hang us); the
  // MCP requests themselves do not: their answers may be long-lived SSE streams.
  const oauthFetch = withTimeout(baseFetch, opts.httpTimeoutMs ?? httpTimeoutFrom(env));
  const logger = opts.logger ?? silentLogger;
  const interactive = opts.interactive;

  // Client credentials, a workload's JWT, an enterprise IdP: tokens without a browser, so even a
  // non-interactive session (the proxy, `token`) can obtain and renew them itself.
  const machine = configuresMachineGrant(opts.server.oauth);
  const machineGrant = async (request: Partial<SignInRequest>, persist: boolean, previous?: Credential): Promise<Credential> => {
    const { machineSignIn } = await import('../signin/machine.ts');
    return machineSignIn({
      server: opts.server,
      store: opts.store,
      fetch: oauthFetch,
      env,
      logger,
      challenge: request.challenge,
      scopes: request.scopes,
      previous: previous ?? request.previous,
      interactive: interactive || false,
      persist,
    });
  };

  const doSignIn = async (request: Partial<SignInRequest>): Promise<Credential> => {
    if (machine) return machineGrant(request, true);
    if (!interactive) throw new Error('unreachable: sign-in without interactive options');
    // Loaded on demand: most runs never sign in, and the proxy's start-up should not pay for it.
    const { signIn } = await import('../signin/flow.ts');
    return signIn({
      server: opts.server,
      store: opts.store,
      fetch: oauthFetch,
      env,
      logger,
      browser: interactive.browser,
      scopes: request.scopes,
      challenge: request.challenge,
      timeoutMs: interactive.timeoutMs,
      onAuthorizeUrl: interactive.onAuthorizeUrl,
    });
  };

  const manager = new TokenManager({
    server: opts.server,
    store: opts.store,
    fetch: oauthFetch,
    env,
    logger,
    refreshMarginMs: opts.refreshMarginMs,
    signIn: interactive || machine ? (request) => doSignIn(request) : undefined,
    regrant: (current) => machineGrant({}, false, current),
    authorizationServers: (challenge) => authorizationServersOf(opts.server, oauthFetch, challenge),
    onEvent: opts.onEvent,
  });
  const fetch = createAuthenticatedFetch(manager, { fetch: withStaticHeaders(baseFetch, opts.server, env), logger, allowedOrigin: new URL(opts.server.url).origin });
  return { manager, fetch, signIn: doSignIn };
}

/** Codex-style `http_headers` and `env_http_headers` go on every request to the MCP server. */
export function withStaticHeaders(fetch: FetchLike, server: ServerConfig, env: NodeJS.ProcessEnv): FetchLike {
  const headers: Record<string, string> = { ...server.httpHeaders };
  for (const [name, envVar] of Object.entries(server.envHttpHeaders)) {
    const v = env[envVar];
    if (v) headers[name] = v;
  }
  if (Object.keys(headers).length === 0) return fetch;
  return (input, init) => {
    const h = new Headers(init?.headers);
    for (const [k, v] of Object.entries(headers)) if (!h.has(k)) h.set(k, v);
    return fetch(input, { ...init, headers: h });
  };
}

/** What the server's resource metadata names as its authorization servers now (the migration check). */
async function authorizationServersOf(server: ServerConfig, fetch: FetchLike, challenge?: BearerChallenge): Promise<string[] | undefined> {
  const { findProtectedResource } = await import('../oauth/discovery.ts');
  const found = await findProtectedResource({ serverUrl: server.url, resourceMetadataUrl: challenge?.resourceMetadata, expectedResource: server.oauthResource, fetch });
  return found?.metadata.authorization_servers;
}
