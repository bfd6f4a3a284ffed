// The sandbox's tools, described once for both protocol eras: legacy-tools.ts registers them on an
// SDK 1.x server (2025-11-25 sessions), modern-tools.ts on an SDK v2 server (2026-07-28). The input
// shapes are zod raw shapes; `.meta({ 'x-mcp-header': … })` reaches the listed JSON Schema in both
// SDKs (MCP 2026-07-28 "Streamable HTTP" § Custom Headers from Tool Parameters, SEP-2243).
import * as z from 'zod';

export const ADMIN_SCOPE = 'mcp:admin';

/**
 * Tools whose `x-mcp-header` annotations break a rule of SEP-2243 § Schema Extension. A conforming
 * client drops them from `tools/list` and never calls them; the SDK warns and serves them, so the
 * counters (`toolCalls`, `McpLogEntry.reachedTool`) show whether a client called one anyway. The
 * 2026-07-28 era lists them always, the 2025-11-25 era only with `invalidHeaderToolsInLegacyEra`
 * (x-mcp-header is a 2026-07-28 notion; 2025 clients and their tests need not see them).
 */
export const INVALID_HEADER_TOOLS = {
  // "MUST NOT be empty"
  bad_empty_header: { why: 'an empty x-mcp-header name', shape: { text: z.string().meta({ 'x-mcp-header': '' }) } },
  // "Parameters with type `number` are not permitted"
  bad_number_header: { why: 'x-mcp-header on a number parameter', shape: { amount: z.number().meta({ 'x-mcp-header': 'Amount' }) } },
  // "MUST only be applied to parameters with primitive types"
  bad_object_header: {
    why: 'x-mcp-header on an object parameter',
    shape: { filter: z.object({ field: z.string() }).meta({ 'x-mcp-header': 'Filter' }) },
  },
  // "MUST be case-insensitively unique"
  bad_duplicate_header: {
    why: 'two x-mcp-header names equal but for case',
    shape: { region: z.string().meta({ 'x-mcp-header': 'Region' }), zone: z.string().meta({ 'x-mcp-header': 'region' }) },
  },
  // "MUST match HTTP field-name token syntax" (no space, no ':')
  bad_chars_header: { why: 'an x-mcp-header name with a space and a colon', shape: { text: z.string().meta({ 'x-mcp-header': 'Bad Name:' }) } },
  // "statically reachable … MUST NOT pass through items"
  bad_array_header: {
    why: 'x-mcp-header under array items',
    shape: { tags: z.array(z.string().meta({ 'x-mcp-header': 'Tag' })) },
  },
} as const;

export type InvalidHeaderTool = keyof typeof INVALID_HEADER_TOOLS;
export const INVALID_HEADER_TOOL_NAMES = Object.keys(INVALID_HEADER_TOOLS) as InvalidHeaderTool[];

/**
 * `route`: valid `x-mcp-header` annotations on a string, an integer, a boolean and a nested object
 * property (reachable through `properties` only), plus a parameter without one. Echoes its args.
 */
export const ROUTE_SHAPE = {
  region: z.string().meta({ 'x-mcp-header': 'Region' }),
  priority: z.number().int().optional().meta({ 'x-mcp-header': 'Priority' }),
  dryRun: z.boolean().optional().meta({ 'x-mcp-header': 'Dry-Run' }),
  target: z.object({ tenant: z.string().optional().meta({ 'x-mcp-header': 'Tenant' }) }).optional(),
  note: z.string().optional(),
};

/** The tools both eras list by default. */
export const TOOL_NAMES = ['echo', 'whoami', 'admin_echo', 'slow', 'ask', 'big', 'route', 'notify'] as const;
/** Every tool any era may list: per-tool discovery serves metadata at one URL for each. */
export const ALL_TOOL_NAMES: readonly string[] = [...TOOL_NAMES, ...INVALID_HEADER_TOOL_NAMES];

export const DESCRIPTIONS = {
  echo: 'Echo the text back.',
  whoami: 'The access token seen by the server.',
  admin_echo: `Echo, requires ${ADMIN_SCOPE}.`,
  slow: 'Wait ms milliseconds, reporting progress; honours cancellation.',
  ask: 'Ask the client a question (elicitation: a server request in 2025-11-25, an input_required result in 2026-07-28) and return its answer.',
  big: 'Return a text of kb kilobytes.',
  route: 'Echo the arguments; region, priority, dryRun and target.tenant are mirrored into Mcp-Param-* headers.',
  notify: 'Send notifications/tools/list_changed to every listener (subscriptions/listen streams, 2025-era GET streams).',
} as const;

export const ECHO_SHAPE = { text: z.string() };
export const SLOW_SHAPE = { ms: z.number().int().min(0).max(600_000) };
export const ASK_SHAPE = { question: z.string().optional() };
export const BIG_SHAPE = { kb: z.number().int().min(0).max(100_000) };

export const DEFAULT_QUESTION = 'What is your favourite colour?';
/** The form the `ask` elicitation requests (MCP "Elicitation": a flat object of primitives). */
export const ANSWER_SCHEMA = {
  type: 'object' as const,
  properties: { answer: { type: 'string' as const } },
  required: ['answer'],
};

export function bigText(kb: number): string {
  const line = 'mcp-oauth sandbox big payload 0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRST\n'; // 86 bytes
  const size = kb * 1024;
  return line.repeat(Math.ceil(size / line.length)).slice(0, size);
}

export function textResult(t: string): { content: Array<{ type: 'text'; text: string }> } {
  return { content: [{ type: 'text', text: t }] };
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** What a tool handler tells the MCP server around it. */
export interface ToolHooks {
  /** A tool's handler ran (before it does its work). */
  called(tool: string): void;
  /** The `notify` tool: deliver notifications/tools/list_changed to every listener. */
  notifyToolsChanged(): void;
}

let quieted = false;
/**
 * SDK v2 warns on stderr at every `tools/list` that lists a tool with an invalid `x-mcp-header`
 * (the INVALID_HEADER_TOOLS are invalid on purpose). Drop exactly those lines; keep the rest.
 */
export function quietInvalidHeaderWarnings(): void {
  if (quieted) return;
  quieted = true;
  const originalWarn = console.warn;
  const ours = INVALID_HEADER_TOOL_NAMES.map((name) => `[mcp-sdk] tool '${name}' carries an invalid x-mcp-header`);
  console.warn = (...args: unknown[]) => {
    const first = args[0];
    if (typeof first === 'string' && ours.some((prefix) => first.startsWith(prefix))) return;
    originalWarn(...args);
  };
}
