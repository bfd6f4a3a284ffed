/**
 * An `AuthProvider` for the MCP TypeScript SDK v2 (`@modelcontextprotocol/client`) Streamable HTTP
 * transport: `token()` refreshes proactively (single-flight, across processes), and
 * `onUnauthorized()` refreshes once after a 401 so the transport's one retry succeeds.
 */
import type { AuthProvider } from '@modelcontextprotocol/client';
import { parseBearerChallenge } from '../oauth/www-authenticate.ts';
import type { TokenManager } from '../lifecycle/token-manager.ts';

export function createAuthProvider(manager: TokenManager): AuthProvider {
  let lastToken: string | undefined;
  return {
    async token() {
      // Undefined until the server asks (MCP 2026-07-28: the first 401 starts the sign-in).
      lastToken = await manager.tokenForRequest();
      return lastToken;
    },
    async onUnauthorized(ctx) {
      // RFC 6750 §3.1: a 401 means the server did not run the request; safe to retry once.
      const challenge = parseBearerChallenge(ctx.response.headers.get('www-authenticate'));
      lastToken = await manager.afterUnauthorized(lastToken, challenge);
    },
  };
}
