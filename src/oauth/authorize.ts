/**
 * The front-channel half of the authorization code flow: PKCE, state, the authorization request
 * URL and the validation of what comes back on the redirect URI.
 *
 * RFC 6749 §4.1 (authorization code grant), RFC 7636 (PKCE), RFC 8707 (resource indicators),
 * RFC 9207 (authorization server issuer identification), MCP authorization spec 2025-11-25.
 */
import { createHash, randomBytes } from 'node:crypto';
import { McpOAuthError } from '../errors.ts';
import { assertSecureEndpoint } from './canonical.ts';
import type { AuthorizationServerMetadata } from './discovery.ts';

export interface Pkce {
  verifier: string;
  challenge: string;
  method: 'S256';
}

/** RFC 7636 §4.2: code_challenge = BASE64URL(SHA256(ASCII(code_verifier))). */
export function pkceChallengeS256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/**
 * RFC 7636 §4.1: the verifier is 43..128 unreserved characters with enough entropy; 32 random
 * octets base64url-encoded give exactly 43 characters (§7.1 recommends 256 bits).
 * S256 only: MCP spec "Authorization Code Protection" requires S256 when the client can do it.
 */
export function createPkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: pkceChallengeS256(verifier), method: 'S256' };
}

/** RFC 6749 §10.12: an unguessable value bound to this sign-in attempt (CSRF protection). */
export function createState(): string {
  return randomBytes(32).toString('base64url');
}

/** Parameters this module owns; `extraParams` (provider quirks, config) may not override them,
 * or a config typo could silently disable PKCE, state or the audience restriction. */
const PROTOCOL_PARAMS = new Set([
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
  'resource',
]);

export function buildAuthorizationUrl(opts: {
  metadata: AuthorizationServerMetadata;
  clientId: string;
  redirectUri: string;
  scopes: string[];
  /** Undefined only for a provider that refuses RFC 8707 `resource` (Entra v2, see quirks.ts). */
  resource: string | undefined;
  state: string;
  codeChallenge: string;
  extraParams?: Record<string, string>;
}): string {
  // RFC 6749 §3.1: the endpoint URI MAY carry a query component, which MUST be retained; TLS is
  // required (§3.1 / OAuth 2.1 §1.5), http only on loopback for local test servers.
  const url = assertSecureEndpoint(opts.metadata.authorization_endpoint, 'authorization endpoint');
  const params = url.searchParams;
  for (const [name, value] of Object.entries(opts.extraParams ?? {})) {
    if (PROTOCOL_PARAMS.has(name)) {
      throw new McpOAuthError(
        'config_invalid',
        `The extra authorization parameter "${name}" would override a protocol parameter that mcp-oauth sets itself.`,
        { hint: `remove "${name}" from authorize_params in [mcp_servers.NAME.oauth]` },
      );
    }
    params.set(name, value);
  }
  // `set` (not `append`): RFC 6749 §3.1 forbids repeating a parameter, even if the endpoint URI
  // already had one in its query.
  params.set('response_type', 'code');
  params.set('client_id', opts.clientId);
  params.set('redirect_uri', opts.redirectUri);
  // RFC 6749 §3.3: scope is optional; an empty `scope=` is not "no scope" for every server.
  if (opts.scopes.length > 0) params.set('scope', opts.scopes.join(' '));
  else params.delete('scope');
  params.set('state', opts.state);
  // RFC 7636 §4.3 + MCP spec: S256 only (discovery already refused servers without it).
  params.set('code_challenge', opts.codeChallenge);
  params.set('code_challenge_method', 'S256');
  // RFC 8707 §2 + MCP spec "Resource Parameter Implementation": MUST be sent, so the token is
  // audience-restricted to this MCP server.
  if (opts.resource !== undefined) params.set('resource', opts.resource);
  else params.delete('resource');
  return url.toString();
}

/** RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once." */
function single(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name);
  if (values.length > 1) {
    throw new McpOAuthError(
      name === 'iss' ? 'iss_mismatch' : name === 'state' ? 'state_mismatch' : 'oauth_error',
      `The authorization response contained the parameter "${name}" more than once; refusing it.`,
      { hint: 'sign in again; if it keeps happening, the authorization server is misbehaving' },
    );
  }
  return values[0];
}

export function validateAuthorizationResponse(opts: {
  params: URLSearchParams;
  expectedState: string;
  metadata: AuthorizationServerMetadata;
}): { code: string } {
  const { params, metadata } = opts;
  const retry = 'sign in again; if it keeps happening, report it to the server operator';

  // RFC 9207 §2.4: compare `iss` before doing anything else with the response (error responses
  // included): it detects mix-up attacks where a different AS's response lands on our redirect URI.
  const iss = single(params, 'iss');
  if (iss !== undefined) {
    if (iss !== metadata.issuer) {
      throw new McpOAuthError(
        'iss_mismatch',
        `The authorization response came from issuer "${iss}", but the request was sent to "${metadata.issuer}" (RFC 9207); refusing it.`,
        { hint: retry, details: { expectedIssuer: metadata.issuer, receivedIssuer: iss } },
      );
    }
  } else if (metadata.authorization_response_iss_parameter_supported === true) {
    // RFC 9207 §2.4: a server that advertises `iss` support MUST send it; a response without it
    // may have been forged by someone else.
    throw new McpOAuthError(
      'iss_missing',
      `The authorization server "${metadata.issuer}" advertises authorization_response_iss_parameter_supported, but its response has no "iss" parameter (RFC 9207); refusing it.`,
      { hint: retry },
    );
  }

  // RFC 6749 §4.1.2 / §10.12: state must be exactly the value we sent (CSRF). Values are never
  // shown: they are bearer-like for the duration of the sign-in.
  const state = single(params, 'state');
  if (state !== opts.expectedState) {
    throw new McpOAuthError(
      'state_mismatch',
      state === undefined
        ? 'The authorization response has no "state" parameter; it does not belong to this sign-in.'
        : 'The authorization response "state" does not match this sign-in; it may be stale or forged.',
      { hint: 'start the sign-in again and finish it in the browser window it opens' },
    );
  }

  // RFC 6749 §4.1.2.1: error response.
  const error = single(params, 'error');
  if (error !== undefined) {
    const description = single(params, 'error_description');
    const suffix = description ? ` (${description})` : '';
    if (error === 'access_denied') {
      throw new McpOAuthError('signin_denied', `The sign-in was denied: access_denied${suffix}.`, {
        oauthError: error,
        hint: 'sign in again and approve the access request',
      });
    }
    throw new McpOAuthError('oauth_error', `The authorization server refused the sign-in: ${error}${suffix}.`, {
      oauthError: error,
      hint: retry,
    });
  }

  const code = single(params, 'code');
  if (!code) {
    throw new McpOAuthError('oauth_error', 'The authorization response has neither a "code" nor an "error" parameter.', {
      hint: retry,
    });
  }
  return { code };
}
