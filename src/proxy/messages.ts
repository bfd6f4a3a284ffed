/**
 * JSON-RPC 2.0 messages as the proxy sees them: the exact text that came in (forwarded untouched,
 * so fields no schema knows survive) plus the parsed value (to read ids and methods). The proxy
 * never re-serialises a message it forwards, except to remove newlines a stdio line cannot carry.
 */

export interface RawMessage {
  /** The JSON text exactly as received (one stdin line, one SSE `data`, one HTTP body). */
  text: string;
  /** JSON.parse(text): a message object, or an array of them (a JSON-RPC batch). */
  value: unknown;
}

export type JsonRpcId = string | number;

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function members(value: unknown): Obj[] {
  return (Array.isArray(value) ? value : [value]).filter(isObject);
}

/** Parses one JSON text; undefined when it is not JSON at all (never thrown: stdio must go on). */
export function parseRaw(text: string): RawMessage | undefined {
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  try {
    return { text: trimmed, value: JSON.parse(trimmed) };
  } catch {
    return undefined;
  }
}

/**
 * The text to write as ONE stdio line. MCP stdio transport: "Messages are delimited by newlines,
 * and MUST NOT contain embedded newlines." JSON may contain raw newlines between tokens (SSE data
 * joins multi-line fields with "\n"); only then is the value re-serialised.
 */
export function asStdioLine(message: RawMessage): string {
  return /[\r\n]/.test(message.text) ? JSON.stringify(message.value) : message.text;
}

/** Ids of the requests in a message or batch (JSON-RPC 2.0 §4: a request has `method` and `id`). */
export function requestIds(value: unknown): JsonRpcId[] {
  const ids: JsonRpcId[] = [];
  for (const m of members(value)) {
    if (typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number')) ids.push(m.id);
  }
  return ids;
}

/** Ids answered by a message or batch (JSON-RPC 2.0 §5: a response has `result` or `error`). */
export function responseIds(value: unknown): JsonRpcId[] {
  const ids: JsonRpcId[] = [];
  for (const m of members(value)) {
    if (m.method === undefined && ('result' in m || 'error' in m) && (typeof m.id === 'string' || typeof m.id === 'number')) ids.push(m.id);
  }
  return ids;
}

export function methodOf(value: unknown): string | undefined {
  return isObject(value) && typeof value.method === 'string' ? value.method : undefined;
}

export function isInitializeRequest(message: RawMessage): boolean {
  return methodOf(message.value) === 'initialize' && requestIds(message.value).length === 1;
}

export function isInitializedNotification(message: RawMessage): boolean {
  return methodOf(message.value) === 'notifications/initialized';
}

/** The ids a `notifications/cancelled` names (MCP spec "Cancellation": params.requestId). */
export function cancelledRequestId(value: unknown): JsonRpcId | undefined {
  if (!isObject(value) || value.method !== 'notifications/cancelled' || !isObject(value.params)) return undefined;
  const id = value.params.requestId;
  return typeof id === 'string' || typeof id === 'number' ? id : undefined;
}

/** `result.protocolVersion` of an initialize response with this id (MCP spec "Lifecycle"). */
export function negotiatedProtocolVersion(value: unknown, initializeId: JsonRpcId): string | undefined {
  for (const m of members(value)) {
    if (m.id !== initializeId || !isObject(m.result)) continue;
    if (typeof m.result.protocolVersion === 'string') return m.result.protocolVersion;
  }
  return undefined;
}

/** The same message with another id: re-initialization must not collide with the client's ids. */
export function withId(message: RawMessage, id: JsonRpcId): RawMessage {
  const value = { ...(message.value as Obj), id };
  return { text: JSON.stringify(value), value };
}

export function notification(method: string, params?: Obj): RawMessage {
  const value = { jsonrpc: '2.0', method, ...(params ? { params } : {}) };
  return { text: JSON.stringify(value), value };
}

/**
 * JSON-RPC error codes the proxy itself answers with. -32001 sits in the implementation-defined
 * server error range (JSON-RPC 2.0 §5.1: -32000 to -32099).
 */
export const PROXY_ERROR = {
  signInRequired: -32001,
  upstreamFailed: -32002,
  connectionLost: -32003,
} as const;

export function errorResponse(id: JsonRpcId, code: number, message: string, data?: Obj): RawMessage {
  const value = { jsonrpc: '2.0', id, error: { code, message, ...(data ? { data } : {}) } };
  return { text: JSON.stringify(value), value };
}

/** `params.name` of a tools/call request (not a batch). */
export function toolCallName(value: unknown): string | undefined {
  const m = value as { method?: unknown; params?: { name?: unknown } } | undefined;
  return m && !Array.isArray(m) && m.method === 'tools/call' && typeof m.params?.name === 'string' ? m.params.name : undefined;
}

/** The `result` of the response with this id in a message (not a batch). */
export function resultOf(value: unknown, id: JsonRpcId | undefined): unknown {
  const m = value as { id?: unknown; result?: unknown } | undefined;
  return m && !Array.isArray(m) && id !== undefined && m.id === id ? m.result : undefined;
}

export function withResult(message: RawMessage, result: unknown): RawMessage {
  const value = { ...(message.value as object), result };
  return { text: JSON.stringify(value), value };
}
