/**
 * Errors are values: a machine-readable `code`, a message for humans, and the next command to run.
 * The CLI maps `code` to a stable exit code (see EXIT_CODES) that scripts can rely on.
 */

export type ErrorCode =
  // usage and configuration
  | 'usage'
  | 'config_invalid'
  | 'server_unknown'
  // an assertion the user's environment provides (file, env, command) is expired, malformed or refused
  | 'assertion_invalid'
  // sign-in state
  | 'signin_required'
  | 'signin_timeout'
  | 'signin_denied'
  | 'insufficient_scope'
  // protocol violations by the remote side (we refuse to continue)
  | 'metadata_invalid'
  | 'resource_mismatch'
  | 'issuer_mismatch'
  | 'pkce_unsupported'
  | 'state_mismatch'
  | 'iss_mismatch'
  | 'iss_missing'
  | 'insecure_url'
  | 'token_response_invalid'
  | 'registration_failed'
  | 'oauth_error'
  | 'dpop_error'
  // transient
  | 'network_error'
  | 'server_unavailable'
  // local edges
  | 'store_error'
  | 'keychain_unavailable'
  | 'browser_failed'
  | 'mcp_error'
  | 'internal';

/** Stable process exit codes per error family. Documented in the README. */
export const EXIT_CODES: Record<ErrorCode, number> = {
  usage: 2,
  config_invalid: 3,
  server_unknown: 3,
  assertion_invalid: 3,
  signin_required: 4,
  signin_timeout: 4,
  signin_denied: 4,
  insufficient_scope: 4,
  metadata_invalid: 5,
  resource_mismatch: 5,
  issuer_mismatch: 5,
  pkce_unsupported: 5,
  state_mismatch: 5,
  iss_mismatch: 5,
  iss_missing: 5,
  insecure_url: 5,
  token_response_invalid: 5,
  registration_failed: 5,
  oauth_error: 5,
  dpop_error: 5,
  network_error: 6,
  server_unavailable: 6,
  store_error: 7,
  keychain_unavailable: 7,
  browser_failed: 1,
  mcp_error: 1,
  internal: 1,
};

export interface McpOAuthErrorOptions {
  /** The next command or action for the user, e.g. "mcp-oauth login notion". */
  hint?: string;
  /** The OAuth `error` code from the server (RFC 6749 §5.2), when there was one. */
  oauthError?: string;
  /** HTTP status involved, when there was one. */
  status?: number;
  cause?: unknown;
  /** Extra machine-readable, non-secret context (shown by --json). */
  details?: Record<string, unknown>;
}

export class McpOAuthError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly oauthError?: string;
  readonly status?: number;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: McpOAuthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'McpOAuthError';
    this.code = code;
    this.hint = options.hint;
    this.oauthError = options.oauthError;
    this.status = options.status;
    this.details = options.details;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }

  /** Transient failures keep the stored credential and may be retried with backoff. */
  get transient(): boolean {
    return this.code === 'network_error' || this.code === 'server_unavailable';
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.oauthError ? { oauth_error: this.oauthError } : {}),
      ...(this.status ? { status: this.status } : {}),
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export function isMcpOAuthError(e: unknown, code?: ErrorCode): e is McpOAuthError {
  return e instanceof McpOAuthError && (code === undefined || e.code === code);
}

/** The command a user runs to sign in again; used in every "sign-in required" message. */
export function loginCommand(serverName: string): string {
  return `mcp-oauth login ${/^[\w.-]+$/.test(serverName) ? serverName : JSON.stringify(serverName)}`;
}
