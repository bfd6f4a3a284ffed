/**
 * An `OAuthClientProvider` for the MCP TypeScript SDK 1.x (`@modelcontextprotocol/sdk`).
 *
 * The 1.x transport calls `tokens()` before every request, so that is where we refresh
 * proactively (single-flight, across processes). We never hand the SDK the refresh token: its own
 * refresh path runs outside our cross-process lock and would burn a rotating token family when two
 * processes refresh at once. Pass `provider.fetch` as the transport's `fetch` too: it refreshes once
 * on a 401 and retries, so the SDK never needs to start an authorization of its own.
 *
 *   const provider = createOAuthClientProvider(session);
 *   new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: provider.fetch });
 */
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { McpOAuthError, loginCommand } from '../errors.ts';
import type { OAuthSession } from './session.ts';
import type { FetchLike } from '../types.ts';

export interface McpOAuthClientProvider extends OAuthClientProvider {
  /** The authenticated fetch to give the transport alongside the provider. */
  fetch: FetchLike;
}

export function createOAuthClientProvider(session: OAuthSession): McpOAuthClientProvider {
  const { manager } = session;
  const signInNeeded = () =>
    new McpOAuthError('signin_required', `Sign-in required for ${manager.serverName}.`, { hint: loginCommand(manager.serverName) });
  return {
    fetch: session.fetch,
    get redirectUrl() {
      return 'http://127.0.0.1/callback';
    },
    get clientMetadata(): OAuthClientMetadata {
      return { client_name: 'mcp-oauth', redirect_uris: ['http://127.0.0.1/callback'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
    },
    async clientInformation(): Promise<OAuthClientInformationMixed | undefined> {
      const credential = await manager.credential();
      return credential ? { client_id: credential.clientId } : undefined;
    },
    async tokens(): Promise<OAuthTokens | undefined> {
      // None until the server asks: provider.fetch then signs in from the 401's challenge.
      const access_token = await manager.tokenForRequest();
      if (access_token === undefined) return undefined;
      const credential = await manager.credential();
      const expires_in = credential?.expiresAt ? Math.max(0, Math.floor((credential.expiresAt - Date.now()) / 1000)) : undefined;
      return { access_token, token_type: 'Bearer', ...(expires_in !== undefined ? { expires_in } : {}), ...(credential?.scopes.length ? { scope: credential.scopes.join(' ') } : {}) };
    },
    async saveTokens() {
      // Our TokenManager persists every token it obtains; nothing the SDK hands back is newer.
    },
    async redirectToAuthorization() {
      // Reached only when the SDK wants a brand-new authorization, i.e. our own refresh failed.
      throw signInNeeded();
    },
    async saveCodeVerifier() {},
    async codeVerifier(): Promise<string> {
      throw signInNeeded();
    },
  };
}
