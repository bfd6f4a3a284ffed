/**
 * mcp-oauth as a library: keep MCP clients signed in to OAuth-protected remote MCP servers.
 *
 * - `createOAuthSession` — the token lifecycle for one server (proactive, single-flight refresh;
 *   refresh-once-and-retry on 401; step-up on 403), with an authenticated `fetch`.
 * - `createAuthProvider` — for the SDK v2 Streamable HTTP client transport.
 * - `createOAuthClientProvider` — for the SDK 1.x transport.
 * - Credential stores: keychain, file, memory (`openCredentialStore` picks one).
 */
export { createOAuthSession, serverFromUrl, type OAuthSession, type OAuthSessionOptions } from './client/session.ts';
export { createAuthProvider } from './client/sdk-v2.ts';
export { createOAuthClientProvider, type McpOAuthClientProvider } from './client/sdk-v1.ts';
export { TokenManager, type TokenManagerOptions, type LifecycleEvent, type SignInRequest } from './lifecycle/token-manager.ts';
export { createAuthenticatedFetch } from './lifecycle/auth-fetch.ts';
export { signIn, type SignInOptions, type BrowserMode } from './signin/flow.ts';
export { MemoryCredentialStore } from './store/memory-store.ts';
export { FileCredentialStore } from './store/file-store.ts';
export { KeychainCredentialStore } from './store/keychain-store.ts';
export { openCredentialStore } from './store/open-store.ts';
export { resolveServer, loadConfig } from './config/config.ts';
export { mcpOAuthHome } from './config/paths.ts';
export { McpOAuthError, EXIT_CODES, type ErrorCode } from './errors.ts';
export { fingerprint } from './secrets.ts';
export type { Credential, CredentialKey, CredentialStore, ClientRegistration, ServerConfig, TokenSet, Logger, FetchLike } from './types.ts';
