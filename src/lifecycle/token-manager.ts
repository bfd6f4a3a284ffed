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
import { stepUpScopes } from '../oauth/scopes.ts';
import type { BearerChallenge } from '../oauth/www-authenticate.ts';
import { fingerprint } from '../secrets.ts';
import type { Clock, Credential, Logger } from '../types.ts';
import { silentLogger } from '../types.ts';
import { DEFAULT_RETRY, backoffDelayMs, realSleep, type RetryPolicy } from './backoff.ts';
import { selectCredentials } from '../store/select.ts';
import { issuerMovedTo } from './migration.ts';
import { classifyRefreshError, isStale, refreshRefusal, refreshUnavailableError, resolveClientAuth, signInRequiredError, stillValid } from './refresh.ts';
import { DEFAULT_REFRESH_MARGIN_MS, type LifecycleEvent, type SignInRequest, type TokenManagerOptions } from './lifecycle-types.ts';

export { isStale, resolveClientAuth } from './refresh.ts';
export { DEFAULT_REFRESH_MARGIN_MS } from './lifecycle-types.ts';
export type { LifecycleEvent, SignInReason, SignInRequest, TokenManagerOptions } from './lifecycle-types.ts';

/** After a refresh failed for an outage, how long a still-valid token is used before trying again. */
const OUTAGE_PAUSE_MS = 5_000;

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
  #signIns = 0;
  /** When the last refresh failed for an outage (authorization server or store unreachable). */
  #outageAt: number | undefined;

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
    // Its own, else a sign-in made with the bare URL (src/store/select.ts); with several issuers
    // (the server moved) the newest wins.
    let stored: Credential[];
    try {
      stored = await this.#opts.store.list();
    } catch (err) {
      // A shared store that is down (Redis restarting) must not fail requests while the token in
      // hand still works: the refresh it was re-read for will be tried again at the next request.
      if (!opts.reload && cached && !cached.needsSignIn && isMcpOAuthError(err) && err.transient && stillValid(cached, this.#clock())) {
        this.#logger.warn('the credential store is unreachable; using the current access token while it lasts', { server: this.serverName, code: err.code });
        return cached;
      }
      throw err;
    }
    const [found] = selectCredentials(stored, this.#opts.server);
    if (cached && found && found.accessToken !== cached.accessToken) {
      this.#logger.debug('picked up a credential written elsewhere', { server: this.serverName, token: fingerprint(found.accessToken) });
      this.#emit({ type: 'reloaded', server: this.serverName });
    }
    this.#cached = found;
    return found;
  }

  /**
   * The token to send with an MCP request, or undefined to send none. MCP 2026-07-28 "Authorization
   * Flow Steps": a client without a usable credential sends the request without a token and starts
   * discovery and sign-in from the 401's challenge; a server that never asks is reached without
   * one. A stored credential is used, refreshed first when stale (a fresh process with an expired
   * token refreshes before its first request). A grant found gone also means "send none".
   */
  async tokenForRequest(): Promise<string | undefined> {
    const current = await this.credential();
    if (!current || current.needsSignIn) return undefined;
    try {
      return (await this.#refreshIfStale(false)).accessToken;
    } catch (err) {
      if (isMcpOAuthError(err, 'signin_required')) return undefined;
      throw err;
    }
  }

  /** The DPoP key `token` is bound to (RFC 9449), when it is the current credential's DPoP token. */
  dpopKeyFor(token: string): Record<string, unknown> | undefined {
    const c = this.#cached;
    return c?.accessToken === token && c.dpop && c.tokenType.toLowerCase() === 'dpop' ? c.dpop.privateJwk : undefined;
  }

  /** A credential renewed by running its grant again (no refresh token needed). */
  #renewable(c: Credential): boolean {
    return c.grant !== undefined && c.grant !== 'authorization_code' && this.#opts.regrant !== undefined;
  }

  /** How many interactive sign-ins this manager has started (auth-fetch caps them per operation). */
  get signIns(): number {
    return this.#signIns;
  }

  async accessToken(): Promise<string> {
    const credential = await this.refreshIfStale();
    if (!credential.accessToken) throw this.#signInRequired('the stored credential holds no access token');
    return credential.accessToken;
  }

  async refreshIfStale(): Promise<Credential> {
    return this.#refreshIfStale(true);
  }

  /** `mayPrompt` false: a needed sign-in is a signin_required error, never a browser. */
  async #refreshIfStale(mayPrompt: boolean): Promise<Credential> {
    const signIn = (request: SignInRequest, why: string) => (mayPrompt ? this.#signIn(request, why) : Promise.reject(this.#signInRequired(why)));
    const current = await this.credential();
    if (!current) return signIn({ reason: 'no_credential' }, 'no stored credential');
    if (current.needsSignIn) return signIn({ reason: 'grant_gone', previous: current }, current.needsSignIn.reason);
    const now = this.#clock();
    if (!isStale(current, now, this.#marginMs)) return current;
    if (!current.refreshToken && !this.#renewable(current)) {
      // Nothing to refresh with: use the token while it lasts, then a sign-in is the only way.
      if (stillValid(current, now)) return current;
      const why = current.refreshTokenMissingReason ?? 'the access token has expired and there is no refresh token';
      return signIn({ reason: 'grant_gone', previous: current }, why);
    }
    // Right after a refresh that failed for an outage, a token that still works is used without
    // trying again at once: each request would otherwise wait out the whole retry backoff.
    if (this.#outageAt !== undefined && now - this.#outageAt < OUTAGE_PAUSE_MS && stillValid(current, now)) return current;
    const outcome = await this.#sharedRefresh((c) => isStale(c, this.#clock(), this.#marginMs));
    this.#outageAt = !outcome.ok && outcome.error.transient ? this.#clock() : undefined;
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
      if (!mayPrompt) throw error;
      return this.#signInOr({ reason: 'grant_gone', previous: outcome.credential ?? current }, error);
    }
    throw error;
  }

  /**
   * After a 401 (RFC 6750 §3.1): the token sent (undefined: none was sent) did not do. Returns the
   * token to retry with — another process's newer one, a refreshed one, or one from a new sign-in
   * that starts from this challenge.
   */
  async afterUnauthorized(usedToken: string | undefined, challenge?: BearerChallenge): Promise<string> {
    // The store may already hold a newer token (another process refreshed or signed in).
    const current = await this.credential({ reload: true });
    if (!current) return this.#tokenOf(await this.#signIn({ reason: 'no_credential', challenge }, 'no stored credential'));
    if (current.needsSignIn) {
      return this.#tokenOf(await this.#signIn({ reason: 'grant_gone', challenge, previous: current }, current.needsSignIn.reason));
    }
    if (current.accessToken && current.accessToken !== usedToken) {
      // Another process already replaced the rejected token (or signed in while we sent none):
      // use its token (refreshed if stale).
      this.#logger.info('using the access token another process stored', { server: this.serverName });
      return this.accessToken();
    }
    const newIssuer = await issuerMovedTo(current, challenge, this.#opts.authorizationServers, (err) =>
      this.#logger.debug('could not read the resource metadata for the migration check', { server: this.serverName, error: String(err) }),
    );
    if (newIssuer) {
      // MCP 2026-07-28 "Authorization Server Binding": the server now trusts another authorization
      // server. Its tokens (and this client's registration) belong to the old one and are never
      // presented to the new one; a sign-in there is the only way on. The mark survives a failed
      // or declined sign-in, so the next run starts from the 401 again.
      const reason = `${this.serverName} moved to the authorization server ${newIssuer}`;
      await this.markNeedsSignIn(reason);
      const marked = (await this.credential({ reload: true })) ?? current;
      return this.#tokenOf(await this.#signIn({ reason: 'issuer_changed', challenge, previous: marked }, reason));
    }
    if (!current.refreshToken && !this.#renewable(current)) {
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
        { hint: loginCommand(this.serverName), status: 403, details: { scopes, challenge } },
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

  #signInRequired(why: string, cause?: unknown, oauthError?: string, challenge?: BearerChallenge): McpOAuthError {
    return signInRequiredError(this.serverName, why, { cause, oauthError, challenge });
  }

  #unavailable(error: McpOAuthError): McpOAuthError {
    return refreshUnavailableError(this.serverName, error);
  }

  /** Interactive sign-in (single-flight) or signin_required when none is available. */
  #signIn(request: SignInRequest, why: string): Promise<Credential> {
    return this.#signInOr(request, this.#signInRequired(why, undefined, request.previous?.needsSignIn?.oauthError, request.challenge));
  }

  async #signInOr(request: SignInRequest, error: McpOAuthError): Promise<Credential> {
    this.#emit({ type: 'signin_required', server: this.serverName, reason: request.reason });
    if (!this.#opts.signIn) throw error;
    return this.#runSignIn(request);
  }

  #runSignIn(request: SignInRequest): Promise<Credential> {
    const signIn = this.#opts.signIn!;
    if (!this.#signingIn) this.#signIns += 1;
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
        const error = classifyRefreshError(err, this.serverName);
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
      let next: Credential;
      if (this.#renewable(current)) {
        // A grant that needs nobody is simply run again, one at a time (the lock) like a refresh.
        try {
          next = await this.#opts.regrant!(current);
        } catch (err) {
          throw await this.#onRefreshRefused(current, err);
        }
        await store.put(next);
        this.#cached = next;
        this.#logger.debug('obtained a new access token with the grant', { server: this.serverName, grant: current.grant, token: fingerprint(next.accessToken) });
        this.#emit({ type: 'refreshed', server: this.serverName, expiresAt: next.expiresAt, rotated: false, byOtherProcess: false });
        return next;
      }
      if (!current.refreshToken) throw this.#signInRequired(current.refreshTokenMissingReason ?? 'there is no refresh token');
      const client = await resolveClientAuth(current, store, this.#opts.server, this.#opts.env ?? {});
      try {
        // RFC 8707 §2.2: the resource parameter on the refresh, so the new token is audience-bound.
        // The token endpoint code (and its zod schemas) loads on the first refresh, not at
        // start-up: a process with a fresh token never needs it.
        const { refreshAccessToken, mergeRefreshedCredential } = await import('../oauth/tokens.ts');
        const tokens = await refreshAccessToken({
          tokenEndpoint: current.tokenEndpoint,
          client,
          refreshToken: current.refreshToken,
          // The value sent at sign-in (a PRM path prefix, or none for Entra v2: quirks.ts).
          resource: (await import('../oauth/quirks.ts')).refreshResourceFor(current),
          fetch: this.#opts.fetch,
          now: this.#clock(),
          // RFC 9449 §5: a refresh token bound to the credential's DPoP key is presented with a
          // proof by that same key (stored with the credential, so any process can).
          ...(current.dpop ? { dpop: { privateJwk: current.dpop.privateJwk } } : {}),
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
    const refusal = await refreshRefusal(err);
    if (!refusal) return err;
    if (refusal.forgetRegistration) await this.#opts.store.deleteRegistration(current.key.issuer);
    await this.#markInLock(current, refusal.reason, refusal.oauthError);
    return this.#signInRequired(refusal.reason, err, refusal.oauthError);
  }

  async #markInLock(seen: Credential, reason: string, oauthError?: string): Promise<void> {
    const stored = (await this.#opts.store.get(seen.key)) ?? seen;
    const next: Credential = { ...stored, needsSignIn: { reason, at: this.#clock(), ...(oauthError ? { oauthError } : {}) } };
    await this.#opts.store.put(next);
    this.#cached = next;
  }
}
