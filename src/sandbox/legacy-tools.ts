// The sandbox's tools on an SDK 1.x server: what a 2025-11-25 session (initialize, Mcp-Session-Id,
// GET stream, server-to-client requests) talks to. The same tools as modern-tools.ts (tool-catalog.ts).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ElicitResultSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  ANSWER_SCHEMA, ASK_SHAPE, BIG_SHAPE, DEFAULT_QUESTION, DESCRIPTIONS, ECHO_SHAPE, INVALID_HEADER_TOOLS, INVALID_HEADER_TOOL_NAMES,
  ROUTE_SHAPE, SLOW_SHAPE, bigText, sleep, textResult as text,
} from './tool-catalog.ts';
import type { ToolHooks } from './tool-catalog.ts';
import type { ZodRawShape } from 'zod';

/** `hooks(extra)`: the hooks for the request a handler serves (the server maps it to its log entry). */
export function legacyToolsServer(
  hooksFor: (extra: { sessionId?: string; requestId: string | number }) => ToolHooks,
  opts: { invalidHeaderTools: boolean },
): McpServer {
  const server = new McpServer({ name: 'mcp-oauth-sandbox', version: '0.1.0' });
  const called = (tool: string, extra: { sessionId?: string; requestId: string | number }) => hooksFor(extra).called(tool);

  server.registerTool('echo', { description: DESCRIPTIONS.echo, inputSchema: ECHO_SHAPE }, async ({ text: t }, extra) => {
    called('echo', extra);
    return text(t);
  });

  server.registerTool('whoami', { description: DESCRIPTIONS.whoami }, async (extra) => {
    called('whoami', extra);
    const auth = extra.authInfo;
    return text(JSON.stringify({ sub: auth?.extra?.sub, client_id: auth?.clientId, scope: auth?.scopes.join(' '), exp: auth?.expiresAt }));
  });

  // Gated by the HTTP layer (403 insufficient_scope, mcp:admin) before it reaches here.
  server.registerTool('admin_echo', { description: DESCRIPTIONS.admin_echo, inputSchema: ECHO_SHAPE }, async ({ text: t }, extra) => {
    called('admin_echo', extra);
    return text(`admin: ${t}`);
  });

  server.registerTool('slow', { description: DESCRIPTIONS.slow, inputSchema: SLOW_SHAPE }, async ({ ms }, extra) => {
    called('slow', extra);
    const steps = 10;
    const progressToken = extra._meta?.progressToken;
    for (let i = 1; i <= steps; i++) {
      await sleep(ms / steps, extra.signal);
      if (progressToken !== undefined) {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: i, total: steps } });
      }
    }
    return text(`slept ${ms} ms`);
  });

  // 2025-11-25 "Elicitation": a server-to-client request on the POST's SSE stream.
  server.registerTool('ask', { description: DESCRIPTIONS.ask, inputSchema: ASK_SHAPE }, async ({ question }, extra) => {
    called('ask', extra);
    const answer = await extra.sendRequest({
      method: 'elicitation/create',
      params: { mode: 'form', message: question ?? DEFAULT_QUESTION, requestedSchema: ANSWER_SCHEMA },
    }, ElicitResultSchema);
    return text(JSON.stringify(answer));
  });

  server.registerTool('big', { description: DESCRIPTIONS.big, inputSchema: BIG_SHAPE }, async ({ kb }, extra) => {
    called('big', extra);
    return text(bigText(kb));
  });

  server.registerTool('route', { description: DESCRIPTIONS.route, inputSchema: ROUTE_SHAPE }, async (args, extra) => {
    called('route', extra);
    return text(JSON.stringify(args));
  });

  server.registerTool('notify', { description: DESCRIPTIONS.notify }, async (extra) => {
    called('notify', extra);
    hooksFor(extra).notifyToolsChanged();
    return text('notified');
  });

  for (const name of opts.invalidHeaderTools ? INVALID_HEADER_TOOL_NAMES : []) {
    const tool = INVALID_HEADER_TOOLS[name];
    const shape: ZodRawShape = tool.shape;
    server.registerTool(name, { description: `Invalid on purpose: ${tool.why}.`, inputSchema: shape }, async (args, extra) => {
      called(name, extra);
      return text(JSON.stringify(args));
    });
  }
  return server;
}
