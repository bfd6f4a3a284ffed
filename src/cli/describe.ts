/** The stored state of one server, as `list` and `status` show it (no network). */
import { fingerprint } from '../secrets.ts';
import type { Credential, ServerConfig } from '../types.ts';

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
  obtained_at?: string;
}

export function describeServer(server: ServerConfig, credential: Credential | undefined, now: number): ServerState {
  const base = { server: server.name, url: server.url, source: server.source };
  if (server.bearerTokenEnvVar) return { ...base, auth_status: 'bearer_token', needs_sign_in: false };
  if (!credential) return { ...base, auth_status: 'not_logged_in', needs_sign_in: true };
  return {
    ...base,
    auth_status: 'oauth',
    needs_sign_in: Boolean(credential.needsSignIn) || (!credential.refreshToken && credential.expiresAt !== undefined && credential.expiresAt <= now),
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
    obtained_at: new Date(credential.obtainedAt).toISOString(),
  };
}
