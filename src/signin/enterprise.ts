/**
 * Enterprise-managed authorization (MCP extension "Enterprise-Managed Authorization", SEP-990;
 * draft-ietf-oauth-identity-assertion-authz-grant): the user signs in ONCE to the company's
 * identity provider; mcp-oauth keeps that IdP session (ID token + refresh token) under one
 * credential per IdP, shared by every MCP server configured with it, and exchanges the ID token at
 * the IdP (RFC 8693; draft §4.3) for an ID-JAG whose audience is an MCP authorization server. The
 * caller presents the ID-JAG with the JWT bearer grant (grants.ts `requestJwtBearerToken`).
 *
 *   stored ID token still valid           → exchange (no lock: an ID token may be used many times)
 *   expired                               → under the IdP key's lock: re-read, refresh at the IdP
 *                                           (OIDC Core §12), persist the rotated tokens, exchange
 *   no IdP session, or it is gone         → browser sign-in (idp-signin.ts) or signin_required
 *   exchange refused                      → a clear error naming the IdP; the IdP credential is kept
 */
import { McpOAuthError, isMcpOAuthError, loginCommand } from '../errors.ts';
import { discoverAuthorizationServer, type AuthorizationServerMetadata } from '../oauth/discovery.ts';
import { exchangeTokenForIdJag } from '../oauth/grants.ts';
import { refreshAccessToken, type ClientAuth } from '../oauth/tokens.ts';
import { fingerprint } from '../secrets.ts';
import type { Clock, Credential, CredentialKey, CredentialStore, FetchLike, Logger, ServerConfig, TokenEndpointAuthMethod } from '../types.ts';
import { idpSignInScopes, readIdToken, signInAtIdp, storedIdTokenClaims, type IdpInteractive } from './idp-signin.ts';

/** The `serverName` of every IdP credential (it belongs to no one MCP server). */
export const ENTERPRISE_IDP_SERVER_NAME = 'enterprise-idp';

/** A trailing "/" on an empty path is the same issuer (discovery.ts `sameIssuer`): one key for both spellings. */
function issuerKeyOf(issuer: string): string {
  return /^https?:\/\/[^/]+\/$/i.test(issuer) ? issuer.slice(0, -1) : issuer;
}

/** The one credential of an IdP, whichever MCP server signed in to it. */
export function idpCredentialKey(issuer: string): CredentialKey {
  const id = issuerKeyOf(issuer);
  return { serverName: ENTERPRISE_IDP_SERVER_NAME, resource: id, issuer: id };
}

export interface ObtainIdJagOptions {
  /** `server.oauth.enterprise` = { issuer, clientId, clientSecretEnvVar?, scopes? }. */
  server: ServerConfig;
  store: CredentialStore;
  /** Already has the request deadline. */
  fetch: FetchLike;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  clock?: Clock;
  /** The MCP server's authorization server issuer: the ID-JAG's audience (MCP EMA §4: MUST). */
  mcpIssuer: string;
  /** The RFC 8707 resource of the MCP server (MCP EMA §4: OPTIONAL, its RFC 9728 resource). */
  resource: string | undefined;
  /** The MCP scopes to ask for in the ID-JAG. */
  scopes: string[];
  /** How to sign in to the IdP when there is no usable IdP session; false: signin_required naming `mcp-oauth login NAME`. */
  interactive: false | IdpInteractive;
  /** Sign in to the IdP even when a session exists (`mcp-oauth login NAME`); needs `interactive`. */
  forceSignIn?: boolean;
}

/** Everything one call needs, resolved once. */
interface Context {
  opts: ObtainIdJagOptions;
  clock: Clock;
  idp: string;
  key: CredentialKey;
  clientId: string;
  secret?: string;
  configuredScopes?: string[];
}

/** A usable IdP session: an ID token to exchange and how to talk to the IdP's token endpoint. */
interface Session {
  idToken: string;
  tokenEndpoint: string;
  client: ClientAuth;
  /** Obtained by this call (a refresh or a sign-in): a refusal is not retried with a refresh. */
  fresh: boolean;
}

/**
 * An ID-JAG for `mcpIssuer`, from the IdP session (signing in or refreshing at the IdP only when
 * needed). Errors: `signin_required` (no IdP session and `interactive: false`), `signin_denied`
 * (the IdP refused the exchange: its policy, or a session it ended), `config_invalid`, transient
 * network/server errors as they come.
 */
export async function obtainIdJag(opts: ObtainIdJagOptions): Promise<{ assertion: string; expiresAt?: number }> {
  const ctx = contextOf(opts);
  let session = await idpSession(ctx);
  try {
    return await exchange(ctx, session);
  } catch (err) {
    // RFC 8693 §2.2.2: invalid_grant is also what an IdP says of an ID token it no longer takes
    // (the session ended there, or our clocks disagree about `exp`). With a stored ID token, one
    // refresh and one more exchange tell that apart from a policy refusal.
    if (session.fresh || !isMcpOAuthError(err, 'oauth_error') || err.oauthError !== 'invalid_grant') throw exchangeRefused(ctx, err);
    opts.logger.debug('the identity provider refused the stored ID token; refreshing it once', { server: opts.server.name, idp: ctx.idp });
    session = await idpSession(ctx, session.idToken);
    try {
      return await exchange(ctx, session);
    } catch (again) {
      throw exchangeRefused(ctx, again);
    }
  }
}

function contextOf(opts: ObtainIdJagOptions): Context {
  const { server, env } = opts;
  const enterprise = server.oauth.enterprise;
  if (!enterprise) {
    throw new McpOAuthError('config_invalid', `${server.name} uses enterprise-managed authorization but names no identity provider.`, {
      hint: `set issuer and client_id in [mcp_servers.${server.name}.oauth.enterprise]`,
    });
  }
  // The IdP client is pre-registered (MCP EMA §7.1); its secret only ever comes from the environment.
  const secret = enterprise.clientSecretEnvVar ? env[enterprise.clientSecretEnvVar] : undefined;
  if (enterprise.clientSecretEnvVar && !secret) {
    throw new McpOAuthError('config_invalid', `The client secret for ${server.name}'s identity provider ${enterprise.issuer} is read from $${enterprise.clientSecretEnvVar}, which is not set.`, {
      hint: `export ${enterprise.clientSecretEnvVar}=… and run the command again`,
    });
  }
  return {
    opts,
    clock: opts.clock ?? Date.now,
    idp: enterprise.issuer,
    key: idpCredentialKey(enterprise.issuer),
    clientId: enterprise.clientId,
    secret,
    configuredScopes: enterprise.scopes,
  };
}

/** RFC 6749 §2.3.1 with the configured secret: basic unless the IdP lists only post; none without one. */
function clientAuth(ctx: Context, method?: TokenEndpointAuthMethod, metadata?: AuthorizationServerMetadata): ClientAuth {
  if (!ctx.secret) return { clientId: ctx.clientId, method: 'none' };
  const supported = metadata?.token_endpoint_auth_methods_supported;
  const chosen = method === 'client_secret_basic' || method === 'client_secret_post'
    ? method
    : !supported || supported.includes('client_secret_basic') ? 'client_secret_basic' : 'client_secret_post';
  return { clientId: ctx.clientId, clientSecret: ctx.secret, method: chosen };
}

/** Refresh the ID token this long before it expires: a minute, or a quarter of its lifetime when shorter. */
function idTokenUsable(c: Credential, ctx: Context): boolean {
  const claims = storedIdTokenClaims(c.idToken, ctx.key.issuer, ctx.clientId);
  if (!claims?.expiresAt) return false;
  const lifetime = claims.issuedAt !== undefined ? claims.expiresAt - claims.issuedAt : Infinity;
  return claims.expiresAt - Math.min(60_000, lifetime / 4) > ctx.clock();
}

function sessionFrom(c: Credential, ctx: Context, fresh: boolean): Session {
  return { idToken: c.idToken!, tokenEndpoint: c.tokenEndpoint, client: clientAuth(ctx, c.tokenEndpointAuthMethod), fresh };
}

/**
 * The IdP session to exchange with. `refused`: the ID token the IdP just refused, so a valid-looking
 * stored one is not good enough (unless another process has replaced it meanwhile).
 */
async function idpSession(ctx: Context, refused?: string): Promise<Session> {
  const { store } = ctx.opts;
  let reason = 'you have not signed in to it yet';
  if (!ctx.opts.forceSignIn) {
    const stored = await store.get(ctx.key);
    if (!refused && stored && !stored.needsSignIn && stored.clientId === ctx.clientId && idTokenUsable(stored, ctx)) return sessionFrom(stored, ctx, false);
    const renewed = await store.withLock(ctx.key, () => renewInLock(ctx, refused));
    if ('session' in renewed) return renewed.session;
    reason = renewed.reason;
  } else {
    reason = 'a new sign-in was asked for';
  }
  return signIn(ctx, reason);
}

/**
 * Inside the IdP key's lock (two processes must not both spend a rotating refresh token, OAuth 2.1
 * §4.3.1): re-read — another process may have refreshed — else refresh at the IdP (RFC 6749 §6;
 * OIDC Core §12.2: the response carries a new ID token) and persist before anything else.
 */
async function renewInLock(ctx: Context, refused?: string): Promise<{ session: Session } | { reason: string }> {
  const { store, fetch, logger, server } = ctx.opts;
  const current = await store.get(ctx.key);
  if (!current) return { reason: 'you have not signed in to it yet' };
  if (current.needsSignIn) return { reason: current.needsSignIn.reason };
  if (current.clientId !== ctx.clientId) return { reason: `the configured client_id changed (the session is for "${current.clientId}")` };
  if (current.idToken !== refused && idTokenUsable(current, ctx)) return { session: sessionFrom(current, ctx, refused !== undefined) };
  if (!current.refreshToken) return { reason: current.refreshTokenMissingReason ?? 'the ID token expired and the identity provider gave no refresh token' };
  const client = clientAuth(ctx, current.tokenEndpointAuthMethod);
  let tokens;
  try {
    tokens = await refreshAccessToken({ tokenEndpoint: current.tokenEndpoint, client, refreshToken: current.refreshToken, fetch, now: ctx.clock() });
  } catch (err) {
    const { isDeadRefreshTokenError } = await import('../oauth/quirks.ts');
    if (isMcpOAuthError(err, 'oauth_error') && isDeadRefreshTokenError(err.oauthError)) {
      // The IdP session is over. Kept (for `status`), marked: the next use signs in again.
      const said = typeof err.details?.errorDescription === 'string' ? `: ${err.details.errorDescription}` : '';
      const why = `the identity provider ended the session (${err.oauthError}${said})`;
      await store.put({ ...current, needsSignIn: { reason: why, at: ctx.clock(), oauthError: err.oauthError } });
      logger.info('the enterprise identity provider session ended; a sign-in is needed', { server: server.name, idp: ctx.idp, oauthError: err.oauthError });
      return { reason: why };
    }
    throw isMcpOAuthError(err, 'oauth_error') && err.oauthError === 'invalid_client' ? clientRefused(ctx, err) : err;
  }
  const next: Credential = {
    ...current,
    refreshToken: tokens.refreshToken ?? current.refreshToken,
    tokenType: tokens.tokenType,
    scopes: tokens.scopes ?? current.scopes,
    obtainedAt: ctx.clock(),
  };
  if (tokens.refreshTokenExpiresAt !== undefined) next.refreshTokenExpiresAt = tokens.refreshTokenExpiresAt;
  else if (tokens.refreshToken && tokens.refreshToken !== current.refreshToken) delete next.refreshTokenExpiresAt;
  if (!tokens.idToken) {
    // OIDC Core §12.2 lets an IdP answer a refresh without an ID token: keep the rotated refresh
    // token, and sign in for a new ID token.
    const why = 'the identity provider\'s refresh gave no new ID token';
    await store.put({ ...next, needsSignIn: { reason: why, at: ctx.clock() } });
    return { reason: why };
  }
  let claims;
  try {
    const previous = storedIdTokenClaims(current.idToken, ctx.key.issuer, ctx.clientId);
    claims = readIdToken(tokens.idToken, { issuer: ctx.key.issuer, clientId: ctx.clientId, previous });
  } catch (err) {
    // Never used; the rotated refresh token is kept all the same, and the next use signs in.
    await store.put({ ...next, needsSignIn: { reason: 'the identity provider\'s refresh gave an ID token that failed the checks', at: ctx.clock() } });
    throw err;
  }
  next.idToken = tokens.idToken;
  next.expiresAt = claims.expiresAt;
  // Persist first: the old refresh token may already be spent (rotation).
  await store.put(next);
  logger.debug('refreshed the enterprise identity provider session', {
    server: server.name, idp: ctx.idp, idToken: fingerprint(tokens.idToken), rotated: next.refreshToken !== current.refreshToken,
  });
  return { session: sessionFrom(next, ctx, true) };
}

/** No usable IdP session: the browser sign-in (interactive), else signin_required naming the login command. */
async function signIn(ctx: Context, reason: string): Promise<Session> {
  const { server, store, fetch, env, logger, interactive } = ctx.opts;
  if (!interactive) {
    throw new McpOAuthError('signin_required', `Sign-in required for ${server.name}: sign in to the identity provider ${ctx.idp} (${reason.replace(/\.$/, '')}).`, {
      hint: loginCommand(server.name),
      details: { server: server.name, idp: ctx.idp },
    });
  }
  const metadata = await discoverAuthorizationServer({ issuer: ctx.idp, fetch });
  const client = clientAuth(ctx, undefined, metadata);
  const scopes = idpSignInScopes(metadata, ctx.configuredScopes);
  const { tokens, idToken, claims } = await signInAtIdp({ server, store, fetch, env, logger, clock: ctx.clock, metadata, client, scopes, interactive });
  // The IdP credential. No access token: mcp-oauth never uses the IdP's own one. `expiresAt` is
  // the ID token's expiry, the token that matters here.
  const credential: Credential = {
    key: ctx.key,
    idToken,
    tokenType: tokens.tokenType,
    expiresAt: claims.expiresAt,
    scopes: tokens.scopes ?? scopes,
    clientId: client.clientId,
    tokenEndpoint: metadata.token_endpoint,
    tokenEndpointAuthMethod: client.method,
    obtainedAt: ctx.clock(),
    grant: 'authorization_code',
  };
  if (metadata.revocation_endpoint) credential.revocationEndpoint = metadata.revocation_endpoint;
  if (tokens.refreshToken) credential.refreshToken = tokens.refreshToken;
  else credential.refreshTokenMissingReason = `${ctx.idp} issued no refresh token${scopes.includes('offline_access') ? '' : ' (it does not list offline_access)'}, so you will sign in to it again when the ID token expires`;
  if (tokens.refreshTokenExpiresAt !== undefined) credential.refreshTokenExpiresAt = tokens.refreshTokenExpiresAt;
  await store.withLock(ctx.key, () => store.put(credential));
  logger.info('signed in to the enterprise identity provider', {
    server: server.name, idp: ctx.idp, idToken: fingerprint(idToken), refreshToken: credential.refreshToken ? 'yes' : 'no',
  });
  return { idToken, tokenEndpoint: metadata.token_endpoint, client, fresh: true };
}

/** RFC 8693 at the IdP (draft §4.3; MCP EMA §4): audience = the MCP issuer, resource, scopes. */
async function exchange(ctx: Context, session: Session): Promise<{ assertion: string; expiresAt?: number }> {
  const { opts } = ctx;
  const jag = await exchangeTokenForIdJag({
    tokenEndpoint: session.tokenEndpoint,
    client: session.client,
    idToken: session.idToken,
    audience: opts.mcpIssuer,
    resource: opts.resource,
    scopes: opts.scopes,
    fetch: opts.fetch,
    now: ctx.clock(),
  });
  opts.logger.debug('exchanged the ID token for an ID-JAG', { server: opts.server.name, idp: ctx.idp, audience: opts.mcpIssuer, idJag: fingerprint(jag.assertion) });
  return { assertion: jag.assertion, ...(jag.expiresAt !== undefined ? { expiresAt: jag.expiresAt } : {}) };
}

function clientRefused(ctx: Context, err: McpOAuthError): McpOAuthError {
  const { server } = ctx.opts;
  return new McpOAuthError('config_invalid', `The identity provider ${ctx.idp} does not accept the client "${ctx.clientId}" (invalid_client).`, {
    cause: err,
    oauthError: 'invalid_client',
    status: err.status,
    hint: `check client_id and client_secret_env in [mcp_servers.${server.name}.oauth.enterprise] against the client registered at ${ctx.idp}`,
    details: { server: server.name, idp: ctx.idp },
  });
}

/**
 * A refused exchange in the user's terms (MCP EMA §4.1: the IdP applies the administrator's policy
 * to the client, user, MCP server and scopes). It is not a dead MCP grant: `signin_denied`, not
 * `oauth_error`, so no caller marks a credential; the IdP session stays as it is.
 */
function exchangeRefused(ctx: Context, err: unknown): unknown {
  if (!isMcpOAuthError(err, 'oauth_error')) return err;
  if (err.oauthError === 'invalid_client') return clientRefused(ctx, err);
  const { server, mcpIssuer } = ctx.opts;
  const said = typeof err.details?.errorDescription === 'string' ? `: ${err.details.errorDescription.replace(/\.$/, '')}` : '';
  return new McpOAuthError(
    'signin_denied',
    `The identity provider ${ctx.idp} refused to let mcp-oauth reach ${server.name} (its authorization server ${mcpIssuer}) for you: ${err.oauthError ?? 'refused'}${said}.`,
    {
      cause: err,
      oauthError: err.oauthError,
      status: err.status,
      hint: `if its policy does not allow ${server.name} for you${ctx.opts.scopes.length ? ` with the scopes ${ctx.opts.scopes.join(' ')}` : ''}, ask the administrator of ${ctx.idp}; if your session there ended, sign in again: ${loginCommand(server.name)}`,
      details: { ...err.details, server: server.name, idp: ctx.idp, audience: mcpIssuer },
    },
  );
}
