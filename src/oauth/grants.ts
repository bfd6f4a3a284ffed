/**
 * The grants without a person at a browser: client credentials (RFC 6749 §4.4; MCP extension
 * "OAuth Client Credentials"), a JWT as the grant (RFC 7523 §2.1 / RFC 7521 §4.1; MCP extension
 * "Workload Identity Federation", and the last step of enterprise-managed authorization), and the
 * RFC 8693 token exchange at the enterprise IdP that turns an ID token into an Identity Assertion
 * JWT Authorization Grant (ID-JAG; draft-ietf-oauth-identity-assertion-authz-grant §4.3, MCP
 * extension "Enterprise-Managed Authorization" §4). Token endpoint plumbing — client
 * authentication, DPoP, error classification, token responses — is tokens.ts's.
 */
import { decodeJwt } from 'jose';
import * as z from 'zod';
import { McpOAuthError, isMcpOAuthError } from '../errors.ts';
import type { FetchLike, TokenSet } from '../types.ts';
import {
  expiresAtFrom,
  malformedFields,
  postForm,
  readTokenEndpointBody,
  requestTokens,
  tokenResponseInvalid,
  type ClientAuth,
  type DpopForRequest,
} from './tokens.ts';

export const CLIENT_CREDENTIALS_GRANT = 'client_credentials';
/** RFC 7523 §2.1. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** RFC 8693 §2.1. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3. */
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
/** draft-ietf-oauth-identity-assertion-authz-grant §4.3 / §9. */
export const ID_JAG_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';

/** Clock skew we forgive for `nbf` (the issuer's clock may run ahead of ours). */
const NOT_BEFORE_LEEWAY_MS = 60_000;

const optionalScope = (scopes: string[]): Record<string, string> => (scopes.length > 0 ? { scope: scopes.join(' ') } : {});
const optionalResource = (resource: string | undefined): Record<string, string> => (resource === undefined ? {} : { resource });

/**
 * RFC 6749 §4.4.2 client credentials access token request: grant_type, `scope`, and the RFC 8707
 * `resource` (MCP spec: in every token request). §4.4: confidential clients only.
 */
export async function requestClientCredentialsToken(opts: {
  tokenEndpoint: string;
  client: ClientAuth;
  scopes: string[];
  resource?: string;
  fetch: FetchLike;
  now: number;
  dpop?: DpopForRequest;
}): Promise<TokenSet> {
  const { client } = opts;
  if (client.method === 'none') {
    throw new McpOAuthError(
      'config_invalid',
      `The client credentials grant needs a client that authenticates (RFC 6749 §4.4), but "${client.clientId}" has neither a client secret nor a private key.`,
      { hint: 'set client_secret_env or private_key_file in [mcp_servers.NAME.oauth]' },
    );
  }
  try {
    return await requestTokens({
      tokenEndpoint: opts.tokenEndpoint,
      client,
      fetch: opts.fetch,
      now: opts.now,
      dpop: opts.dpop,
      params: { grant_type: CLIENT_CREDENTIALS_GRANT, ...optionalScope(opts.scopes), ...optionalResource(opts.resource) },
      action: 'client credentials token request',
      secrets: [],
    });
  } catch (err) {
    // A pre-registered client (the extension: no dynamic registration): a refused client is a
    // wrong id or secret, not a registration to redo.
    if (isMcpOAuthError(err, 'oauth_error') && err.oauthError === 'invalid_client' && client.method !== 'private_key_jwt') {
      throw new McpOAuthError(err.code, err.message, {
        cause: err, oauthError: err.oauthError, status: err.status, details: err.details,
        hint: `check the client id "${client.clientId}" and the client secret (the environment variable client_secret_env names)`,
      });
    }
    throw err;
  }
}

/** The claims of an assertion we can read without verifying it (RFC 7523 §3 members). */
export interface AssertionClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  /** epoch ms */
  expiresAt?: number;
  /** epoch ms */
  notBefore?: number;
  /** epoch ms */
  issuedAt?: number;
}

function assertionError(source: string, why: string, hint: string, details: Record<string, unknown> = {}): McpOAuthError {
  return new McpOAuthError('assertion_invalid', `The assertion from ${source} ${why}.`, {
    hint,
    details: { assertionSource: source, ...details },
  });
}

function ago(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/**
 * Reads an assertion JWT before it is sent (decode only — the AS verifies it) and reports what
 * would make the AS refuse it anyway: not a JWT, expired (`exp`, RFC 7523 §3 item 4), or not yet
 * valid (`nbf`, item 5; a minute of clock skew forgiven). `source` names where it came from ("the
 * file /var/run/secrets/tokens/mcp", "$CI_JOB_JWT") so the error says what to fix. A JWE assertion
 * (five parts, RFC 7523 §2.1 allows it) cannot be read and is passed on as it is.
 */
export function checkAssertion(jwt: string, now: number, source = 'the configured source'): AssertionClaims {
  const fix = `check ${source}: it must hold a current signed JWT (JWS compact serialization) from the workload platform or identity provider`;
  const text = jwt.trim();
  if (!text) throw assertionError(source, 'is empty', fix);
  const parts = text.split('.');
  if (parts.length === 5) return {};
  if (parts.length !== 3 || /\s/.test(text)) throw assertionError(source, `is not a JWT (expected three dot-separated parts, found ${parts.length})`, fix);
  let payload: Record<string, unknown>;
  try {
    payload = decodeJwt(text) as Record<string, unknown>;
  } catch {
    throw assertionError(source, 'is not a JWT (its payload does not decode to a JSON object)', fix);
  }
  const claims: AssertionClaims = {};
  for (const name of ['exp', 'nbf', 'iat'] as const) {
    const value = payload[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw assertionError(source, `has a malformed "${name}" claim (not a number)`, fix);
  }
  if (typeof payload.iss === 'string') claims.iss = payload.iss;
  if (typeof payload.sub === 'string') claims.sub = payload.sub;
  if (typeof payload.aud === 'string' || Array.isArray(payload.aud)) claims.aud = payload.aud as string | string[];
  if (typeof payload.exp === 'number') claims.expiresAt = payload.exp * 1000;
  if (typeof payload.nbf === 'number') claims.notBefore = payload.nbf * 1000;
  if (typeof payload.iat === 'number') claims.issuedAt = payload.iat * 1000;
  const who = { ...(claims.iss ? { issuer: claims.iss } : {}), ...(claims.aud ? { audience: claims.aud } : {}) };
  if (claims.expiresAt !== undefined && claims.expiresAt <= now) {
    throw assertionError(
      source,
      `expired at ${new Date(claims.expiresAt).toISOString()} (${ago(now - claims.expiresAt)} ago)`,
      `${source} must be refreshed by whatever writes it (a Kubernetes projected token is rotated by the kubelet, a CI job's OIDC token is issued per job); check that it still is`,
      { ...who, expiresAt: claims.expiresAt },
    );
  }
  if (claims.notBefore !== undefined && claims.notBefore > now + NOT_BEFORE_LEEWAY_MS) {
    throw assertionError(
      source,
      `is not valid before ${new Date(claims.notBefore).toISOString()} (${ago(claims.notBefore - now)} from now)`,
      'check this machine\'s clock, and the issuer\'s',
      { ...who, notBefore: claims.notBefore },
    );
  }
  return claims;
}

/**
 * RFC 7523 §2.1 access token request with a JWT as the authorization grant: `assertion`, `scope`,
 * and the RFC 8707 `resource`. `client` is optional (RFC 7521 §4.1: client authentication is
 * optional with an assertion grant; a workload identity has no client, MCP "Workload Identity
 * Federation"); a public client sends its client_id. The assertion is checked first (checkAssertion)
 * and a refusal (RFC 7521 §4.1.1 `invalid_grant`) becomes `assertion_invalid` naming `assertionSource`.
 */
export async function requestJwtBearerToken(opts: {
  tokenEndpoint: string;
  assertion: string;
  /** For messages: where the assertion came from. */
  assertionSource?: string;
  client?: ClientAuth;
  scopes: string[];
  resource?: string;
  fetch: FetchLike;
  now: number;
  dpop?: DpopForRequest;
}): Promise<TokenSet> {
  const source = opts.assertionSource ?? 'the configured source';
  // A JWT holds no whitespace; a file written with `echo` ends in a newline.
  const assertion = opts.assertion.trim();
  const claims = checkAssertion(assertion, opts.now, source);
  try {
    return await requestTokens({
      tokenEndpoint: opts.tokenEndpoint,
      client: opts.client,
      fetch: opts.fetch,
      now: opts.now,
      dpop: opts.dpop,
      params: { grant_type: JWT_BEARER_GRANT, assertion, ...optionalScope(opts.scopes), ...optionalResource(opts.resource) },
      action: `JWT bearer grant with the assertion from ${source}`,
      secrets: [assertion],
    });
  } catch (err) {
    // RFC 7523 §3.1: "invalid_grant" — the assertion's signature, issuer, audience, subject or
    // times did not satisfy the AS. The fix is at the source, not a sign-in.
    if (isMcpOAuthError(err, 'oauth_error') && err.oauthError === 'invalid_grant') {
      const said = typeof err.details?.errorDescription === 'string' ? ` (${err.details.errorDescription})` : '';
      throw new McpOAuthError('assertion_invalid', `The authorization server refused the assertion from ${source}: invalid_grant${said}.`, {
        cause: err,
        oauthError: 'invalid_grant',
        status: err.status,
        hint: `check ${source}: the authorization server must trust its issuer${claims.iss ? ` (${claims.iss})` : ''} and subject, and its audience${claims.aud ? ` (${[claims.aud].flat().join(', ')})` : ''} must name this authorization server`,
        details: { ...err.details, assertionSource: source, ...(claims.iss ? { issuer: claims.iss } : {}), ...(claims.aud ? { audience: claims.aud } : {}) },
      });
    }
    throw err;
  }
}

const seconds = z.union([z.number().nonnegative(), z.string().regex(/^\d+$/).transform(Number)]).nullish();

/** RFC 8693 §2.2.1 response carrying an ID-JAG (identity-assertion-authz-grant §4.3.4). */
const IdJagResponseSchema = z.looseObject({
  issued_token_type: z.string().min(1),
  // RFC 8693 §2.2.1: the issued token is in `access_token` whatever its type.
  access_token: z.string().min(1),
  // "N_A": not an access token (RFC 8693 §2.2.1); not checked, any value is fine here.
  token_type: z.string().nullish(),
  expires_in: seconds,
  scope: z.string().nullish(),
});

/** An Identity Assertion JWT Authorization Grant, ready for `requestJwtBearerToken`. */
export interface IdJag {
  /** The ID-JAG (a JWT signed by the IdP; a secret: it is a grant). */
  assertion: string;
  /** epoch ms: `expires_in`, else the JWT's `exp`. */
  expiresAt?: number;
  /** The scopes the IdP granted (RFC 8693 §2.2.1 `scope`), when it says. */
  scopes?: string[];
}

/**
 * RFC 8693 token exchange at the enterprise IdP's token endpoint (MCP "Enterprise-Managed
 * Authorization" §4): the user's ID token as the subject token, for an ID-JAG whose audience is
 * the MCP server's authorization server (`audience` MUST be its issuer) and, optionally, whose
 * `resource` is the MCP server. The client authenticates as it does at the IdP for sign-in.
 */
export async function exchangeTokenForIdJag(opts: {
  /** The IdP's token endpoint. */
  tokenEndpoint: string;
  client?: ClientAuth;
  idToken: string;
  /** The MCP authorization server's issuer identifier. */
  audience: string;
  /** The MCP server's resource identifier (RFC 9728). */
  resource?: string;
  scopes: string[];
  fetch: FetchLike;
  now: number;
}): Promise<IdJag> {
  const action = `token exchange of the ID token for an ID-JAG for ${opts.audience}`;
  const res = await postForm({
    endpoint: opts.tokenEndpoint,
    what: 'identity provider token endpoint',
    client: opts.client,
    fetch: opts.fetch,
    now: opts.now,
    params: {
      grant_type: TOKEN_EXCHANGE_GRANT,
      requested_token_type: ID_JAG_TOKEN_TYPE,
      audience: opts.audience,
      ...optionalResource(opts.resource),
      ...optionalScope(opts.scopes),
      subject_token: opts.idToken,
      subject_token_type: ID_TOKEN_TYPE,
    },
  });
  let body: Record<string, unknown>;
  try {
    body = await readTokenEndpointBody({
      res, endpoint: opts.tokenEndpoint, action, secrets: [opts.idToken, opts.client?.clientSecret], now: opts.now, clientMethod: opts.client?.method,
    });
  } catch (err) {
    throw isMcpOAuthError(err, 'oauth_error') ? idpRefusal(err, opts.audience) : err;
  }
  const parsed = IdJagResponseSchema.safeParse(body);
  if (!parsed.success) throw tokenResponseInvalid(res, opts.tokenEndpoint, malformedFields(parsed.error));
  const data = parsed.data;
  if (data.issued_token_type !== ID_JAG_TOKEN_TYPE) {
    throw tokenResponseInvalid(res, opts.tokenEndpoint, `issued_token_type is "${data.issued_token_type}", not ${ID_JAG_TOKEN_TYPE}`);
  }
  // The ID-JAG is a JWT (identity-assertion-authz-grant §3.1): the MCP AS will only take one.
  try {
    decodeJwt(data.access_token);
  } catch {
    throw tokenResponseInvalid(res, opts.tokenEndpoint, 'the issued ID-JAG is not a JWT');
  }
  const scopes = data.scope?.trim() ? data.scope.split(' ').filter(Boolean) : undefined;
  const expiresAt = expiresAtFrom({ expires_in: data.expires_in ?? undefined }, data.access_token, opts.now);
  return { assertion: data.access_token, ...(expiresAt !== undefined ? { expiresAt } : {}), ...(scopes ? { scopes } : {}) };
}

/** The IdP's refusals, in the user's terms (RFC 8693 §2.2.2 errors). */
function idpRefusal(err: McpOAuthError, audience: string): McpOAuthError {
  const hint =
    err.oauthError === 'invalid_grant'
      ? 'the ID token has expired or the identity provider no longer accepts it: sign in to the identity provider again (mcp-oauth login NAME)'
      : err.oauthError === 'invalid_target' || err.oauthError === 'access_denied' || err.oauthError === 'unauthorized_client'
        ? `the identity provider's policy does not let this client reach ${audience}: ask its administrator`
        : err.hint;
  return new McpOAuthError('oauth_error', err.message.replace('The authorization server refused', 'The identity provider refused'), {
    cause: err,
    oauthError: err.oauthError,
    status: err.status,
    hint,
    details: err.details,
  });
}
