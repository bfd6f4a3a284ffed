/**
 * The vocabulary of the token lifecycle (src/lifecycle/token-manager.ts): what a sign-in is asked
 * for, the events a caller can watch, and the manager's options.
 */
import type { McpOAuthError } from '../errors.ts';
import type { BearerChallenge } from '../oauth/www-authenticate.ts';
import type { Clock, Credential, CredentialStore, FetchLike, Logger, ServerConfig } from '../types.ts';

export type SignInReason = 'no_credential' | 'grant_gone' | 'insufficient_scope' | 'issuer_changed';
export interface SignInRequest {
  reason: SignInReason;
  scopes?: string[];
  challenge?: BearerChallenge;
  previous?: Credential;
}
export type LifecycleEvent =
  | { type: 'refresh_started'; server: string }
  | { type: 'refreshed'; server: string; expiresAt?: number; rotated: boolean; byOtherProcess: boolean }
  | { type: 'refresh_failed'; server: string; error: McpOAuthError; willRetry: boolean }
  | { type: 'signin_required'; server: string; reason: string }
  | { type: 'signed_in'; server: string }
  | { type: 'reloaded'; server: string };

export interface TokenManagerOptions {
  server: ServerConfig;
  store: CredentialStore;
  fetch: FetchLike;
  /** For the client secret env var (`server.oauth.clientSecretEnvVar`). */
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  logger?: Logger;
  /** Refresh this long before expiry (default 60 s): a token must not expire in flight. */
  refreshMarginMs?: number;
  /** Interactive sign-in; must persist the credential itself. Absent → throw signin_required. */
  signIn?: (request: SignInRequest) => Promise<Credential>;
  /**
   * The authorization servers the MCP server names now (its resource metadata), for the
   * migration check after a 401 (MCP 2026-07-28 "Authorization Server Binding"). Undefined when
   * it cannot be told (no metadata, a network error): then nothing is concluded.
   */
  authorizationServers?: (challenge?: BearerChallenge) => Promise<string[] | undefined>;
  /**
   * Runs a non-interactive grant again (client credentials, JWT bearer, enterprise): how a
   * credential without a refresh token but with such a grant is renewed. Returns the new
   * credential without storing it (the manager stores it inside its lock).
   */
  regrant?: (current: Credential) => Promise<Credential>;
  /** `attempts` = retries after the first failed try (default 3). */
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number; sleep?: (ms: number) => Promise<void> };
  onEvent?: (e: LifecycleEvent) => void;
}

export const DEFAULT_REFRESH_MARGIN_MS = 60_000;
