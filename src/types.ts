/**
 * The shared vocabulary of mcp-oauth. Every module speaks these types; the wire formats themselves
 * are zod schemas in src/oauth/schemas.ts.
 */

/** Identifies one credential. Two config entries with the same URL but different settings
 * (different names) never share a credential; the issuer is part of the key because the
 * 2026-07-28 spec revision keys credentials by issuer (a server that moves to another
 * authorization server must not be sent the old one's tokens). */
export interface CredentialKey {
  /** Config entry name, or the canonical URL itself when a bare URL was given. */
  serverName: string;
  /** Canonical resource URI of the MCP server (RFC 8707 §2, MCP auth spec "Canonical Server URI"). */
  resource: string;
  /** Authorization server issuer identifier (RFC 8414 §2). */
  issuer: string;
}

/** How a credential's tokens are obtained (MCP authorization extensions for the non-interactive ones). */
export type Grant = 'authorization_code' | 'client_credentials' | 'jwt_bearer' | 'enterprise';

/** RFC 6749 §2.3.1 secrets, RFC 7523 §2.2 `private_key_jwt` (a signed client assertion), or a public client. */
export type TokenEndpointAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/** How this client is known to an authorization server. Kept per issuer and reused. */
export interface ClientRegistration {
  issuer: string;
  clientId: string;
  /** Only for confidential clients; comes from DCR or from an environment variable (never config). */
  clientSecret?: string;
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  redirectUris: string[];
  source: 'preregistered' | 'client_id_metadata_document' | 'dynamic_registration';
  /** epoch ms */
  registeredAt: number;
  /** RFC 7591 `client_secret_expires_at` (epoch ms), 0/undefined = never. */
  clientSecretExpiresAt?: number;
  /** Dynamic registrations: the `grant_types` registered (RFC 7591 §2), so a sign-in that needs
   * another grant (the device grant, RFC 8628) knows to register again. Undefined = the defaults. */
  grantTypes?: string[];
}

/** What the sign-in left us with; everything needed to refresh and use the token without any
 * network discovery (a fresh process refreshes before its first request). */
export interface Credential {
  key: CredentialKey;
  accessToken?: string;
  refreshToken?: string;
  tokenType: string;
  /** Absolute expiry, epoch ms. From `expires_in` at receipt, else the JWT `exp`, else undefined
   * (unknown: refresh on 401 only). */
  expiresAt?: number;
  /** Granted scopes (from the token response `scope`, else the requested ones). */
  scopes: string[];
  clientId: string;
  tokenEndpoint: string;
  revocationEndpoint?: string;
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** epoch ms of the last token response. */
  obtainedAt: number;
  /** Set when the grant is gone (`invalid_grant`, revoked): the next use needs a new sign-in. The
   * rest of the credential is kept so `status` can show what happened. */
  needsSignIn?: { reason: string; at: number; oauthError?: string };
  /** Why there is no refresh token, when we can tell (e.g. Google without access_type=offline). */
  refreshTokenMissingReason?: string;
  /** The RFC 8707 `resource` value sent on authorize, exchange and refresh, when it is not
   * `key.resource`: the Protected Resource Metadata may name a same-origin path prefix of the
   * server URL (e.g. `https://host` for `https://host/mcp`), and then that value is the resource. */
  resourceIndicator?: string;
  /** The recognised identity provider whose quirks were applied (src/oauth/quirks.ts), e.g. "google". */
  provider?: string;
  /** Ids of the provider quirks applied at sign-in, for `status` and `doctor`. */
  quirksApplied?: string[];
  /** Absolute expiry of the refresh token, epoch ms, when the token response says (Keycloak
   * `refresh_expires_in`, GitHub `refresh_token_expires_in`). */
  refreshTokenExpiresAt?: number;
  /** Set when this credential replaced one from another authorization server (MCP 2026-07-28
   * "Authorization Server Binding": the server's resource metadata named a new issuer). */
  migratedFrom?: { issuer: string; at: number };
  /** How its tokens were obtained; a non-interactive grant is repeated where others refresh. */
  grant?: Grant;
  /**
   * RFC 9449: the DPoP key pair its tokens are bound to, stored with it (keychain or file, like the
   * tokens) so that every process, a refresh in another one included, proves possession with the
   * same key. `thumbprint` is the RFC 7638 JWK thumbprint (what `cnf.jkt` names).
   */
  dpop?: { privateJwk: Record<string, unknown>; thumbprint: string };
  /**
   * The enterprise IdP's credential only (src/signin/enterprise.ts, SEP-990): the user's OIDC ID
   * token, exchanged for ID-JAGs (RFC 8693). A secret like the tokens: never logged, `fingerprint()` only.
   */
  idToken?: string;
}

/** A token endpoint response, parsed and validated (RFC 6749 §5.1). */
export interface TokenSet {
  accessToken: string;
  tokenType: string;
  refreshToken?: string;
  /** epoch ms, computed at receipt */
  expiresAt?: number;
  /** undefined when the response had no `scope` (RFC 6749 §5.1: then it is the requested scope). */
  scopes?: string[];
  idToken?: string;
  /** epoch ms, when the response gives the refresh token's lifetime (`refresh_expires_in`,
   * `refresh_token_expires_in`). */
  refreshTokenExpiresAt?: number;
}

/**
 * Where credentials and client registrations live: the OS keychain, a file, memory, or Redis.
 * Implementations must persist `put` durably before resolving (a rotated refresh token is written
 * before anything else happens).
 */
export interface CredentialStore {
  readonly kind: 'keychain' | 'file' | 'memory' | 'redis';
  get(key: CredentialKey): Promise<Credential | undefined>;
  put(credential: Credential): Promise<void>;
  delete(key: CredentialKey): Promise<void>;
  list(): Promise<Credential[]>;
  getRegistration(issuer: string, redirectUri?: string): Promise<ClientRegistration | undefined>;
  putRegistration(registration: ClientRegistration): Promise<void>;
  deleteRegistration(issuer: string): Promise<void>;
  /**
   * Runs `fn` holding an exclusive lock for this credential, across threads of this process AND
   * across processes (a lock file next to the store). Used so that only one refresh happens at a
   * time per credential: the winner re-reads the store inside the lock.
   */
  withLock<T>(key: CredentialKey, fn: () => Promise<T>): Promise<T>;
}

/** One configured MCP server, after merging config file, Codex config and CLI flags. */
export interface ServerConfig {
  name: string;
  url: string;
  /** Where the entry came from, for messages. */
  source: 'config' | 'codex' | 'url';
  configFile?: string;
  bearerTokenEnvVar?: string;
  httpHeaders: Record<string, string>;
  /** header name -> env var name */
  envHttpHeaders: Record<string, string>;
  /** Overrides scope selection when set. */
  scopes?: string[];
  /** Overrides the RFC 8707 resource parameter when set. */
  oauthResource?: string;
  oauth: {
    clientId?: string;
    /** Name of the env var holding the client secret (never inline). */
    clientSecretEnvVar?: string;
    clientMetadataUrl?: string;
    callbackPort?: number;
    /** Added to the authorize request for any provider; win over provider quirk defaults. */
    authorizeParams: Record<string, string>;
    /** Force a provider's quirks, e.g. "google"; "none" disables automatic quirks. */
    provider?: string;
    /** Proceed although the AS metadata does not advertise PKCE S256 (config `assume_pkce`). */
    assumePkce?: boolean;
    /** Transport override for issue 3: 'streamable-http' | 'sse'. */
    transport?: string;
    /** How tokens are obtained; absent: chosen from what the config provides and the metadata offers. */
    grant?: Grant;
    /** Token endpoint client authentication; absent: from the configured material and the metadata. */
    clientAuth?: 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
    /** private_key_jwt: a PEM or JWK file, or an env var holding one (never inline). */
    privateKeyFile?: string;
    privateKeyEnvVar?: string;
    /** jwt_bearer: where the assertion is read, fresh on every token request. */
    assertionFile?: string;
    assertionEnvVar?: string;
    assertionCommand?: string[];
    /** RFC 9449: 'auto' (when the AS advertises it), 'required', 'off'. */
    dpop?: 'auto' | 'required' | 'off';
    /** SEP-990 enterprise-managed authorization: the IdP that signs the user in once. */
    enterprise?: { issuer: string; clientId: string; clientSecretEnvVar?: string; scopes?: string[] };
  };
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** Logging is injected; nothing logs through globals. Messages must never contain secrets. */
export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/** `fetch` is always injected into protocol code (tests and the sandbox's fault server use it). */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** Time is injected so expiry logic is testable without sleeping. */
export type Clock = () => number;
