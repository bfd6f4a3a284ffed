import { parse, requirePositional, type CliContext } from '../context.ts';
import { mcpFetchFor } from '../server-session.ts';
import { connectMcp } from '../../client/mcp.ts';
import { printJson } from '../output.ts';

const USAGE = 'mcp-oauth tools NAME|URL [--no-browser] [--json]';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, { 'no-browser': { type: 'boolean' } }, USAGE);
  if (!args) return 0;
  const target = requirePositional(args.positionals, 0, 'server NAME or URL', USAGE);
  const { server, fetch } = await mcpFetchFor(ctx, target, { interactive: true, noBrowser: Boolean(args.values['no-browser']) });
  const conn = await connectMcp({ url: server.url, fetch });
  try {
    const { tools } = await conn.client.listTools(undefined, conn.requestOptions);
    if (ctx.json) {
      printJson(ctx, { server: server.name, tools });
      return 0;
    }
    ctx.out(`${tools.length} tool${tools.length === 1 ? '' : 's'} on ${server.name}:`);
    const width = Math.max(...tools.map((t) => t.name.length), 4);
    for (const t of tools) ctx.out(`  ${t.name.padEnd(width)}  ${(t.description ?? '').split('\n')[0]}`);
    if (tools[0]) ctx.out(`Next: mcp-oauth call ${server.name} ${tools[0].name} '{…}'`);
    return 0;
  } finally {
    await conn.close();
  }
}
