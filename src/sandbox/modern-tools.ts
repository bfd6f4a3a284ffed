// The sandbox's tools on an SDK v2 server: what a 2026-07-28 request (per-request `_meta`, no
// session) talks to, one instance per HTTP request (createMcpHandler's factory). The same tools as
// legacy-tools.ts (tool-catalog.ts); `ask` uses a multi round-trip request instead of a
// server-to-client request (MCP 2026-07-28 basic/patterns/mrtr).
import * as z from 'zod';
import { McpServer, inputRequired, inputResponse } from '@modelcontextprotocol/server';
import {
  ANSWER_SCHEMA, ASK_SHAPE, BIG_SHAPE, DEFAULT_QUESTION, DESCRIPTIONS, ECHO_SHAPE, INVALID_HEADER_TOOLS, INVALID_HEADER_TOOL_NAMES,
  ROUTE_SHAPE, SLOW_SHAPE, bigText, quietInvalidHeaderWarnings, sleep, textResult as text,
} from './tool-catalog.ts';
import type { ToolHooks } from './tool-catalog.ts';

/** The key of the `ask` tool's one input request (the client answers under the same key). */
export const ASK_INPUT_KEY = 'answer';

export function modernToolsServer(hooks: ToolHooks): McpServer {
  quietInvalidHeaderWarnings();
  const server = new McpServer({ name: 'mcp-oauth-sandbox', version: '0.1.0' }, { capabilities: { tools: { listChanged: true } } });

  server.registerTool('echo', { description: DESCRIPTIONS.echo, inputSchema: z.object(ECHO_SHAPE) }, async ({ text: t }) => {
    hooks.called('echo');
    return text(t);
  });

  server.registerTool('whoami', { description: DESCRIPTIONS.whoami }, async (ctx) => {
    hooks.called('whoami');
    const auth = ctx.http?.authInfo;
    return text(JSON.stringify({ sub: auth?.extra?.sub, client_id: auth?.clientId, scope: auth?.scopes.join(' '), exp: auth?.expiresAt }));
  });

  // Gated by the HTTP layer (403 insufficient_scope, mcp:admin) before it reaches here.
  server.registerTool('admin_echo', { description: DESCRIPTIONS.admin_echo, inputSchema: z.object(ECHO_SHAPE) }, async ({ text: t }) => {
    hooks.called('admin_echo');
    return text(`admin: ${t}`);
  });

  server.registerTool('slow', { description: DESCRIPTIONS.slow, inputSchema: z.object(SLOW_SHAPE) }, async ({ ms }, ctx) => {
    hooks.called('slow');
    const steps = 10;
    // MCP 2026-07-28 basic/patterns/progress: on the request's own SSE response stream.
    const progressToken = ctx.mcpReq._meta?.progressToken;
    for (let i = 1; i <= steps; i++) {
      await sleep(ms / steps, ctx.mcpReq.signal);
      if (progressToken !== undefined) {
        await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: i, total: steps } });
      }
    }
    return text(`slept ${ms} ms`);
  });

  // MRTR: the first call returns `input_required` with an elicitation; the retry carries the
  // client's answer in `inputResponses` and completes (same result text as the 2025 `ask`).
  server.registerTool('ask', { description: DESCRIPTIONS.ask, inputSchema: z.object(ASK_SHAPE) }, async ({ question }, ctx) => {
    hooks.called('ask');
    const answer = inputResponse(ctx.mcpReq.inputResponses, ASK_INPUT_KEY);
    if (answer.kind === 'elicit') {
      return text(JSON.stringify({ action: answer.action, ...(answer.content ? { content: answer.content } : {}) }));
    }
    return inputRequired({
      inputRequests: { [ASK_INPUT_KEY]: inputRequired.elicit({ mode: 'form', message: question ?? DEFAULT_QUESTION, requestedSchema: ANSWER_SCHEMA }) },
      requestState: 'ask:1',
    });
  });

  server.registerTool('big', { description: DESCRIPTIONS.big, inputSchema: z.object(BIG_SHAPE) }, async ({ kb }) => {
    hooks.called('big');
    return text(bigText(kb));
  });

  server.registerTool('route', { description: DESCRIPTIONS.route, inputSchema: z.object(ROUTE_SHAPE) }, async (args) => {
    hooks.called('route');
    return text(JSON.stringify(args));
  });

  server.registerTool('notify', { description: DESCRIPTIONS.notify }, async () => {
    hooks.called('notify');
    hooks.notifyToolsChanged();
    return text('notified');
  });

  for (const name of INVALID_HEADER_TOOL_NAMES) {
    const tool = INVALID_HEADER_TOOLS[name];
    server.registerTool(name, { description: `Invalid on purpose: ${tool.why}.`, inputSchema: z.object(tool.shape) }, async (args: unknown) => {
      hooks.called(name);
      return text(JSON.stringify(args));
    });
  }
  return server;
}
