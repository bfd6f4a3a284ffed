import { parse, requirePositional, type CliContext } from '../context.ts';
import { printJson } from '../output.ts';
import { McpOAuthError } from '../../errors.ts';
import { signOut } from './logout.ts';

const USAGE = 'mcp-oauth remove NAME [--json]';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, {}, USAGE);
  if (!args) return 0;
  const name = requirePositional(args.positionals, 0, 'NAME', USAGE);
  const { removeServer, loadConfig } = await import('../../config/config.ts');
  const server = (await loadConfig({ env: ctx.env })).servers[name];
  if (!server) throw new McpOAuthError('server_unknown', `No server named "${name}" in the config.`, { hint: 'mcp-oauth list' });
  // Sign out first: once the entry is gone, its credential could no longer be named.
  const signedOut = await signOut(ctx, server);
  await removeServer({ env: ctx.env, name });
  if (ctx.json) printJson(ctx, { server: name, removed: true, credentials_removed: signedOut.length });
  else ctx.out(`✓ Removed ${name} from the config${signedOut.length ? ' and signed out' : ''}.`);
  return 0;
}
