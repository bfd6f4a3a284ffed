// Public types of the sandbox (re-exported by ./index.ts).

export interface SandboxOptions {
  /** Access token lifetime. Default 3600. */
  accessTokenTtlSeconds?: number;
  /** Refresh token (and grant) lifetime. Default 14 days. */
  refreshTokenTtlSeconds?: number;
  /** Every refresh returns a new refresh token; reusing a consumed one revokes the grant. Default true (false in googleMode). */
  rotateRefreshTokens?: boolean;
  /** Behave like Google: no DCR (a pre-registered client), refresh token only with access_type=offline AND prompt=consent. */
  googleMode?: boolean;
  /** googleMode: the pre-registered client's secret (default: random). Lets a CLI user, who never
   * sees a secret printed, choose it: `mcp-oauth sandbox --google --google-client-secret-env VAR`. */
  googleClientSecret?: string;
  /** Default true: login + consent complete without UI. false: real HTML login (demo/demo) and consent pages. */
  autoApprove?: boolean;
  /** Default ['mcp:tools', 'mcp:admin', 'offline_access'] (openid is always added). */
  scopesSupported?: string[];
  /** Scope the MCP server requires. Default 'mcp:tools'. */
  requiredScope?: string;
  port?: number;
  mcpPort?: number;
  /** Advertise authorization_response_iss_parameter_supported (RFC 9207). Always true with oidc-provider. */
  issRequired?: boolean;
}

export interface TokenRequestLogEntry {
  grantType: string;
  resource?: string[];
  at: number;
  /** Token requests in flight at that moment, including this one. */
  concurrent: number;
}

export interface SandboxCounters {
  tokenRequests: Record<string, number>;
  refreshReuseDetected: number;
  mcpRequests: number;
  mcp401: number;
  mcp403: number;
  registrations: number;
  revocations: number;
  authorizeRequests: Array<Record<string, string>>;
  tokenRequestLog: TokenRequestLogEntry[];
}

export interface TokenEndpointFault {
  status: number;
  body?: unknown;
  times: number;
}

export interface Sandbox {
  issuer: string;
  mcpUrl: string;
  googleClient?: { clientId: string; clientSecret: string };
  counters: SandboxCounters;
  resetCounters(): void;
  revokeAllGrants(): Promise<void>;
  setTokenEndpointFault(fault: TokenEndpointFault | undefined): void;
  /** Forget every MCP session: the next request with an old Mcp-Session-Id gets 404. */
  dropSessions(): Promise<void>;
  close(): Promise<void>;
}

export function emptyCounters(): SandboxCounters {
  return {
    tokenRequests: {},
    refreshReuseDetected: 0,
    mcpRequests: 0,
    mcp401: 0,
    mcp403: 0,
    registrations: 0,
    revocations: 0,
    authorizeRequests: [],
    tokenRequestLog: [],
  };
}

/** Shared mutable state between the authorization server and the MCP server. */
export interface SandboxState {
  counters: SandboxCounters;
  fault: TokenEndpointFault | undefined;
  /** Grants revoked by reuse detection or revokeAllGrants(); the MCP server rejects their access tokens. */
  revokedGrantIds: Set<string>;
}
