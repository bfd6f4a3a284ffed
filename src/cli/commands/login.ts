import { parse, requirePositional, type CliContext } from '../context.ts';
import { openCommandSession } from '../server-session.ts';
import { printJson, relativeTime } from '../output.ts';
import { fingerprint } from '../../secrets.ts';

const USAGE = 'mcp-oauth login NAME|URL [--no-browser] [--scopes a,b] [--json]';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, { 'no-browser': { type: 'boolean' }, scopes: { type: 'string' } }, USAGE);
  if (!args) return 0;
  const target = requirePositional(args.positionals, 0, 'server NAME or URL', USAGE);
  const session = await openCommandSession(ctx, target, { interactive: true, noBrowser: Boolean(args.values['no-browser']) });
  const scopes = typeof args.values.scopes === 'string' ? args.values.scopes.split(/[\s,]+/).filter(Boolean) : undefined;
  const credential = await session.signIn({ reason: 'no_credential', scopes });
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
