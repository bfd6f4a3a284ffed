/**
 * The token lifecycle of one configured server: a valid access token before every request, one
 * refresh at a time per credential (in this process and across processes), rotated refresh tokens
 * persisted before use, and a clear "sign in again" only when the grant is really gone.
 *
 * Order of checks, and why:
 * 1. Refresh *before* a request when the token is expired or about to expire (margin): sending an
 *    expired token costs a 401 and, with some clients, the whole tool list.
 * 2. Re-read the store before refreshing and after a 401: another process (a new login, another
 *    client's refresh) may already have written a newer credential.
 * 3. Refresh inside `store.withLock`: refresh tokens rotate (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2) and
 *    two processes presenting the same refresh token trigger reuse detection, which revokes the
 *    whole token family. The winner re-reads inside the lock; the others find its result.
 */
import { McpOAuthError, isMcpOAuthError, loginCommand } from '../errors.ts';
import { canonicalResourceUri } from '../oauth/canonical.ts';
import type { ClientAuth } from '../oauth/tokens.ts';
import { stepUpScopes } from '../oauth/scopes.ts';
import type { BearerChallenge } from '../oauth/www-authenticate.ts';
import { fingerprint } from '../secrets.ts';
import type { Clock, Credential, CredentialStore, FetchLike, Logger, ServerConfig } from '../types.ts';
import { silentLogger } from '../types.ts';
import { DEFAULT_RETRY, backoffDelayMs, realSleep, type RetryPolicy } from './backoff.ts';

export type SignInReason = 'no_credential' | 'grant_gone' | 'insufficient_scope';
export interface SignInRequest {
  reason: SignInReason;
  scopes?: string[];
  challenge?: BearerChallenge;
  previous?: Credential;
}
export type LifecycleEvent =
  | { type: 'refresh_started'; server: string }
  | { type: 'refreshed'; server: string; expiresAt?: number; rotated: boolean; byOtherProcess: boolean }
  | { type: 'refresh_failed'; server: string; error: McpOAuthError; willRetry: boolean }
  | { type: 'signin_required'; server: string; reason: string }
  | { type: 'signed_in'; server: string }
  | { type: 'reloaded'; server: string };

export interface TokenManagerOptions {
  server: ServerConfig;
  store: CredentialStore;
  fetch: FetchLike;
  /** For the client secret env var (`server.oauth.clientSecretEnvVar`). */
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  logger?: Logger;
  /** Refresh this long before expiry (default 60 s): a token must not expire in flight. */
  refreshMarginMs?: number;
  /** Interactive sign-in; must persist the credential itself. Absent → throw signin_required. */
  signIn?: (request: SignInRequest) => Promise<Credential>;
  /** `attempts` = retries after the first failed try (default 3). */
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number; sleep?: (ms: number) => Promise<void> };
  onEvent?: (e: LifecycleEvent) => void;
}

export const DEFAULT_REFRESH_MARGIN_MS = 60_000;

/**
 * True when the credential must be refreshed before use. No access token → true. Unknown expiry →
 * false: we cannot know, so we refresh on a 401 only (RFC 6749 §5.1 makes `expires_in` optional).
 */
export function isStale(credential: Credential, now: number, marginMs: number): boolean {
  if (!credential.accessToken) return true;
  if (credential.expiresAt === undefined) return false;
  // The margin never exceeds a quarter of the token's lifetime: with 60 s margin and 10 s tokens
  // every request would otherwise refresh, and a refresh per call burns the rotation budget.
  const lifetime = credential.expiresAt - credential.obtainedAt;
  const margin = lifetime > 0 ? Math.min(marginMs, Math.floor(lifetime / 4)) : marginMs;
  return credential.expiresAt - margin <= now;
}

/** True when the access token exists and its known expiry has not passed (margin ignored). */
function stillValid(credential: Credential | undefined, now: number): credential is Credential & { accessToken: string } {
  return !!credential?.accessToken && credential.expiresAt !== undefined && credential.expiresAt > now;
}

/**
 * Client authentication for the refresh (RFC 6749 §2.3.1). The credential names the client and the
 * method; a secret comes from the stored registration (DCR-issued, same client id) or from the
 * environment variable the config names — never from the config file itself.
 */
export async function resolveClientAuth(
  credential: Credential,
  store: CredentialStore,
  server: ServerConfig,
  env: NodeJS.ProcessEnv,
): Promise<ClientAuth> {
  const method = credential.tokenEndpointAuthMethod;
  const client: ClientAuth = { clientId: credential.clientId, method };
  if (method === 'none') return client;
  const registration = await store.getRegistration(credential.key.issuer);
  if (registration?.clientId === credential.clientId && registration.clientSecret) {
    return { ...client, clientSecret: registration.clientSecret };
  }
  const envVar = server.oauth.clientSecretEnvVar;
  const fromEnv = envVar ? env[envVar] : undefined;
  if (fromEnv) return { ...client, clientSecret: fromEnv };
  throw new McpOAuthError(
    'config_invalid',
    `The client secret for ${server.name} is missing: ${envVar ? `$${envVar} is not set` : 'no stored registration holds one and no clientSecretEnvVar is configured'}.`,
    { hint: envVar ? `export ${envVar}=… and run the command again` : loginCommand(server.name) },
  );
}

type RefreshOutcome =
  | { ok: true; credential: Credential }
  | { ok: false; error: McpOAuthError; credential?: Credential };

export class TokenManager {
  readonly serverName: string;
  readonly resource: string;
  readonly #opts: TokenManagerOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #marginMs: number;
  readonly #retry: RetryPolicy;
  #cached: Credential | undefined;
  #refreshing: Promise<RefreshOutcome> | undefined;
  #signingIn: Promise<Credential> | undefined;

  constructor(opts: TokenManagerOptions) {
    this.#opts = opts;
    this.serverName = opts.server.name;
    this.resource = canonicalResourceUri(opts.server.oauthResource ?? opts.server.url);
    this.#clock = opts.clock ?? Date.now;
    this.#logger = opts.logger ?? silentLogger;
    this.#marginMs = opts.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
    this.#retry = {
      attempts: opts.retry?.attempts ?? DEFAULT_RETRY.attempts,
      baseDelayMs: opts.retry?.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs,
      maxDelayMs: opts.retry?.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs,
      sleep: opts.retry?.sleep ?? realSleep,
    };
  }

  /**
   * This server's credential: key.serverName and key.resource match; with several issuers (the
   * server moved to another authorization server) the newest sign-in wins. Cached while usable;
   * re-read when stale or marked, so a login or refresh by another process is picked up.
   */
  async credential(opts: { reload?: boolean } = {}): Promise<Credential | undefined> {
    const cached = this.#cached;
    if (!opts.reload && cached && !cached.needsSignIn && !isStale(cached, this.#clock(), this.#marginMs)) return cached;
    const all = await this.#opts.store.list();
    let found: Credential | undefined;
    for (const c of all) {
      if (c.key.serverName !== this.serverName || c.key.resource !== this.resource) continue;
      if (!found || c.obtainedAt > found.obtainedAt) found = c;
    }
    if (cached && found && found.accessToken !== cached.accessToken) {
      this.#logger.debug('picked up a credential written elsewhere', { server: this.serverName, token: fingerprint(found.accessToken) });
      this.#emit({ type: 'reloaded', server: this.serverName });
    }
    this.#cached = found;
    return found;
  }

  async accessToken(): Promise<string> {
    const credential = await this.refreshIfStale();
    if (!credential.accessToken) throw this.#signInRequired('the stored credential holds no access token');
    return credential.accessToken;
  }

  async refreshIfStale(): Promise<Credential> {
    const current = await this.credential();
    if (!current) return this.#signIn({ reason: 'no_credential' }, 'no stored credential');
    if (current.needsSignIn) return this.#signIn({ reason: 'grant_gone', previous: current }, current.needsSignIn.reason);
    const now = this.#clock();
    if (!isStale(current, now, this.#marginMs)) return current;
    if (!current.refreshToken) {
      // Nothing to refresh with: use the token while it lasts, then a sign-in is the only way.
      if (stillValid(current, now)) return current;
      const why = current.refreshTokenMissingReason ?? 'the access token has expired and there is no refresh token';
      return this.#signIn({ reason: 'grant_gone', previous: current }, why);
    }
    const outcome = await this.#sharedRefresh((c) => isStale(c, this.#clock(), this.#marginMs));
    if (outcome.ok) return outcome.credential;
    const { error } = outcome;
    if (error.transient) {
      // Graceful degradation: the authorization server is down but the token still works for a
      // while; the resource server is the judge (a 401 brings us back here).
      const usable = outcome.credential ?? current;
      if (stillValid(usable, this.#clock())) {
        this.#logger.warn('token refresh failed; using the current access token until it expires', {
          server: this.serverName,
          code: error.code,
          expiresAt: new Date(usable.expiresAt!).toISOString(),
        });
        return usable;
      }
      throw this.#unavailable(error);
    }
    if (isMcpOAuthError(error, 'signin_required')) {
      return this.#signInOr({ reason: 'grant_gone', previous: outcome.credential ?? current }, error);
    }
    throw error;
  }

  async afterUnauthorized(usedToken: string, challenge?: BearerChallenge): Promise<string> {
    // The store may already hold a newer token (another process refreshed or signed in).
    const current = await this.credential({ reload: true });
    if (!current) return this.#tokenOf(await this.#signIn({ reason: 'no_credential', challenge }, 'no stored credential'));
    if (current.needsSignIn) {
      return this.#tokenOf(await this.#signIn({ reason: 'grant_gone', challenge, previous: current }, current.needsSignIn.reason));
    }
    if (current.accessToken && current.accessToken !== usedToken) {
      // Another process already replaced the rejected token: use its token (refreshed if stale).
      this.#logger.info('using the access token another process stored', { server: this.serverName });
      return this.accessToken();
    }
    if (!current.refreshToken) {
      const why = current.refreshTokenMissingReason ?? 'the server rejected the access token and there is no refresh token';
      return this.#tokenOf(await this.#signIn({ reason: 'grant_gone', challenge, previous: current }, why));
    }
    // RFC 6750 §3.1 invalid_token: the token is expired/revoked from the server's point of view,
    // whatever our clock says — refresh exactly this token.
    const outcome = await this.#sharedRefresh((c) => c.accessToken === usedToken);
    if (outcome.ok) {
      if (outcome.credential.accessToken && outcome.credential.accessToken !== usedToken) return outcome.credential.accessToken;
      return this.#tokenOf(await this.#signIn({ reason: 'grant_gone', challenge, previous: outcome.credential }, 'the server rejected the access token'));
    }
    const { error } = outcome;
    // No graceful degradation here: the resource server has already rejected the token.
    if (error.transient) throw this.#unavailable(error);
    if (isMcpOAuthError(error, 'signin_required')) {
      return this.#tokenOf(await this.#signInOr({ reason: 'grant_gone', challenge, previous: outcome.credential ?? current }, error));
    }
    throw error;
  }

  async afterInsufficientScope(challenge: BearerChallenge): Promise<string> {
    const current = await this.credential();
    // RFC 6750 §3.1 insufficient_scope + MCP spec "Step-Up Authorization Flow": ask for the union,
    // never fewer scopes than already granted.
    const scopes = stepUpScopes(current?.scopes ?? this.#opts.server.scopes ?? [], challenge.scope ?? []);
    this.#emit({ type: 'signin_required', server: this.serverName, reason: 'insufficient_scope' });
    if (!this.#opts.signIn) {
      throw new McpOAuthError(
        'insufficient_scope',
        `${this.serverName} needs more permissions${scopes.length ? ` (scopes: ${scopes.join(' ')})` : ''}; sign in again to grant them.`,
        { hint: loginCommand(this.serverName), status: 403, details: { scopes } },
      );
    }
    return this.#tokenOf(await this.#runSignIn({ reason: 'insufficient_scope', scopes, challenge, previous: current }));
  }

  async markNeedsSignIn(reason: string, oauthError?: string): Promise<void> {
    const current = await this.credential({ reload: true });
    if (!current) return;
    await this.#opts.store.withLock(current.key, () => this.#markInLock(current, reason, oauthError));
    this.#emit({ type: 'signin_required', server: this.serverName, reason });
  }

  // ---- internals ----

  #emit(e: LifecycleEvent): void {
    try {
      this.#opts.onEvent?.(e);
    } catch (err) {
      this.#logger.debug('lifecycle event listener threw', { error: String(err) });
    }
  }

  #tokenOf(credential: Credential): string {
    if (!credential.accessToken) throw this.#signInRequired('the sign-in produced no access token');
    return credential.accessToken;
  }

  #signInRequired(why: string, cause?: unknown, oauthError?: string): McpOAuthError {
    return new McpOAuthError('signin_required', `Sign-in required for ${this.serverName}: ${why.replace(/\.$/, '')}.`, {
      hint: loginCommand(this.serverName),
      cause,
      oauthError,
      details: { server: this.serverName },
    });
  }

  #unavailable(error: McpOAuthError): McpOAuthError {
    const unreachable = error.code === 'network_error';
    return new McpOAuthError(
      error.code,
      `Could not refresh the access token for ${this.serverName}: the authorization server is ${unreachable ? 'unreachable' : 'unavailable'}. Your sign-in is kept; retry later.`,
      { hint: 'retry later; check the network connection and the authorization server status', status: error.status, oauthError: error.oauthError, details: error.details, cause: error },
    );
  }

  /** Interactive sign-in (single-flight) or signin_required when none is available. */
  #signIn(request: SignInRequest, why: string): Promise<Credential> {
    return this.#signInOr(request, this.#signInRequired(why, undefined, request.previous?.needsSignIn?.oauthError));
  }

  async #signInOr(request: SignInRequest, error: McpOAuthError): Promise<Credential> {
    this.#emit({ type: 'signin_required', server: this.serverName, reason: request.reason });
    if (!this.#opts.signIn) throw error;
    return this.#runSignIn(request);
  }

  #runSignIn(request: SignInRequest): Promise<Credential> {
    const signIn = this.#opts.signIn!;
    this.#signingIn ??= (async () => {
      try {
        const credential = await signIn(request);
        this.#cached = credential;
        this.#emit({ type: 'signed_in', server: this.serverName });
        return credential;
      } finally {
        this.#signingIn = undefined;
      }
    })();
    return this.#signingIn;
  }

  /**
   * Single-flight in this process: callers join the refresh in flight; a caller whose need that
   * refresh did not satisfy (rare: a different token was refreshed) starts the next one.
   */
  async #sharedRefresh(needsRefresh: (c: Credential) => boolean): Promise<RefreshOutcome> {
    for (let joined = 0; this.#refreshing && joined < 3; joined++) {
      const outcome = await this.#refreshing;
      if (!outcome.ok || !needsRefresh(outcome.credential)) return outcome;
    }
    const run = this.#refreshWithRetry(needsRefresh).finally(() => {
      if (this.#refreshing === run) this.#refreshing = undefined;
    });
    this.#refreshing = run;
    return run;
  }

  /** Transient failures are retried with backoff; the lock is released while waiting. */
  async #refreshWithRetry(needsRefresh: (c: Credential) => boolean): Promise<RefreshOutcome> {
    this.#emit({ type: 'refresh_started', server: this.serverName });
    for (let retry = 0; ; retry++) {
      try {
        return { ok: true, credential: await this.#refreshOnce(needsRefresh) };
      } catch (err) {
        const error = this.#classify(err);
        const willRetry = error.transient && retry < this.#retry.attempts;
        this.#emit({ type: 'refresh_failed', server: this.serverName, error, willRetry });
        if (!willRetry) return { ok: false, error, credential: this.#cached };
        const retryAfter = typeof error.details?.retryAfterSeconds === 'number' ? error.details.retryAfterSeconds : undefined;
        const delay = backoffDelayMs(retry, this.#retry, retryAfter);
        this.#logger.warn('token refresh failed, retrying', { server: this.serverName, code: error.code, retryInMs: delay });
        await this.#retry.sleep(delay);
      }
    }
  }

  /** Protocol refusals end in signin_required (the user's next step); local problems pass through. */
  #classify(err: unknown): McpOAuthError {
    if (!(err instanceof McpOAuthError)) {
      return new McpOAuthError('internal', `Refreshing the token for ${this.serverName} failed unexpectedly.`, { cause: err });
    }
    if (err.transient || err.code === 'signin_required') return err;
    // A 200 that is not a token response (a captive portal's login page, a proxy's error page) is
    // not the grant's fault: a new sign-in would fail the same way. Keep the credential and say so.
    if (err.code === 'token_response_invalid') {
      return new McpOAuthError('token_response_invalid', `Refreshing the token for ${this.serverName} failed: ${err.message.replace(/\.$/, '')}. Your sign-in is kept.`, {
        cause: err,
        hint: 'if a captive portal or proxy is in the way, get through it, then retry; `mcp-oauth doctor ' + this.serverName + '` shows each step',
      });
    }
    if (err.code === 'oauth_error' || err.code === 'insecure_url') {
      // The server's own words say what is wrong (tokens.ts messages never hold a secret).
      const detail = err.message.replace(/\.$/, '');
      return this.#signInRequired(`the token refresh failed (${err.oauthError ?? err.code}): ${detail}`, err, err.oauthError);
    }
    return err;
  }

  /** One refresh under the cross-process lock. Returns the credential to use from now on. */
  async #refreshOnce(needsRefresh: (c: Credential) => boolean): Promise<Credential> {
    const known = this.#cached ?? (await this.credential({ reload: true }));
    if (!known) throw this.#signInRequired('no stored credential');
    const { store } = this.#opts;
    return store.withLock(known.key, async () => {
      // The winner of the lock re-reads: the process that held it before may have refreshed.
      const current = await this.credential({ reload: true });
      if (!current) throw this.#signInRequired('the stored credential was removed');
      if (current.needsSignIn) throw this.#signInRequired(current.needsSignIn.reason, undefined, current.needsSignIn.oauthError);
      if (!needsRefresh(current)) {
        this.#emit({ type: 'refreshed', server: this.serverName, expiresAt: current.expiresAt, rotated: false, byOtherProcess: true });
        return current;
      }
      if (!current.refreshToken) throw this.#signInRequired(current.refreshTokenMissingReason ?? 'there is no refresh token');
      const client = await resolveClientAuth(current, store, this.#opts.server, this.#opts.env ?? {});
      let next: Credential;
      try {
        // RFC 8707 §2.2: the resource parameter on the refresh, so the new token is audience-bound.
        // The token endpoint code (and its zod schemas) loads on the first refresh, not at
        // start-up: a process with a fresh token never needs it.
        const { refreshAccessToken, mergeRefreshedCredential } = await import('../oauth/tokens.ts');
        const tokens = await refreshAccessToken({
          tokenEndpoint: current.tokenEndpoint,
          client,
          refreshToken: current.refreshToken,
          resource: current.key.resource,
          fetch: this.#opts.fetch,
          now: this.#clock(),
        });
        next = mergeRefreshedCredential(current, tokens, this.#clock());
      } catch (err) {
        throw await this.#onRefreshRefused(current, err);
      }
      // Persist first: a rotated refresh token that only lives in memory is lost with the process,
      // and the old one is already consumed (OAuth 2.1 §4.3.1).
      await store.put(next);
      this.#cached = next;
      const rotated = next.refreshToken !== current.refreshToken;
      this.#logger.debug('refreshed access token', { server: this.serverName, token: fingerprint(next.accessToken), rotated });
      this.#emit({ type: 'refreshed', server: this.serverName, expiresAt: next.expiresAt, rotated, byOtherProcess: false });
      return next;
    });
  }

  /** Called inside the lock when the token endpoint refused the refresh. Returns what to throw. */
  async #onRefreshRefused(current: Credential, err: unknown): Promise<unknown> {
    if (!isMcpOAuthError(err, 'oauth_error')) return err;
    // RFC 6749 §5.2 invalid_grant: the refresh token is expired, revoked or was reused — the grant
    // is gone. Keep the credential (for `status`), mark it, ask for a sign-in.
    if (err.oauthError === 'invalid_grant') {
      const reason = 'the authorization server no longer accepts the refresh token (invalid_grant)';
      await this.#markInLock(current, reason, 'invalid_grant');
      return this.#signInRequired(reason, err, 'invalid_grant');
    }
    // RFC 6749 §5.2 invalid_client: the registration is gone (e.g. a DCR client was purged).
    // Forget it so the next sign-in registers again.
    if (err.oauthError === 'invalid_client') {
      const reason = 'the authorization server no longer knows this client (invalid_client)';
      await this.#opts.store.deleteRegistration(current.key.issuer);
      await this.#markInLock(current, reason, 'invalid_client');
      return this.#signInRequired(reason, err, 'invalid_client');
    }
    return err;
  }

  async #markInLock(seen: Credential, reason: string, oauthError?: string): Promise<void> {
    const stored = (await this.#opts.store.get(seen.key)) ?? seen;
    const next: Credential = { ...stored, needsSignIn: { reason, at: this.#clock(), ...(oauthError ? { oauthError } : {}) } };
    await this.#opts.store.put(next);
    this.#cached = next;
  }
}
