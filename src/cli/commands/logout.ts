import { parse, requirePositional, type CliContext } from '../context.ts';
import { printJson } from '../output.ts';
import { credentialsFor } from '../credentials-for.ts';
import { revokeToken } from '../../oauth/tokens.ts';
import { clientAuthFrom } from '../../signin/flow.ts';
import { McpOAuthError } from '../../errors.ts';
import type { ServerConfig } from '../../types.ts';

const USAGE = 'mcp-oauth logout NAME|URL [--json]';

export type SignOutResult = { issuer: string; revoked: 'yes' | 'no_endpoint' | 'failed'; error?: string };

/** Revokes (RFC 7009) then deletes every stored credential of `server`. */
export async function signOut(ctx: CliContext, server: ServerConfig): Promise<SignOutResult[]> {
  const store = await ctx.store();
  const credentials = await credentialsFor(store, server);
  const results: SignOutResult[] = [];
  for (const credential of credentials) {
    let revoked: 'yes' | 'no_endpoint' | 'failed' = 'no_endpoint';
    let error: string | undefined;
    if (credential.revocationEndpoint) {
      // RFC 7009 §2: revoking the refresh token also invalidates the access tokens of the grant
      // (for servers that support it); revoke the access token too for servers that don't.
      const registration = await store.getRegistration(credential.key.issuer);
      const secretEnv = server.oauth.clientSecretEnvVar;
      const client = clientAuthFrom({
        clientId: credential.clientId,
        clientSecret: registration?.clientId === credential.clientId ? registration.clientSecret : secretEnv ? ctx.env[secretEnv] : undefined,
        tokenEndpointAuthMethod: credential.tokenEndpointAuthMethod,
      });
      try {
        for (const [token, hint] of [[credential.refreshToken, 'refresh_token'], [credential.accessToken, 'access_token']] as const) {
          if (!token) continue;
          try {
            await revokeToken({ revocationEndpoint: credential.revocationEndpoint, client, token, tokenTypeHint: hint, fetch: ctx.oauthFetch });
          } catch (e) {
            // RFC 7009 §2.2.1 unsupported_token_type: many servers cannot revoke self-contained
            // (JWT) access tokens. Once the refresh token (the grant) is revoked that is fine.
            const grantRevoked = hint === 'access_token' && credential.refreshToken;
            if (!(grantRevoked && e instanceof McpOAuthError && e.oauthError === 'unsupported_token_type')) throw e;
          }
        }
        revoked = 'yes';
      } catch (e) {
        revoked = 'failed';
        error = e instanceof McpOAuthError ? e.message : String(e);
      }
    }
    // Delete locally even when revocation failed: the user asked to be signed out here.
    await store.delete(credential.key);
    results.push({ issuer: credential.key.issuer, revoked, ...(error ? { error } : {}) });
  }
  return results;
}

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, {}, USAGE);
  if (!args) return 0;
  const server = await ctx.server(requirePositional(args.positionals, 0, 'server NAME or URL', USAGE));
  const results = await signOut(ctx, server);
  if (ctx.json) {
    printJson(ctx, { server: server.name, removed: results.length, credentials: results });
    return 0;
  }
  if (results.length === 0) {
    ctx.out(`Not signed in to ${server.name}; nothing to do.`);
    return 0;
  }
  for (const r of results) {
    const how = r.revoked === 'yes' ? 'revoked at the server and deleted' : r.revoked === 'no_endpoint' ? 'deleted (the server has no revocation endpoint)' : `deleted here, but revocation failed: ${r.error}`;
    ctx.out(`✓ Signed out of ${server.name} (${r.issuer}): ${how}.`);
  }
  ctx.out(`Next: mcp-oauth login ${server.name} to sign in again.`);
  return 0;
}
