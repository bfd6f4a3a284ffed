/**
 * When the proxy finds itself signed out (no credential yet, the grant is gone, more scopes are
 * needed) it signs in — once: in this process the first request starts the sign-in and the others
 * join it; across processes a lock file makes one process open the browser while the others wait
 * and then read its credential from the store. A failed sign-in is remembered for a while, so a
 * client that retries does not open a tab per retry; a login run in a terminal is still picked up
 * at once because the store is read first.
 */
import { join } from 'node:path';
import { McpOAuthError, isMcpOAuthError, loginCommand } from '../errors.ts';
import type { TokenManager } from '../lifecycle/token-manager.ts';
import { withSignInLock } from '../store/signin-lock.ts';
import type { Credential, CredentialStore, FetchLike, Logger, ServerConfig } from '../types.ts';
import type { BearerChallenge } from '../oauth/www-authenticate.ts';
import { httpTimeoutFrom, withTimeout } from '../oauth/http.ts';

export interface SignInNeed {
  /** Scopes the new grant must carry (step-up: the union of granted and challenged). */
  scopes?: string[];
  /** The 401/403 challenge that showed the need: discovery starts from its resource_metadata. */
  challenge?: BearerChallenge;
}

export interface SignInCoordinatorOptions {
  server: ServerConfig;
  store: CredentialStore;
  manager: TokenManager;
  /** Plain fetch (no bearer): discovery, registration and the token endpoint. */
  fetch: FetchLike;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** MCP_OAUTH_HOME: the lock lives in HOME/locks. */
  home: string;
  timeoutMs: number;
  /** After a failed sign-in, requests fail at once for this long instead of opening another tab. */
  retryAfterFailureMs?: number;
  /** Tells the user where to sign in (stderr: stdout is the protocol). */
  onAuthorizeUrl?: (url: string) => void;
  /** The sign-in itself; default: the browser flow (src/signin/flow.ts, loaded on first use). */
  signIn?: (need: SignInNeed) => Promise<Credential>;
}

export const DEFAULT_RETRY_AFTER_FAILURE_MS = 30_000;

/** Errors that a new sign-in can cure. */
export function needsSignIn(err: unknown): err is McpOAuthError {
  return isMcpOAuthError(err, 'signin_required') || isMcpOAuthError(err, 'insufficient_scope');
}

/** A credential that can produce an access token without the user (and has the scopes asked for). */
export function isUsable(c: Credential | undefined, need: SignInNeed, now: number): boolean {
  if (!c || c.needsSignIn) return false;
  const hasToken = !!c.refreshToken || (!!c.accessToken && (c.expiresAt === undefined || c.expiresAt > now));
  return hasToken && (need.scopes ?? []).every((s) => c.scopes.includes(s));
}

export class SignInCoordinator {
  readonly #opts: SignInCoordinatorOptions;
  #inFlight: Promise<void> | undefined;
  #lastFailure: { at: number; error: McpOAuthError } | undefined;

  constructor(opts: SignInCoordinatorOptions) {
    this.#opts = opts;
  }

  /** Resolves once a usable credential is stored; rejects with an error naming the command to run. */
  ensureSignedIn(need: SignInNeed = {}): Promise<void> {
    this.#inFlight ??= this.#run(need).finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #usable(need: SignInNeed): Promise<boolean> {
    return isUsable(await this.#opts.manager.credential({ reload: true }), need, Date.now());
  }

  async #run(need: SignInNeed): Promise<void> {
    const { server, logger } = this.#opts;
    // A `mcp-oauth login` in a terminal, or another process, may have signed in already.
    if (await this.#usable(need)) return;
    const retryAfter = this.#opts.retryAfterFailureMs ?? DEFAULT_RETRY_AFTER_FAILURE_MS;
    if (this.#lastFailure && Date.now() - this.#lastFailure.at < retryAfter) throw this.#lastFailure.error;
    try {
      await withSignInLock(
        {
          lockDir: join(this.#opts.home, 'locks'),
          serverName: server.name,
          resource: this.#opts.manager.resource,
          // The holder may take the whole sign-in timeout; wait a little longer than that.
          waitMs: this.#opts.timeoutMs + 10_000,
        },
        async ({ waited }) => {
          // The lock holder before us may have just signed in: read the store before any browser.
          if (await this.#usable(need)) {
            logger.info('signed in by another process', { server: server.name });
            return;
          }
          if (waited) {
            throw new McpOAuthError('signin_required', `Another mcp-oauth process tried to sign in to ${server.name} and did not finish.`, {
              hint: loginCommand(server.name),
            });
          }
          logger.info('sign-in required; starting the browser sign-in', { server: server.name });
          await (this.#opts.signIn ?? ((n: SignInNeed) => this.#browserSignIn(n)))(need);
          logger.info('signed in', { server: server.name });
        },
      );
      this.#lastFailure = undefined;
    } catch (err) {
      const error = asSignInFailure(err, server.name);
      // Unreachable servers opened no tab: the next request may try again at once.
      if (!error.transient) this.#lastFailure = { at: Date.now(), error };
      logger.warn('sign-in did not complete', { server: server.name, code: error.code, reason: error.message });
      throw error;
    }
    // The TokenManager caches: make it take the new credential now.
    await this.#opts.manager.credential({ reload: true });
  }

  async #browserSignIn(need: SignInNeed): Promise<Credential> {
    const { signIn } = await import('../signin/flow.ts');
    const o = this.#opts;
    return signIn({
      server: o.server,
      store: o.store,
      fetch: withTimeout(o.fetch, httpTimeoutFrom(o.env)),
      env: o.env,
      logger: o.logger,
      // The proxy runs without a terminal on purpose: a browser that did not open is reported and
      // the sign-in keeps waiting for the callback (the URL is on stderr and in the log).
      browser: {
        mode: 'open',
        whenNoBrowser: 'wait',
        onBrowserFailed: (reason) => o.logger.warn('could not open a browser; open the sign-in URL by hand', { server: o.server.name, reason }),
      },
      scopes: need.scopes,
      challenge: need.challenge,
      timeoutMs: o.timeoutMs,
      onAuthorizeUrl: o.onAuthorizeUrl,
    });
  }
}

/** Every sign-in failure becomes one message that says what happened and what to run. */
function asSignInFailure(err: unknown, serverName: string): McpOAuthError {
  const hint = loginCommand(serverName);
  if (err instanceof McpOAuthError && err.hint === hint) return err;
  const why = err instanceof Error ? err.message.replace(/\.$/, '') : String(err);
  return new McpOAuthError(
    isMcpOAuthError(err) && err.code !== 'internal' ? err.code : 'signin_required',
    `Sign-in to ${serverName} did not complete (${why}).`,
    { hint, cause: err },
  );
}
