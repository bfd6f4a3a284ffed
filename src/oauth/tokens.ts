/**
 * The token endpoint (RFC 6749 §3.2, §4.1.3, §5, §6) and the revocation endpoint (RFC 7009).
 * Everything that crosses these endpoints is a secret, so no request or response body ever ends
 * up in an error message: errors name the endpoint, the HTTP status and the content type.
 */
import * as z from 'zod';
import { McpOAuthError } from '../errors.ts';
import { redact } from '../secrets.ts';
import type { Credential, CredentialKey, FetchLike, TokenEndpointAuthMethod, TokenSet } from '../types.ts';
import { assertSecureEndpoint } from './canonical.ts';
import { describeNetworkError, isFormContentType, isJsonContentType, parseTokenBody, readText, retryAfterSeconds } from './token-body.ts';

// Re-exported: registration.ts and others read endpoint answers the same way.
export { describeNetworkError, isJsonContentType, readJson, retryAfterSeconds } from './token-body.ts';

export type ClientAuth = { clientId: string; clientSecret?: string; method: TokenEndpointAuthMethod };

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

/** RFC 6749 §5.2 error response. */
const ErrorResponseSchema = z.looseObject({
  error: z.string().min(1),
  error_description: z.string().optional(),
});

/** RFC 6749 Appendix B: application/x-www-form-urlencoded of one value (space → "+"). */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

/** RFC 6749 §2.3.1 client authentication, applied to one token or revocation request. */
export function applyClientAuth(client: ClientAuth, body: URLSearchParams, headers: Record<string, string>): void {
  if (client.method === 'none') {
    // RFC 6749 §3.2.1: a public client identifies itself with client_id in the body.
    body.set('client_id', client.clientId);
    return;
  }
  if (!client.clientSecret) {
    throw new McpOAuthError(
      'config_invalid',
      `The client "${client.clientId}" uses ${client.method} but no client secret is available.`,
      { hint: 'set the environment variable named by client_secret_env in [mcp_servers.NAME.oauth]' },
    );
  }
  if (client.method === 'client_secret_basic') {
    // §2.3.1: id and secret are form-urlencoded BEFORE being joined by ":" and base64-encoded;
    // skipping that breaks secrets containing ":" or non-ASCII characters.
    const credentials = `${formEncode(client.clientId)}:${formEncode(client.clientSecret)}`;
    headers['authorization'] = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
  } else {
    body.set('client_id', client.clientId);
    body.set('client_secret', client.clientSecret);
  }
}

function received(res: Response): string {
  return `HTTP ${res.status} with content-type ${res.headers.get('content-type') ?? '(none)'}`;
}

/** POST a form to a token/revocation endpoint; network failures become `network_error`. */
export async function postForm(opts: {
  endpoint: string;
  what: string;
  client: ClientAuth;
  params: Record<string, string>;
  fetch: FetchLike;
}): Promise<Response> {
  const url = assertSecureEndpoint(opts.endpoint, opts.what);
  const body = new URLSearchParams(opts.params);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  applyClientAuth(opts.client, body, headers);
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
}

/**
 * Maps a non-2xx answer to an error. `action` finishes "The authorization server refused the …".
 * `secrets` are redacted from the server's error_description in case it echoes the request.
 */
export async function errorFromResponse(opts: {
  res: Response;
  endpoint: string;
  what: string;
  action: string;
  secrets: Array<string | undefined>;
  now?: number;
}): Promise<McpOAuthError> {
  // Lenient on the content type here: a JSON `error` mislabelled as text/plain still decides
  // between "sign in again" (invalid_grant) and "retry"; the body itself is never shown.
  const body = parseTokenBody(await readText(opts.res), opts.res.headers.get('content-type'));
  return errorFromBody({ ...opts, body });
}

/** Like errorFromResponse, for a body already read (also a 200 carrying an `error`: GitHub). */
function errorFromBody(opts: {
  res: Response;
  body: unknown;
  endpoint: string;
  what: string;
  action: string;
  secrets: Array<string | undefined>;
  now?: number;
}): McpOAuthError {
  const { res, body } = opts;
  const parsed = ErrorResponseSchema.safeParse(body);
  const oauthError = parsed.success ? parsed.data.error : undefined;
  const description = parsed.success && parsed.data.error_description
    ? redact(parsed.data.error_description, opts.secrets)
    : undefined;
  const retryAfter = retryAfterSeconds(res.headers.get('retry-after'), opts.now);
  const details: Record<string, unknown> = { endpoint: opts.endpoint };
  if (retryAfter !== undefined) details.retryAfterSeconds = retryAfter;
  if (description) details.errorDescription = description;

  // Transient: 5xx, 429, and RFC 6749 §4.1.2.1 `temporarily_unavailable` (some servers use it at the
  // token endpoint too). The stored credential stays; the caller retries with backoff.
  if (res.status >= 500 || res.status === 429 || oauthError === 'temporarily_unavailable') {
    return new McpOAuthError(
      'server_unavailable',
      `The ${opts.what} ${opts.endpoint} is unavailable (${received(res)}${oauthError ? `, ${oauthError}` : ''}).`,
      { status: res.status, oauthError, details, hint: 'try again later' },
    );
  }
  if (oauthError) {
    const hint =
      oauthError === 'invalid_grant'
        ? 'the grant has expired or was revoked: sign in again (mcp-oauth login NAME)'
        : oauthError === 'invalid_client'
          ? 'the client registration is no longer accepted: it is registered again at the next sign-in'
          : 'sign in again; if it keeps happening, report it to the server operator';
    return new McpOAuthError(
      'oauth_error',
      `The authorization server refused the ${opts.action}: ${oauthError}${description ? ` (${description})` : ''}`,
      { oauthError, status: res.status, details, hint },
    );
  }
  return new McpOAuthError(
    'oauth_error',
    `The ${opts.what} ${opts.endpoint} refused the ${opts.action} without an OAuth error (${received(res)}).`,
    { status: res.status, details, hint: 'check the server configuration; sign in again if it persists' },
  );
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

export async function readTokenResponse(opts: {
  res: Response;
  endpoint: string;
  action: string;
  secrets: Array<string | undefined>;
  now: number;
}): Promise<TokenSet> {
  const { res, endpoint, now } = opts;
  const what = 'token endpoint';
  const contentType = res.headers.get('content-type');
  const body = parseTokenBody(await readText(res), contentType);
  // RFC 6749 §5.2 errors come with 400/401; GitHub sends them with 200 and an `error` member
  // ("Troubleshooting OAuth app access token request errors"). Either way it is the server's
  // refusal (e.g. a dead refresh token → sign in again), not a malformed success.
  const errorIn200 = body !== undefined && typeof body.error === 'string' && body.error !== '' && body.access_token === undefined;
  if (res.status < 200 || res.status > 299 || errorIn200) {
    throw errorFromBody({ res, body, endpoint, what, action: opts.action, secrets: opts.secrets, now });
  }
  const invalid = (reason: string) =>
    new McpOAuthError('token_response_invalid', `The token endpoint ${endpoint} returned an invalid token response: ${reason}.`, {
      status: res.status,
      details: { endpoint, contentType: contentType ?? undefined },
      hint: 'the authorization server is misbehaving; report it to the server operator',
    });
  // RFC 6749 §5.1: the response is application/json (GitHub: form-encoded unless asked, see
  // parseTokenBody). An HTML page with status 200 (a login wall, a proxy error page) must not be
  // mistaken for a token; its body is never shown (it may hold one).
  if (!isJsonContentType(contentType) && !isFormContentType(contentType)) {
    throw invalid(`expected a JSON body but received ${received(res)}`);
  }
  if (body === undefined) throw invalid(`the body is not valid JSON (${received(res)})`);
  const parsed = TokenResponseSchema.safeParse(body);
  if (!parsed.success) {
    // Field names only: zod messages could quote values.
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(body)'))];
    throw invalid(`missing or malformed ${fields.join(', ')}`);
  }
  const data = parsed.data;
  // RFC 6749 §5.1: token_type is case-insensitive. MCP uses Bearer tokens (RFC 6750); any other
  // type (mac, DPoP) would be sent wrong and fail in confusing ways later.
  if (data.token_type.toLowerCase() !== 'bearer') {
    throw invalid(`token_type "${data.token_type}" is not supported (expected Bearer)`);
  }
  const expiresIn = data.expires_in ?? undefined;
  // An empty `scope` (GitHub Apps send `scope=`) says nothing: §5.1, the requested scope stands.
  const scopes = typeof data.scope === 'string' && data.scope.trim() ? data.scope.split(' ').filter(Boolean) : undefined;
  const refreshLifetime = data.refresh_expires_in ?? data.refresh_token_expires_in ?? undefined;
  const tokens: TokenSet = {
    accessToken: data.access_token,
    tokenType: 'Bearer',
    refreshToken: data.refresh_token || undefined,
    expiresAt: expiresAtFrom({ expires_in: expiresIn }, data.access_token, now),
    scopes,
    idToken: data.id_token || undefined,
  };
  // 0 means "does not expire" (Keycloak offline tokens), not "already expired".
  if (tokens.refreshToken && refreshLifetime) tokens.refreshTokenExpiresAt = now + refreshLifetime * 1000;
  return tokens;
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
}): Promise<TokenSet> {
  const res = await postForm({
    endpoint: opts.tokenEndpoint,
    what: 'token endpoint',
    client: opts.client,
    fetch: opts.fetch,
    params: {
      grant_type: 'authorization_code',
      code: opts.code,
      code_verifier: opts.codeVerifier,
      // §4.1.3: REQUIRED because it was in the authorization request.
      redirect_uri: opts.redirectUri,
      // MCP spec "Resource Parameter Implementation": MUST be in token requests too.
      ...(opts.resource === undefined ? {} : { resource: opts.resource }),
    },
  });
  return readTokenResponse({
    res,
    endpoint: opts.tokenEndpoint,
    action: 'authorization code exchange',
    secrets: [opts.code, opts.codeVerifier, opts.client.clientSecret],
    now: opts.now,
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
}): Promise<TokenSet> {
  const res = await postForm({
    endpoint: opts.tokenEndpoint,
    what: 'token endpoint',
    client: opts.client,
    fetch: opts.fetch,
    params: {
      grant_type: 'refresh_token',
      refresh_token: opts.refreshToken,
      ...(opts.resource === undefined ? {} : { resource: opts.resource }),
    },
  });
  return readTokenResponse({
    res,
    endpoint: opts.tokenEndpoint,
    action: 'refresh',
    secrets: [opts.refreshToken, opts.client.clientSecret],
    now: opts.now,
  });
}

/** RFC 7009 §2.1 revocation request; §2.2 any 200 is success (also for already-invalid tokens). */
export async function revokeToken(opts: {
  revocationEndpoint: string;
  client: ClientAuth;
  token: string;
  tokenTypeHint: 'refresh_token' | 'access_token';
  fetch: FetchLike;
}): Promise<void> {
  const res = await postForm({
    endpoint: opts.revocationEndpoint,
    what: 'revocation endpoint',
    client: opts.client,
    fetch: opts.fetch,
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
