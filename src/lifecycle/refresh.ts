/**
 * The pure parts of a refresh: when one is due, how the client authenticates, and what a failed
 * one means for the user (RFC 6749 §5.2 errors, the providers' own words for a dead refresh token).
 */
import { McpOAuthError, isMcpOAuthError, loginCommand } from '../errors.ts';
import type { ClientAuth } from '../oauth/tokens.ts';
import type { BearerChallenge } from '../oauth/www-authenticate.ts';
import type { Credential, CredentialStore, ServerConfig } from '../types.ts';

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
export function stillValid(credential: Credential | undefined, now: number): credential is Credential & { accessToken: string } {
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

/** "Sign in again", naming the server and the command; the challenge (no secret in it) rides along
 * so whoever runs the sign-in can start from it. */
export function signInRequiredError(serverName: string, why: string, opts: { cause?: unknown; oauthError?: string; challenge?: BearerChallenge } = {}): McpOAuthError {
  return new McpOAuthError('signin_required', `Sign-in required for ${serverName}: ${why.replace(/\.$/, '')}.`, {
    hint: loginCommand(serverName),
    cause: opts.cause,
    oauthError: opts.oauthError,
    details: { server: serverName, ...(opts.challenge ? { challenge: opts.challenge } : {}) },
  });
}

/** Protocol refusals end in signin_required (the user's next step); local problems pass through. */
export function classifyRefreshError(err: unknown, serverName: string): McpOAuthError {
  if (!(err instanceof McpOAuthError)) {
    return new McpOAuthError('internal', `Refreshing the token for ${serverName} failed unexpectedly.`, { cause: err });
  }
  if (err.transient || err.code === 'signin_required') return err;
  // A 200 that is not a token response (a captive portal's login page, a proxy's error page) is
  // not the grant's fault: a new sign-in would fail the same way. Keep the credential and say so.
  if (err.code === 'token_response_invalid') {
    return new McpOAuthError('token_response_invalid', `Refreshing the token for ${serverName} failed: ${err.message.replace(/\.$/, '')}. Your sign-in is kept.`, {
      cause: err,
      hint: 'if a captive portal or proxy is in the way, get through it, then retry; `mcp-oauth doctor ' + serverName + '` shows each step',
    });
  }
  if (err.code === 'oauth_error' || err.code === 'insecure_url') {
    // The server's own words say what is wrong (tokens.ts messages never hold a secret).
    const detail = err.message.replace(/\.$/, '');
    return signInRequiredError(serverName, `the token refresh failed (${err.oauthError ?? err.code}): ${detail}`, { cause: err, oauthError: err.oauthError });
  }
  return err;
}

/** What a refused refresh means: the grant is gone (mark the credential), and whether the
 * registration is gone too. Undefined when the error is not a refusal of that kind. */
export async function refreshRefusal(err: unknown): Promise<{ reason: string; oauthError: string; forgetRegistration: boolean } | undefined> {
  if (!isMcpOAuthError(err, 'oauth_error') || !err.oauthError) return undefined;
  // A dead refresh token: RFC 6749 §5.2 invalid_grant (expired, revoked or reused; Keycloak's
  // reuse limit says so too) and the providers' own words for it (Atlassian unauthorized_client,
  // GitHub bad_refresh_token: src/oauth/quirks.ts). The grant is gone: keep the credential (for
  // `status`), mark it, ask for a sign-in (exit 4), never "protocol violation". Loaded lazily:
  // a process whose refreshes succeed never needs the provider table.
  const { isDeadRefreshTokenError } = await import('../oauth/quirks.ts');
  if (isDeadRefreshTokenError(err.oauthError)) {
    const said = typeof err.details?.errorDescription === 'string' ? `: ${err.details.errorDescription}` : '';
    return { reason: `the authorization server no longer accepts the refresh token (${err.oauthError}${said})`, oauthError: err.oauthError, forgetRegistration: false };
  }
  // RFC 6749 §5.2 invalid_client: the registration is gone (e.g. a DCR client was purged).
  // Forget it so the next sign-in registers again.
  if (err.oauthError === 'invalid_client') {
    return { reason: 'the authorization server no longer knows this client (invalid_client)', oauthError: 'invalid_client', forgetRegistration: true };
  }
  return undefined;
}

/**
 * A refresh that failed for an outage: the sign-in is kept, and the message says whose outage it
 * is. The credential store (Redis) being down is not the authorization server being down.
 */
export function refreshUnavailableError(serverName: string, error: McpOAuthError): McpOAuthError {
  if (error.details?.store) {
    return new McpOAuthError(error.code, `Could not refresh the access token for ${serverName}: ${error.message}. Your sign-in is kept; retry later.`, {
      hint: error.hint,
      details: error.details,
      cause: error,
    });
  }
  const unreachable = error.code === 'network_error';
  return new McpOAuthError(
    error.code,
    `Could not refresh the access token for ${serverName}: the authorization server is ${unreachable ? 'unreachable' : 'unavailable'}. Your sign-in is kept; retry later.`,
    { hint: 'retry later; check the network connection and the authorization server status', status: error.status, oauthError: error.oauthError, details: error.details, cause: error },
  );
}
