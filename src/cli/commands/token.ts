import { parse, requirePositional, type CliContext } from '../context.ts';
import { openCommandSession } from '../server-session.ts';

const USAGE = 'mcp-oauth token NAME|URL';

/** Prints a valid access token for scripts (`curl -H "Authorization: Bearer $(mcp-oauth token x)"`).
 * Never opens a browser: when a sign-in is needed it fails with exit code 4 and says so. */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, {}, USAGE);
  if (!args) return 0;
  const session = await openCommandSession(ctx, requirePositional(args.positionals, 0, 'server NAME or URL', USAGE), { interactive: false });
  const token = await session.manager.accessToken();
  ctx.out(token);
  return 0;
}
