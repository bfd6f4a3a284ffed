/**
 * The enterprise IdP's side of enterprise-managed authorization (MCP "Enterprise-Managed
 * Authorization" §3, SEP-990): the one browser sign-in — OpenID Connect authorization code + PKCE
 * on the loopback redirect (RFC 8252 §7.3) with the IdP's pre-registered client — and the checks
 * on the ID tokens it and its refreshes return. enterprise.ts decides when a sign-in is needed.
 */
import { decodeJwt } from 'jose';
import { McpOAuthError } from '../errors.ts';
import { buildAuthorizationUrl, createPkce, createState } from '../oauth/authorize.ts';
import { sameIssuer, type AuthorizationServerMetadata } from '../oauth/discovery.ts';
import { exchangeAuthorizationCode, type ClientAuth } from '../oauth/tokens.ts';
import type { Clock, CredentialStore, FetchLike, Logger, ServerConfig, TokenSet } from '../types.ts';
import { canOpenBrowser } from './browser.ts';
import { DEFAULT_SIGNIN_TIMEOUT_MS, noWayToSignIn, validatedCode, waitForRedirect, type BrowserMode } from './flow.ts';
import { startCallbackServer } from './loopback.ts';

/** What mcp-oauth reads from an ID token (decoded only: see readIdToken). Times in epoch ms. */
export interface IdTokenClaims {
  iss: string;
  sub: string;
  aud: string[];
  expiresAt?: number;
  issuedAt?: number;
}

function idTokenInvalid(issuer: string, why: string): McpOAuthError {
  return new McpOAuthError('token_response_invalid', `The identity provider ${issuer} returned an ID token that ${why}.`, {
    hint: 'the identity provider is misbehaving or misconfigured; report it to its administrator',
    details: { idp: issuer },
  });
}

/**
 * The ID token's claims, checked as OpenID Connect Core 1.0 §3.1.3.7 asks of a client: `iss` is
 * the IdP (item 2), `aud` contains our client_id (item 3), `nonce` is the one we sent (item 11),
 * `exp` is there (item 9; whether it is still valid is the caller's question). The signature is not
 * verified: the token came straight from the IdP's token endpoint over TLS (item 6 allows that in
 * place of the signature), and the IdP verifies it again when it takes it back in the exchange.
 * After a refresh, §12.2: same `iss`, `sub` and `aud` as the ID token of the sign-in.
 */
export function readIdToken(idToken: string, expect: { issuer: string; clientId: string; nonce?: string; previous?: IdTokenClaims }): IdTokenClaims {
  let payload: Record<string, unknown>;
  try {
    payload = decodeJwt(idToken) as Record<string, unknown>;
  } catch {
    throw idTokenInvalid(expect.issuer, 'is not a JWT');
  }
  const { iss, sub, exp, iat, nonce } = payload;
  const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud.filter((a): a is string => typeof a === 'string') : [];
  if (typeof iss !== 'string' || !sameIssuer(iss, expect.issuer)) throw idTokenInvalid(expect.issuer, `was issued by ${typeof iss === 'string' ? JSON.stringify(iss) : 'nobody (no iss)'}, not by it`);
  if (typeof sub !== 'string' || !sub) throw idTokenInvalid(expect.issuer, 'has no subject (sub)');
  if (!aud.includes(expect.clientId)) throw idTokenInvalid(expect.issuer, `is not for the client "${expect.clientId}" (aud)`);
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw idTokenInvalid(expect.issuer, 'has no expiry (exp)');
  if (expect.nonce !== undefined && nonce !== expect.nonce) throw idTokenInvalid(expect.issuer, 'does not carry the nonce of this sign-in');
  const previous = expect.previous;
  if (previous && (previous.sub !== sub || !sameIssuer(previous.iss, iss) || previous.aud.join(' ') !== aud.join(' '))) {
    throw idTokenInvalid(expect.issuer, 'after a refresh names another user or audience than the sign-in did (OpenID Connect Core §12.2)');
  }
  return { iss, sub, aud, expiresAt: exp * 1000, ...(typeof iat === 'number' && Number.isFinite(iat) ? { issuedAt: iat * 1000 } : {}) };
}

/** The claims of a stored ID token, or undefined when it cannot be read (then it is not used). */
export function storedIdTokenClaims(idToken: string | undefined, issuer: string, clientId: string): IdTokenClaims | undefined {
  if (!idToken) return undefined;
  try {
    return readIdToken(idToken, { issuer, clientId });
  } catch {
    return undefined;
  }
}

/**
 * The scopes of the IdP sign-in: `openid` (an ID token is the point: OIDC Core §3.1.2.1),
 * `offline_access` when the IdP lists it (OIDC Core §11: a refresh token, so a new ID token needs
 * no browser while the IdP session lasts), then the configured ones.
 */
export function idpSignInScopes(metadata: AuthorizationServerMetadata, configured: string[] = []): string[] {
  const offline = metadata.scopes_supported?.includes('offline_access') ? ['offline_access'] : [];
  return [...new Set(['openid', ...offline, ...configured])];
}

export interface IdpInteractive {
  browser: BrowserMode;
  timeoutMs?: number;
  onAuthorizeUrl?: (url: string) => void;
}

/**
 * The browser sign-in at the IdP: PKCE (RFC 7636), `state`, an OIDC `nonce` (Core §3.1.2.1), the
 * RFC 9207 `iss` check on the redirect, the code exchange; returns the token response with its
 * checked ID token. No RFC 8707 `resource`: the IdP's tokens are for the IdP itself.
 */
export async function signInAtIdp(opts: {
  server: ServerConfig;
  store: CredentialStore;
  fetch: FetchLike;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  clock: Clock;
  metadata: AuthorizationServerMetadata;
  client: ClientAuth;
  scopes: string[];
  interactive: IdpInteractive;
}): Promise<{ tokens: TokenSet; idToken: string; claims: IdTokenClaims }> {
  const { server, metadata, client, interactive } = opts;
  const issuer = metadata.issuer;
  const mode = interactive.browser;
  if (mode.mode === 'open' && mode.whenNoBrowser === 'fail' && !canOpenBrowser(opts.env)) {
    throw noWayToSignIn(server.name, `no browser can be opened here to sign in to the identity provider ${issuer} (no $BROWSER, no display)`);
  }
  const callback = await startCallbackServer({ port: server.oauth.callbackPort, timeoutMs: interactive.timeoutMs ?? DEFAULT_SIGNIN_TIMEOUT_MS, logger: opts.logger });
  try {
    const pkce = createPkce();
    const state = createState();
    const nonce = createState();
    const url = buildAuthorizationUrl({
      metadata,
      clientId: client.clientId,
      redirectUri: callback.redirectUri,
      scopes: opts.scopes,
      resource: undefined,
      state,
      codeChallenge: pkce.challenge,
      extraParams: { nonce },
    });
    interactive.onAuthorizeUrl?.(url);
    opts.logger.info('signing in to the enterprise identity provider', { server: server.name, idp: issuer });
    const redirect = await waitForRedirect({ server, store: opts.store, fetch: opts.fetch, env: opts.env, logger: opts.logger, browser: mode }, url, callback);
    const code = validatedCode(redirect, state, metadata);
    let tokens: TokenSet;
    let claims: IdTokenClaims;
    try {
      tokens = await exchangeAuthorizationCode({
        tokenEndpoint: metadata.token_endpoint,
        client,
        code,
        codeVerifier: pkce.verifier,
        redirectUri: callback.redirectUri,
        fetch: opts.fetch,
        now: opts.clock(),
      });
      if (!tokens.idToken) throw idTokenInvalid(issuer, 'is missing (the token response has no id_token; the client must be allowed the openid scope)');
      claims = readIdToken(tokens.idToken, { issuer, clientId: client.clientId, nonce });
    } catch (e) {
      redirect.respond({ ok: false, message: e instanceof Error ? e.message : String(e) });
      throw e;
    }
    redirect.respond({ ok: true, serverName: server.name });
    return { tokens, idToken: tokens.idToken, claims };
  } finally {
    await callback.close();
  }
}
