// Public types of the sandbox (re-exported by ./index.ts).
import type { SandboxProvider } from './provider-modes.ts';
import type { Era, SandboxProtocol } from './eras.ts';
import type { GrantClients, SandboxGrant } from './grant-clients.ts';
import type { SandboxDpop } from './dpop-check.ts';
import type { WorkloadIssuer } from './workload.ts';
import type { EnterpriseIdp } from './enterprise-idp.ts';

/** How clients discover the authorization server: see discovery-modes.ts. */
export type DiscoveryMode =
  | 'standard'
  | 'resource-prefix'
  | 'root-only'
  | 'per-tool'
  | 'trailing-slash-issuer'
  | 'no-prm-origin-as'
  | 'no-metadata'
  | 'no-oauth'
  | 'always-insufficient-scope';

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
  /** What kind of server to be, discovery-wise (src/sandbox/discovery-modes.ts). Default 'standard'. */
  discovery?: DiscoveryMode;
  /** Start a second authorization server (another issuer, own keys) for switchAuthorizationServer(). */
  secondIssuer?: boolean;
  /** Behave like an identity provider (src/sandbox/provider-modes.ts); 'google' is googleMode. */
  provider?: SandboxProvider;
  /** The pre-registered client's secret, for providers without dynamic registration (default: random). */
  clientSecret?: string;
  /** Offer the device grant (RFC 8628: `device_authorization_endpoint`, pages at /device). Default true. */
  deviceFlow?: boolean;
  /** The `interval` in device authorization responses (default: none is sent, so clients poll every 5 s). */
  deviceIntervalSeconds?: number;
  /** Which MCP protocol era(s) the MCP server speaks (src/sandbox/eras.ts). Default 'dual'. */
  protocol?: SandboxProtocol;
  /** The tools with invalid x-mcp-header annotations (bad_*) are listed in the 2026-07-28 era; this
   * lists them to 2025-11-25 sessions too. Default false. */
  invalidHeaderToolsInLegacyEra?: boolean;
  /** Sign-in without a person (grant-modes.ts): pre-registered clients for client credentials
   * (basic, post, private_key_jwt), the jwt-bearer grant with a workload issuer, or an enterprise
   * IdP whose ID-JAGs the jwt-bearer grant accepts. Several may be combined. Default: none. */
  grant?: SandboxGrant | SandboxGrant[];
  /** DPoP (RFC 9449). Default (unset): the authorization server offers it (oidc-provider's default)
   * and the MCP server checks proofs of DPoP-scheme requests, accepts bearer tokens and advertises
   * nothing. 'off': neither server supports it. 'optional': both advertise it (metadata, challenges).
   * 'required': clients must bind their tokens (dpop_bound_access_tokens) and the MCP server
   * refuses bearer tokens. A DPoP-bound token sent as Bearer is refused in every mode. */
  dpop?: SandboxDpop;
  /** Both servers demand DPoP nonces (RFC 9449 §8, §9); `sandbox.rotateDpopNonces()` rotates them. */
  dpopNonce?: boolean;
  /** DPoP proof algorithms at both servers (default oidc-provider's: ES256, Ed25519, EdDSA). */
  dpopSigningAlgs?: string[];
  /** token_endpoint_auth_signing_alg_values_supported; the private_key_jwt client's key uses the first asymmetric one. */
  tokenEndpointAuthSigningAlgs?: string[];
  /** enterprise: use this IdP (another sandbox's `idp`) instead of starting one: one sign-in, several MCP servers. */
  enterpriseIdp?: EnterpriseIdp;
  /** enterprise: ID token lifetime at the IdP (default 3600). */
  idTokenTtlSeconds?: number;
  /** enterprise: ID-JAG lifetime (default 300). */
  idJagTtlSeconds?: number;
  /** The `token_endpoint` the authorization server's metadata advertises instead of its own: a
   * fault layer in front of it that forwards to `${issuer}/token` (the soak, soak/fault-server.ts). */
  tokenEndpointUrl?: string;
}

/** Outcomes of token requests of one grant type at one server. */
export interface GrantOutcome {
  issued: number;
  /** By reason: the sandbox's own ('expired', 'wrong_audience', 'replayed', 'denied', …) or the OAuth error code. */
  refused: Record<string, number>;
}

export interface DpopCounters {
  /** At the authorization server: requests with a proof, `use_dpop_nonce` answers, DPoP-bound
   * tokens issued, refusals by reason (htm, htu, ath, iat, replay, jkt_mismatch, missing_proof, …). */
  as: { proofs: number; nonceChallenges: number; boundTokens: number; refusals: Record<string, number> };
  /** At the MCP server: proofs checked, `use_dpop_nonce` challenges, requests accepted with a proof,
   * refusals by reason (also bound_token_as_bearer, bearer_refused, token_not_bound, jkt_mismatch, …). */
  rs: { proofs: number; nonceChallenges: number; accepted: number; refusals: Record<string, number> };
}

export interface TokenRequestLogEntry {
  grantType: string;
  resource?: string[];
  at: number;
  /** Token requests in flight at that moment, including this one. */
  concurrent: number;
  /** The request's Accept header (GitHub answers form-encoded without application/json). */
  accept?: string;
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
  /** Every request to the MCP endpoint, in arrival order. */
  mcpLog: McpLogEntry[];
  /** Every GET of a /.well-known/ URL on any origin of the sandbox (metadata fetches), in order. */
  metadataRequests: Array<{ url: string; status: number }>;
  /** Per authorization server issuer: what it received and issued (tokens as fingerprints). */
  issuers: Record<string, IssuerCounters>;
  /** Device grant (RFC 8628): device authorizations issued, and device-code token requests by
   * outcome (`authorization_pending`, `slow_down`, `access_denied`, `expired_token`, `tokens`, …). */
  deviceFlow: { authorizations: number; polls: Record<string, number> };
  /** Tool handler runs by tool name, both eras (a tool absent here was never called). */
  toolCalls: Record<string, number>;
  /** Token request outcomes per grant type (this authorization server; the IdP has its own). */
  grants: Record<string, GrantOutcome>;
  dpop: DpopCounters;
}

export interface McpLogEntry {
  /** HTTP method. */
  method: string;
  /** JSON-RPC methods in the body (POST). */
  rpcMethods: string[];
  /** Whether an Authorization header was sent. */
  authorization: boolean;
  /** Its scheme, when it was Bearer or DPoP. */
  scheme?: 'Bearer' | 'DPoP';
  /** `iss` of the bearer token (decoded, not verified), when it is a JWT. */
  tokenIssuer?: string;
  /** fingerprint() of the bearer token. */
  tokenFingerprint?: string;
  /** The HTTP status of the answer (0 until the head is written). */
  status: number;
  /** SEP-2243 headers as received, by lower-case name: `mcp-protocol-version`, `mcp-method`,
   * `mcp-name` and every `mcp-param-*` (values as the server read them; absent = not sent). */
  mcpHeaders: Record<string, string>;
  /** The era that served it: 'modern' (2026-07-28, SDK v2) or 'legacy' (2025-11-25 sessions, SDK
   * 1.x); absent when answered before that (401/403, parse error). */
  era?: Era;
  /** The tool whose handler ran for this request, if one did (a rejected call has none). */
  reachedTool?: string;
}

export interface IssuerCounters {
  /** Query parameters of each authorization request. */
  authorizeRequests: Array<Record<string, string>>;
  /** Each token (and revocation) request: grant type ("revocation" for RFC 7009), client, fingerprint of the code, refresh token or revoked token presented, status. */
  tokenRequests: Array<{ grantType: string; clientId?: string; presented?: string; status: number }>;
  /** Fingerprints of every access and refresh token this issuer issued. */
  issued: string[];
  /** Client ids registered here (RFC 7591). */
  registrations: string[];
}

export interface TokenEndpointFault {
  status: number;
  body?: unknown;
  times: number;
}

export interface Sandbox {
  issuer: string;
  mcpUrl: string;
  discovery: DiscoveryMode;
  /** The RFC 8707 resource (canonical) the tokens must be for: the MCP URL, or the origin in resource-prefix mode. */
  resource: string;
  /** secondIssuer: the other authorization server's issuer. */
  secondIssuer?: string;
  /** The issuer the MCP server trusts now (and lists in its metadata). */
  activeIssuer(): string;
  /**
   * secondIssuer: the metadata's `authorization_servers` now names the other authorization server,
   * and the MCP server accepts only its tokens. Returns the new active issuer.
   */
  switchAuthorizationServer(): string;
  googleClient?: { clientId: string; clientSecret: string };
  /** The identity provider this sandbox behaves like, if any. */
  provider?: SandboxProvider;
  /** The pre-registered client of a provider without dynamic registration (Google, Entra, GitHub). */
  preregisteredClient?: { clientId: string; clientSecret?: string };
  counters: SandboxCounters;
  resetCounters(): void;
  revokeAllGrants(): Promise<void>;
  setTokenEndpointFault(fault: TokenEndpointFault | undefined): void;
  /** The protocol era(s) the MCP server speaks. */
  protocol: SandboxProtocol;
  /** notifications/tools/list_changed to every listener: open 2026-07-28 `subscriptions/listen`
   * streams and the GET streams of 2025-11-25 sessions (the `notify` tool does the same). */
  notifyToolsChanged(): void;
  /** Forget every MCP session: the next request with an old Mcp-Session-Id gets 404. */
  dropSessions(): Promise<void>;
  /** The grant modes on (grant-modes.ts). */
  grants: SandboxGrant[];
  /** Their pre-registered clients (secrets and the private key: for tests; the CLI prints none). */
  grantClients: GrantClients;
  /** jwt_bearer: the trusted workload issuer; `mint()` makes assertions. */
  workload?: WorkloadIssuer;
  /** enterprise: the enterprise IdP (its own issuer, port, clients and counters). */
  idp?: EnterpriseIdp;
  /** The `dpop` option. */
  dpop?: SandboxDpop;
  /** New DPoP nonces at both servers: the old ones are refused from now on (use_dpop_nonce).
   * keepPrevious: only the MCP server's, which still accepts its old nonce and announces the new
   * one in DPoP-Nonce on its next answer (the AS does the same by itself every minute). */
  rotateDpopNonces(opts?: { keepPrevious?: boolean }): void;
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
    mcpLog: [],
    metadataRequests: [],
    issuers: {},
    deviceFlow: { authorizations: 0, polls: {} },
    toolCalls: {},
    grants: {},
    dpop: {
      as: { proofs: 0, nonceChallenges: 0, boundTokens: 0, refusals: {} },
      rs: { proofs: 0, nonceChallenges: 0, accepted: 0, refusals: {} },
    },
  };
}

/** Shared mutable state between the authorization server and the MCP server. */
export interface SandboxState {
  counters: SandboxCounters;
  fault: TokenEndpointFault | undefined;
  /** Grants revoked by reuse detection or revokeAllGrants(); the MCP server rejects their access tokens. */
  revokedGrantIds: Set<string>;
}
