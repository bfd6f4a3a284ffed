/**
 * The token endpoint (RFC 6749 §3.2, §4.1.3, §5, §6) and the revocation endpoint (RFC 7009).
 * Everything that crosses these endpoints is a secret, so no request or response body ever ends
 * up in an error message: errors name the endpoint, the HTTP status and the content type.
 */
import * as z from 'zod';
import { McpOAuthError } from '../errors.ts';
import type { Credential, CredentialKey, FetchLike, TokenEndpointAuthMethod, TokenSet } from '../types.ts';
import { assertSecureEndpoint } from './canonical.ts';
import { applyClientAuth, type ClientAuth } from './client-auth.ts';
import type { StoredJwk } from './dpop.ts';
import { describeNetworkError, isFormContentType, isJsonContentType, parseTokenBody, readText } from './token-body.ts';
import { errorFromBody, errorFromResponse, received } from './token-errors.ts';

// Re-exported: registration.ts and others read endpoint answers the same way.
export { describeNetworkError, isJsonContentType, readJson, retryAfterSeconds } from './token-body.ts';
// Client authentication lives in client-auth.ts; its contract is this module's.
export { applyClientAuth, type ClientAssertionSigner, type ClientAuth } from './client-auth.ts';
export { errorFromResponse } from './token-errors.ts';

/**
 * DPoP for one token request (RFC 9449 §5): the credential's key, the last nonce this server gave
 * (§8), and where to report a new one so the caller can keep it per server.
 */
export interface DpopForRequest {
  privateJwk: StoredJwk;
  nonce?: string;
  onNonce?: (nonce: string) => void;
}

// Some servers send lifetimes as numeric strings (and a form-encoded body has nothing else); null
// is treated as absent.
const seconds = () => z.union([z.number().nonnegative(), z.string().regex(/^\d+$/).transform(Number)]).nullish();

/** RFC 6749 §5.1 successful token response. Unknown members are ignored (§5.1 "MUST ignore"). */
const TokenResponseSchema = z.looseObject({
  access_token: z.string().min(1),
  token_type: z.string().min(1),
  expires_in: seconds(),
  refresh_token: z.string().nullish(),
  scope: z.string().nullish(),
  id_token: z.string().nullish(),
  // The refresh token's own lifetime: Keycloak `refresh_expires_in` (0 for an offline token, which
  // has none), GitHub `refresh_token_expires_in` ("Refreshing user access tokens": six months).
  refresh_expires_in: seconds(),
  refresh_token_expires_in: seconds(),
});

/**
 * POST a form to a token/revocation endpoint; network failures become `network_error`. `client` is
 * absent only for a grant without client authentication (RFC 7521 §4.1, workload identity).
 * `now` dates a client assertion and a DPoP proof. With `dpop`, each attempt carries a fresh proof
 * and the RFC 9449 §8 nonce retries happen here (dpop.ts `sendWithDpop`).
 */
export async function postForm(opts: {
  endpoint: string;
  what: string;
  client?: ClientAuth;
  params: Record<string, string>;
  fetch: FetchLike;
  now?: number;
  dpop?: DpopForRequest;
}): Promise<Response> {
  const url = assertSecureEndpoint(opts.endpoint, opts.what);
  // Built again for every attempt: a client assertion's jti must not be replayed (RFC 7523 §3).
  const send = async (proof?: string): Promise<Response> => {
    const body = new URLSearchParams(opts.params);
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    if (opts.client) await applyClientAuth(opts.client, body, headers, opts.now);
    if (proof) headers['dpop'] = proof;
    try {
      return await opts.fetch(url, { method: 'POST', headers, body: body.toString(), redirect: 'manual' });
    } catch (cause) {
      const reason = describeNetworkError(cause);
      throw new McpOAuthError('network_error', `Could not reach the ${opts.what} ${opts.endpoint}: ${reason}`, {
        cause,
        hint: 'check the network connection and try again',
        details: { endpoint: opts.endpoint },
      });
    }
  };
  if (!opts.dpop) return send();
  const { sendWithDpop } = await import('./dpop.ts');
  const { dpop } = opts;
  return sendWithDpop({
    privateJwk: dpop.privateJwk,
    htm: 'POST',
    url,
    nonce: dpop.nonce,
    now: opts.now ?? Date.now(),
    send,
    onNonce: dpop.onNonce,
    server: `the ${opts.what} ${opts.endpoint}`,
  });
}

/** JWT `exp` (seconds) → epoch ms; decode only, no verification: it is just an expiry hint. */
function jwtExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (payload && typeof payload === 'object' && 'exp' in payload) {
      const exp = (payload as { exp: unknown }).exp;
      if (typeof exp === 'number' && Number.isFinite(exp)) return exp * 1000;
    }
  } catch {
    // not a JWT: the expiry is unknown
  }
  return undefined;
}

/** RFC 6749 §5.1 `expires_in` (seconds from receipt), else the JWT `exp`, else unknown. */
export function expiresAtFrom(body: { expires_in?: number }, accessToken: string, now: number): number | undefined {
  if (typeof body.expires_in === 'number' && Number.isFinite(body.expires_in) && body.expires_in >= 0) {
    return now + body.expires_in * 1000;
  }
  return jwtExpiry(accessToken);
}

/** A 200 from a token endpoint that is not what it should be: the AS misbehaves (never a secret in it). */
export function tokenResponseInvalid(res: Response, endpoint: string, reason: string): McpOAuthError {
  return new McpOAuthError('token_response_invalid', `The token endpoint ${endpoint} returned an invalid token response: ${reason}.`, {
    status: res.status,
    details: { endpoint, contentType: res.headers.get('content-type') ?? undefined },
    hint: 'the authorization server is misbehaving; report it to the server operator',
  });
}

/** Field names only: zod messages could quote values. */
export function malformedFields(error: z.ZodError): string {
  return `missing or malformed ${[...new Set(error.issues.map((i) => i.path.join('.') || '(body)'))].join(', ')}`;
}

/**
 * A token endpoint's successful answer as an object (any grant, RFC 8693 token exchange included):
 * refusals become errors (RFC 6749 §5.2, tokens.ts classification), a body that is not JSON is
 * `token_response_invalid`. The caller validates the members with its own schema.
 */
export async function readTokenEndpointBody(opts: {
  res: Response;
  endpoint: string;
  action: string;
  secrets: Array<string | undefined>;
  now: number;
  clientMethod?: TokenEndpointAuthMethod;
}): Promise<Record<string, unknown>> {
  const { res, endpoint, now } = opts;
  const contentType = res.headers.get('content-type');
  const body = parseTokenBody(await readText(res), contentType);
  // RFC 6749 §5.2 errors come with 400/401; GitHub sends them with 200 and an `error` member
  // ("Troubleshooting OAuth app access token request errors"). Either way it is the server's
  // refusal (e.g. a dead refresh token → sign in again), not a malformed success.
  const errorIn200 = body !== undefined && typeof body.error === 'string' && body.error !== '' && body.access_token === undefined;
  if (res.status < 200 || res.status > 299 || errorIn200) {
    throw errorFromBody({ res, body, endpoint, what: 'token endpoint', action: opts.action, secrets: opts.secrets, now, clientMethod: opts.clientMethod });
  }
  // RFC 6749 §5.1: the response is application/json (GitHub: form-encoded unless asked, see
  // parseTokenBody). An HTML page with status 200 (a login wall, a proxy error page) must not be
  // mistaken for a token; its body is never shown (it may hold one).
  if (!isJsonContentType(contentType) && !isFormContentType(contentType)) {
    throw tokenResponseInvalid(res, endpoint, `expected a JSON body but received ${received(res)}`);
  }
  if (body === undefined) throw tokenResponseInvalid(res, endpoint, `the body is not valid JSON (${received(res)})`);
  return body;
}

/**
 * RFC 6749 §5.1 token response → TokenSet. `dpop`: the request carried a DPoP proof, so a
 * `token_type` of DPoP (RFC 9449 §5) is what we asked for; an AS may still answer Bearer (it chose
 * not to bind), which is kept as Bearer.
 */
export async function readTokenResponse(opts: {
  res: Response;
  endpoint: string;
  action: string;
  secrets: Array<string | undefined>;
  now: number;
  dpop?: boolean;
  clientMethod?: TokenEndpointAuthMethod;
}): Promise<TokenSet> {
  const { res, endpoint, now } = opts;
  const body = await readTokenEndpointBody(opts);
  const parsed = TokenResponseSchema.safeParse(body);
  if (!parsed.success) throw tokenResponseInvalid(res, endpoint, malformedFields(parsed.error));
  const data = parsed.data;
  // RFC 6749 §5.1: token_type is case-insensitive. MCP uses Bearer tokens (RFC 6750), and DPoP
  // ones (RFC 9449 §7.1) when we sent a proof; any other type (mac, or DPoP we never asked for)
  // would be sent wrong and fail in confusing ways later.
  const tokenType = data.token_type.toLowerCase();
  if (tokenType !== 'bearer' && !(opts.dpop && tokenType === 'dpop')) {
    const expected = opts.dpop ? 'Bearer or DPoP' : tokenType === 'dpop' ? 'Bearer: no DPoP proof was sent' : 'Bearer';
    throw tokenResponseInvalid(res, endpoint, `token_type "${data.token_type}" is not supported (expected ${expected})`);
  }
  const expiresIn = data.expires_in ?? undefined;
  // An empty `scope` (GitHub Apps send `scope=`) says nothing: §5.1, the requested scope stands.
  const scopes = typeof data.scope === 'string' && data.scope.trim() ? data.scope.split(' ').filter(Boolean) : undefined;
  const refreshLifetime = data.refresh_expires_in ?? data.refresh_token_expires_in ?? undefined;
  const tokens: TokenSet = {
    accessToken: data.access_token,
    tokenType: tokenType === 'dpop' ? 'DPoP' : 'Bearer',
    refreshToken: data.refresh_token || undefined,
    expiresAt: expiresAtFrom({ expires_in: expiresIn }, data.access_token, now),
    scopes,
    idToken: data.id_token || undefined,
  };
  // 0 means "does not expire" (Keycloak offline tokens), not "already expired".
  if (tokens.refreshToken && refreshLifetime) tokens.refreshTokenExpiresAt = now + refreshLifetime * 1000;
  return tokens;
}

/**
 * One token request (RFC 6749 §3.2) and its answer (§5.1, §5.2), whatever the grant: the form POST
 * with the client's authentication and DPoP proof, then the checked token response.
 */
export async function requestTokens(opts: {
  tokenEndpoint: string;
  client?: ClientAuth;
  params: Record<string, string>;
  fetch: FetchLike;
  now: number;
  dpop?: DpopForRequest;
  /** For messages: what this request was ("refresh", "authorization code exchange", …). */
  action: string;
  /** Redacted from any error text (the grant's own secret and the client secret). */
  secrets: Array<string | undefined>;
}): Promise<TokenSet> {
  const res = await postForm({
    endpoint: opts.tokenEndpoint,
    what: 'token endpoint',
    client: opts.client,
    fetch: opts.fetch,
    now: opts.now,
    dpop: opts.dpop,
    params: opts.params,
  });
  return readTokenResponse({
    res,
    endpoint: opts.tokenEndpoint,
    action: opts.action,
    secrets: [...opts.secrets, opts.client?.clientSecret],
    now: opts.now,
    dpop: !!opts.dpop,
    clientMethod: opts.client?.method,
  });
}

/** RFC 6749 §4.1.3 access token request + RFC 7636 §4.5 code_verifier + RFC 8707 §2.2 resource. */
export async function exchangeAuthorizationCode(opts: {
  tokenEndpoint: string;
  client: ClientAuth;
  code: string;
  codeVerifier: string;
  redirectUri: string;
  /** Undefined for a provider that refuses RFC 8707 `resource` (Entra v2, see quirks.ts). */
  resource?: string;
  fetch: FetchLike;
  now: number;
  /** RFC 9449 §5: bind the tokens to this key. */
  dpop?: DpopForRequest;
}): Promise<TokenSet> {
  return requestTokens({
    tokenEndpoint: opts.tokenEndpoint,
    client: opts.client,
    fetch: opts.fetch,
    now: opts.now,
    dpop: opts.dpop,
    params: {
      grant_type: 'authorization_code',
      code: opts.code,
      code_verifier: opts.codeVerifier,
      // §4.1.3: REQUIRED because it was in the authorization request.
      redirect_uri: opts.redirectUri,
      // MCP spec "Resource Parameter Implementation": MUST be in token requests too.
      ...(opts.resource === undefined ? {} : { resource: opts.resource }),
    },
    action: 'authorization code exchange',
    secrets: [opts.code, opts.codeVerifier],
  });
}

/**
 * RFC 6749 §6 refresh. No `scope`: §6 says an omitted scope means the originally granted scope,
 * which is what we want to keep. `resource` exactly once (RFC 8707 §2.2, MCP spec).
 */
export async function refreshAccessToken(opts: {
  tokenEndpoint: string;
  client: ClientAuth;
  refreshToken: string;
  /** Undefined for a provider that refuses RFC 8707 `resource` (Entra v2, see quirks.ts). */
  resource?: string;
  fetch: FetchLike;
  now: number;
  /** RFC 9449 §5: a refresh token issued to a public client is bound to the key: same key, new proof. */
  dpop?: DpopForRequest;
}): Promise<TokenSet> {
  return requestTokens({
    tokenEndpoint: opts.tokenEndpoint,
    client: opts.client,
    fetch: opts.fetch,
    now: opts.now,
    dpop: opts.dpop,
    params: {
      grant_type: 'refresh_token',
      refresh_token: opts.refreshToken,
      ...(opts.resource === undefined ? {} : { resource: opts.resource }),
    },
    action: 'refresh',
    secrets: [opts.refreshToken],
  });
}

/** RFC 7009 §2.1 revocation request; §2.2 any 200 is success (also for already-invalid tokens). */
export async function revokeToken(opts: {
  revocationEndpoint: string;
  client: ClientAuth;
  token: string;
  tokenTypeHint: 'refresh_token' | 'access_token';
  fetch: FetchLike;
  /** Dates a private_key_jwt client assertion. */
  now?: number;
}): Promise<void> {
  const res = await postForm({
    endpoint: opts.revocationEndpoint,
    what: 'revocation endpoint',
    client: opts.client,
    fetch: opts.fetch,
    now: opts.now,
    params: { token: opts.token, token_type_hint: opts.tokenTypeHint },
  });
  if (res.status >= 200 && res.status <= 299) {
    await res.body?.cancel();
    return;
  }
  // §2.2.1: 503 → try later (server_unavailable); other errors follow RFC 6749 §5.2.
  throw await errorFromResponse({
    res,
    endpoint: opts.revocationEndpoint,
    what: 'revocation endpoint',
    action: 'token revocation',
    secrets: [opts.token, opts.client.clientSecret],
    clientMethod: opts.client.method,
  });
}

/**
 * A refresh response replaces the access token; RFC 6749 §6: the server MAY issue a new refresh
 * token (rotation) — when it does not, the old one stays valid. §5.1: an omitted `scope` means the
 * granted scope is unchanged. A working refresh proves the grant is alive: clear `needsSignIn`.
 * `now` is the receipt time (defaults to the wall clock only for callers that have none).
 */
export function mergeRefreshedCredential(prev: Credential, tokens: TokenSet, now?: number): Credential {
  const refreshToken = tokens.refreshToken ?? prev.refreshToken;
  const next: Credential = {
    ...prev,
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType,
    refreshToken,
    // The new expiry, even when unknown: the old one belongs to the old access token.
    expiresAt: tokens.expiresAt,
    scopes: tokens.scopes ?? prev.scopes,
    obtainedAt: now ?? Date.now(),
  };
  delete next.needsSignIn;
  if (refreshToken) delete next.refreshTokenMissingReason;
  // The refresh token's expiry: the new one's when the answer says; a rotated token without one
  // has an unknown expiry; a kept token keeps its own.
  if (tokens.refreshTokenExpiresAt !== undefined) next.refreshTokenExpiresAt = tokens.refreshTokenExpiresAt;
  else if (tokens.refreshToken && tokens.refreshToken !== prev.refreshToken) delete next.refreshTokenExpiresAt;
  return next;
}

/** The credential a sign-in (code exchange) leaves behind. RFC 6749 §5.1: no `scope` in the
 * response means the requested scopes were granted. */
export function credentialFromTokenSet(opts: {
  key: CredentialKey;
  tokens: TokenSet;
  requestedScopes: string[];
  client: ClientAuth;
  tokenEndpoint: string;
  revocationEndpoint?: string;
  now: number;
}): Credential {
  const { tokens } = opts;
  const credential: Credential = {
    key: opts.key,
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType,
    scopes: tokens.scopes ?? [...opts.requestedScopes],
    clientId: opts.client.clientId,
    tokenEndpoint: opts.tokenEndpoint,
    tokenEndpointAuthMethod: opts.client.method,
    obtainedAt: opts.now,
  };
  if (tokens.refreshToken) credential.refreshToken = tokens.refreshToken;
  if (tokens.expiresAt !== undefined) credential.expiresAt = tokens.expiresAt;
  if (tokens.refreshTokenExpiresAt !== undefined) credential.refreshTokenExpiresAt = tokens.refreshTokenExpiresAt;
  if (opts.revocationEndpoint) credential.revocationEndpoint = opts.revocationEndpoint;
  return credential;
}
