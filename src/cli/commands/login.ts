import { parse, requirePositional, type CliContext } from '../context.ts';
import { openCommandSession } from '../server-session.ts';
import { printJson, relativeTime } from '../output.ts';
import { fingerprint } from '../../secrets.ts';
import type { BearerChallenge } from '../../oauth/www-authenticate.ts';
import type { ServerConfig } from '../../types.ts';

const USAGE = 'mcp-oauth login NAME|URL [--no-browser | --device] [--scopes a,b] [--json]';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, { 'no-browser': { type: 'boolean' }, device: { type: 'boolean' }, scopes: { type: 'string' } }, USAGE);
  if (!args) return 0;
  if (args.values.device && args.values['no-browser']) throw new (await import('../../errors.ts')).McpOAuthError('usage', '--device and --no-browser are two different ways to sign in; choose one', { hint: `usage: ${USAGE}` });
  const target = requirePositional(args.positionals, 0, 'server NAME or URL', USAGE);
  const session = await openCommandSession(ctx, target, { interactive: true, noBrowser: Boolean(args.values['no-browser']) });
  const scopes = typeof args.values.scopes === 'string' ? args.values.scopes.split(/[\s,]+/).filter(Boolean) : undefined;
  const asked = await challengeForLogin(ctx, session.server);
  if (asked === 'no_oauth') {
    if (ctx.json) printJson(ctx, { server: session.server.name, signed_in: false, needs_sign_in: false });
    else ctx.out(`${session.server.name} answered without asking for a sign-in, so there is nothing to sign in to.\nNext: mcp-oauth tools ${session.server.name}`);
    return 0;
  }
  // --device: RFC 8628 device grant (src/cli/device-login.ts), else the browser sign-in.
  const credential = args.values.device
    ? await (await import('../device-login.ts')).deviceLogin(ctx, session, { scopes, challenge: asked })
    : await session.signIn({ reason: 'no_credential', scopes, challenge: asked });
  const now = Date.now();
  if (ctx.json) {
    printJson(ctx, {
      server: session.server.name,
      issuer: credential.key.issuer,
      resource: credential.key.resource,
      scopes: credential.scopes,
      expires_at: credential.expiresAt ? new Date(credential.expiresAt).toISOString() : null,
      has_refresh_token: Boolean(credential.refreshToken),
      access_token_fingerprint: fingerprint(credential.accessToken),
      ...(credential.refreshTokenMissingReason ? { refresh_token_missing_reason: credential.refreshTokenMissingReason } : {}),
    });
    return 0;
  }
  ctx.out(`✓ Signed in to ${session.server.name} (${credential.key.issuer}).`);
  ctx.out(`  Access token expires ${relativeTime(credential.expiresAt, now)}; refresh token: ${credential.refreshToken ? 'yes, it will be refreshed automatically' : 'none'}.`);
  if (credential.refreshTokenMissingReason) ctx.out(`  ! ${credential.refreshTokenMissingReason}`);
  ctx.out(`Next: mcp-oauth tools ${session.server.name}`);
  return 0;
}

/**
 * `login` has no MCP request whose 401 could start the sign-in, so it sends one unauthenticated
 * `ping` (which opens no MCP session): a 401's challenge is the start, with the scope the server
 * asks for (MCP 2026-07-28 "Scope Selection Strategy", least privilege). A server that answers the
 * ping may still protect its tools (Google's hosted servers do): resource metadata at the
 * well-known URLs is then enough to sign in; without any, there is nothing to sign in to.
 */
async function challengeForLogin(ctx: CliContext, server: ServerConfig): Promise<BearerChallenge | undefined | 'no_oauth'> {
  const { findProtectedResource, probeChallenge } = await import('../../oauth/discovery.ts');
  const fetch = ctx.oauthFetch;
  const challenge = await probeChallenge({ serverUrl: server.url, fetch });
  if (challenge) return challenge;
  if (await findProtectedResource({ serverUrl: server.url, expectedResource: server.oauthResource, fetch })) return undefined;
  return 'no_oauth';
}
