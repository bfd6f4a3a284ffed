import { parse, requirePositional, type CliContext } from '../context.ts';
import { openCommandSession } from '../server-session.ts';
import { printJson } from '../output.ts';

const USAGE = 'mcp-oauth token NAME|URL [--json] | token --gateway [--json]';

/** Prints a valid access token for scripts (`curl -H "Authorization: Bearer $(mcp-oauth token x)"`).
 * The one command that prints a secret, on purpose, to stdout only. Never opens a browser: when a
 * sign-in is needed it fails with exit code 4 and says so. */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, { gateway: { type: 'boolean' } }, USAGE);
  if (!args) return 0;
  if (args.values.gateway) return gatewaySecretToken(ctx);
  const session = await openCommandSession(ctx, requirePositional(args.positionals, 0, 'server NAME or URL', USAGE), { interactive: false });
  const token = await session.manager.accessToken();
  if (ctx.json) {
    const credential = await session.manager.credential();
    printJson(ctx, {
      server: session.server.name,
      access_token: token,
      token_type: 'Bearer',
      expires_at: credential?.expiresAt ? new Date(credential.expiresAt).toISOString() : null,
    });
    return 0;
  }
  ctx.out(token);
  return 0;
}

/**
 * The gateway secret, for a client `install --gateway` does not know (its config takes a header:
 * `Authorization: Bearer $(mcp-oauth token --gateway)`). Created on first use, like `serve` does.
 */
async function gatewaySecretToken(ctx: CliContext): Promise<number> {
  const { gatewaySecret } = await import('../../gateway/secret.ts');
  const secret = (await gatewaySecret(await ctx.store(), { create: true }))!;
  if (ctx.json) printJson(ctx, { gateway_secret: secret, header: 'Authorization', scheme: 'Bearer' });
  else ctx.out(secret);
  return 0;
}
