/** The stored state of one server, as `list` and `status` show it (no network), and the local gateway's. */
import { fingerprint } from '../secrets.ts';
import { loginCommand } from '../errors.ts';
import type { Credential, ServerConfig } from '../types.ts';
import { relativeTime } from './output.ts';
import { gatewayEndpoint } from '../gateway/address.ts';
import type { GatewayStatus } from '../gateway/state.ts';

export type AuthStatus = 'oauth' | 'bearer_token' | 'not_logged_in' | 'unsupported';

export interface ServerState {
  server: string;
  url: string;
  source: ServerConfig['source'];
  auth_status: AuthStatus;
  needs_sign_in: boolean;
  needs_sign_in_reason?: string;
  issuer?: string;
  resource?: string;
  client_id?: string;
  scopes?: string[];
  expires_at?: string | null;
  expired?: boolean;
  has_refresh_token?: boolean;
  access_token_fingerprint?: string;
  refresh_token_fingerprint?: string;
  refresh_token_missing_reason?: string;
  /** When the refresh token itself expires (Keycloak refresh_expires_in, GitHub refresh_token_expires_in). */
  refresh_token_expires_at?: string;
  /** Set when it expires within a day or within a quarter of its lifetime. */
  refresh_token_expiry_warning?: string;
  /** The identity provider whose quirks the sign-in applied (src/oauth/quirks.ts), and which. */
  provider?: string;
  quirks_applied?: string[];
  obtained_at?: string;
  /** The RFC 8707 resource sent, when the server's metadata names a covering prefix of its URL. */
  resource_indicator?: string;
  /** The authorization server this server moved away from (MCP 2026-07-28 "Authorization Server Binding"). */
  migrated_from?: { issuer: string; at: string };
  /** How the tokens are obtained (authorization_code, client_credentials, jwt_bearer, enterprise). */
  grant?: string;
  /** RFC 9449: the JWK thumbprint of the credential's DPoP key, and whether its tokens are bound to it. */
  dpop_key_thumbprint?: string;
  dpop_bound?: boolean;
}

/** Warn this long before the refresh token expires (or at a quarter of its lifetime, if sooner
 * noticed): after that the only way on is a new sign-in. */
export const REFRESH_TOKEN_WARNING_MS = 24 * 3600_000;

/** A sentence when the refresh token expires soon (or has expired), else undefined. */
export function refreshTokenExpiryWarning(credential: Credential, serverName: string, now: number): string | undefined {
  const at = credential.refreshTokenExpiresAt;
  if (!credential.refreshToken || at === undefined) return undefined;
  const left = at - now;
  if (left <= 0) return `The refresh token expired ${relativeTime(at, now)}: sign in again (${loginCommand(serverName)}).`;
  const lifetime = at - credential.obtainedAt;
  if (left > REFRESH_TOKEN_WARNING_MS && !(lifetime > 0 && left <= lifetime / 4)) return undefined;
  return `The refresh token expires ${relativeTime(at, now)}; after that you must sign in again. Sign in before then to stay signed in (${loginCommand(serverName)}).`;
}

export function describeServer(server: ServerConfig, credential: Credential | undefined, now: number): ServerState {
  const base = { server: server.name, url: server.url, source: server.source };
  if (server.bearerTokenEnvVar) return { ...base, auth_status: 'bearer_token', needs_sign_in: false };
  if (!credential) return { ...base, auth_status: 'not_logged_in', needs_sign_in: true };
  const refreshWarning = refreshTokenExpiryWarning(credential, server.name, now);
  return {
    ...base,
    auth_status: 'oauth',
    // A grant that needs nobody (client credentials, JWT bearer, enterprise) is simply run again.
    needs_sign_in: Boolean(credential.needsSignIn) || (
      (credential.grant === undefined || credential.grant === 'authorization_code')
      && credential.expiresAt !== undefined && credential.expiresAt <= now
      && (!credential.refreshToken || (credential.refreshTokenExpiresAt !== undefined && credential.refreshTokenExpiresAt <= now))
    ),
    ...(credential.needsSignIn ? { needs_sign_in_reason: credential.needsSignIn.reason } : {}),
    issuer: credential.key.issuer,
    resource: credential.key.resource,
    client_id: credential.clientId,
    scopes: credential.scopes,
    expires_at: credential.expiresAt ? new Date(credential.expiresAt).toISOString() : null,
    expired: credential.expiresAt !== undefined && credential.expiresAt <= now,
    has_refresh_token: Boolean(credential.refreshToken),
    access_token_fingerprint: fingerprint(credential.accessToken),
    ...(credential.refreshToken ? { refresh_token_fingerprint: fingerprint(credential.refreshToken) } : {}),
    ...(credential.refreshTokenMissingReason ? { refresh_token_missing_reason: credential.refreshTokenMissingReason } : {}),
    ...(credential.refreshToken && credential.refreshTokenExpiresAt !== undefined ? { refresh_token_expires_at: new Date(credential.refreshTokenExpiresAt).toISOString() } : {}),
    ...(refreshWarning ? { refresh_token_expiry_warning: refreshWarning } : {}),
    ...(credential.provider ? { provider: credential.provider, quirks_applied: credential.quirksApplied ?? [] } : {}),
    obtained_at: new Date(credential.obtainedAt).toISOString(),
    ...(credential.resourceIndicator ? { resource_indicator: credential.resourceIndicator } : {}),
    ...(credential.migratedFrom ? { migrated_from: { issuer: credential.migratedFrom.issuer, at: new Date(credential.migratedFrom.at).toISOString() } } : {}),
    ...(credential.grant ? { grant: credential.grant } : {}),
    ...(credential.dpop ? { dpop_key_thumbprint: credential.dpop.thumbprint, dpop_bound: credential.tokenType.toLowerCase() === 'dpop' } : {}),
  };
}

/** The gateway (`mcp-oauth serve`) as `list` shows it: running or not, where, and what it serves. */
export interface GatewayView {
  running: boolean;
  /** Its base URL and pid while it runs; null otherwise. */
  url: string | null;
  pid: number | null;
  /**
   * The configured servers it serves by name while it runs (it resolves names per request, so a
   * server added after it started is served too); empty when it is not running.
   */
  servers: string[];
  detail: string;
}

export function describeGateway(status: GatewayStatus, configured: string[]): GatewayView {
  const state = status.running ? status.state : undefined;
  return { running: status.running, url: state?.url ?? null, pid: state?.pid ?? null, servers: state ? configured : [], detail: status.detail };
}

/** One server and the gateway, as `status` and `doctor` show it. */
export interface GatewayServerView {
  running: boolean;
  /** True when the running gateway serves this server (a configured name, not a bare URL). */
  served: boolean;
  /** Its endpoint at the running gateway; null when there is none. */
  endpoint: string | null;
  url: string | null;
  pid: number | null;
  detail: string;
}

export function describeGatewayFor(status: GatewayStatus, server: ServerConfig): GatewayServerView {
  const state = status.running ? status.state : undefined;
  const served = Boolean(state) && server.source !== 'url';
  const detail = !state
    ? status.detail
    : served
      ? `serves ${server.name} at ${gatewayEndpoint(state.url, server.name)} (gateway pid ${state.pid})`
      : `running at ${state.url}, but it serves configured servers by name and this is a bare URL: mcp-oauth add NAME ${server.url}`;
  return { running: status.running, served, endpoint: served && state ? gatewayEndpoint(state.url, server.name) : null, url: state?.url ?? null, pid: state?.pid ?? null, detail };
}
