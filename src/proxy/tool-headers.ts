/**
 * What the proxy knows of each tool's `x-mcp-header` annotations (MCP 2026-07-28 "Custom Headers
 * from Tool Parameters"): learnt from the `tools/list` results that pass through it, so that a
 * `tools/call` can carry the `Mcp-Param-*` headers its tool needs. Tools whose annotations break
 * the rules MUST be excluded from `tools/list`; the proxy removes them from the result the client
 * sees and answers calls to them itself.
 */
import type { Logger } from '../types.ts';
import { toolParamHeaders, type ParamHeader } from '../mcp/request-metadata.ts';
import { errorResponse, requestIds, toolCallName, type RawMessage } from './messages.ts';

export type ToolHeaderInfo = { state: 'valid'; headers: ParamHeader[] } | { state: 'invalid'; reason: string } | { state: 'unknown' };

export class ToolHeaderRegistry {
  readonly #tools = new Map<string, { headers: ParamHeader[] } | { invalid: string }>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  lookup(name: string): ToolHeaderInfo {
    const entry = this.#tools.get(name);
    if (!entry) return { state: 'unknown' };
    return 'invalid' in entry ? { state: 'invalid', reason: entry.invalid } : { state: 'valid', headers: entry.headers };
  }

  /**
   * The error the proxy answers a `tools/call` with itself, when its tool was removed from
   * `tools/list` for invalid annotations; undefined to send the call on. A modern-era call to a tool
   * not seen yet first lists the tools (every page, bounded, with the call's own `_meta`) through
   * `list`, so that its `Mcp-Param-*` headers can be sent.
   */
  async refusalFor(call: unknown, modern: boolean, list: (params: Record<string, unknown>) => Promise<unknown>): Promise<RawMessage | undefined> {
    const name = toolCallName(call);
    const [id] = requestIds(call);
    if (name === undefined || id === undefined) return undefined;
    if (this.lookup(name).state === 'unknown' && modern) {
      const meta = (call as { params?: { _meta?: unknown } }).params?._meta;
      try {
        let cursor: string | undefined;
        for (let page = 0; page < 20; page++) {
          // The answer passes through learn() on its way (the session's deliver()).
          const result = (await list({ ...(meta ? { _meta: meta } : {}), ...(cursor ? { cursor } : {}) })) as { nextCursor?: unknown } | undefined;
          cursor = typeof result?.nextCursor === 'string' ? result.nextCursor : undefined;
          if (!cursor) break;
        }
      } catch (err) {
        this.#logger.debug('could not list the tools before a call', { error: String(err) });
      }
    }
    const info = this.lookup(name);
    if (info.state !== 'invalid') return undefined;
    return errorResponse(id, -32602, `The tool ${JSON.stringify(name)} is not available: its x-mcp-header annotations are invalid (${info.reason}), so it was removed from tools/list.`);
  }

  /**
   * Records the annotations of every tool in a `tools/list` result and returns the result without
   * the invalid ones, or undefined when nothing had to be removed (the message then goes on as it
   * came). "Clients SHOULD log a warning when rejecting a tool definition".
   */
  learn(result: unknown): { tools: unknown[] } | undefined {
    const tools = (result as { tools?: unknown } | undefined)?.tools;
    if (!Array.isArray(tools)) return undefined;
    const kept: unknown[] = [];
    for (const tool of tools) {
      const name = (tool as { name?: unknown } | null)?.name;
      if (typeof name !== 'string') {
        kept.push(tool);
        continue;
      }
      const verdict = toolParamHeaders((tool as { inputSchema?: unknown }).inputSchema);
      if (verdict.ok) {
        this.#tools.set(name, { headers: verdict.headers });
        kept.push(tool);
      } else {
        this.#tools.set(name, { invalid: verdict.reason });
        this.#logger.warn('removed a tool with invalid x-mcp-header annotations from tools/list', { tool: name, reason: verdict.reason });
      }
    }
    return kept.length === tools.length ? undefined : { ...(result as object), tools: kept };
  }
}
