import { parse, requirePositional, type CliContext } from '../context.ts';
import { mcpFetchFor } from '../server-session.ts';
import { connectMcp } from '../../client/mcp.ts';
import { printJson } from '../output.ts';
import { McpOAuthError } from '../../errors.ts';

const USAGE = "mcp-oauth call NAME|URL TOOL ['{\"json\":\"args\"}'] [--no-browser] [--json]";

export function parseToolArguments(text: string | undefined): Record<string, unknown> {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new McpOAuthError('usage', `The tool arguments are not valid JSON: ${(e as Error).message}`, { hint: `usage: ${USAGE}` });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new McpOAuthError('usage', 'The tool arguments must be a JSON object, e.g. {"text":"hi"}', { hint: `usage: ${USAGE}` });
  }
  return value as Record<string, unknown>;
}

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, { 'no-browser': { type: 'boolean' } }, USAGE);
  if (!args) return 0;
  const target = requirePositional(args.positionals, 0, 'server NAME or URL', USAGE);
  const tool = requirePositional(args.positionals, 1, 'TOOL name', USAGE);
  const toolArgs = parseToolArguments(args.positionals[2]);
  const { server, fetch } = await mcpFetchFor(ctx, target, { interactive: true, noBrowser: Boolean(args.values['no-browser']) });
  const conn = await connectMcp({ url: server.url, fetch });
  try {
    // MCP 2026-07-28 "Custom Headers from Tool Parameters": the call must mirror the parameters its
    // tool marks with x-mcp-header into Mcp-Param-* headers, and the SDK knows them only from
    // tools/list. One list first spares a strict server's HeaderMismatch and the retry it asks for.
    if (conn.era === 'modern') await conn.client.listTools(undefined, conn.requestOptions);
    const result = await conn.client.callTool({ name: tool, arguments: toolArgs }, conn.requestOptions);
    if (ctx.json) {
      printJson(ctx, result);
    } else {
      for (const block of (result.content ?? []) as Array<{ type: string; text?: string }>) {
        ctx.out(block.type === 'text' ? (block.text ?? '') : JSON.stringify(block));
      }
    }
    return result.isError ? 1 : 0;
  } finally {
    await conn.close();
  }
}
