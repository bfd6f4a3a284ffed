/**
 * MCP 2026-07-28 "Streamable HTTP: Request Metadata" (SEP-2243): the HTTP headers a client mirrors
 * from each POST's JSON-RPC body, so intermediaries can route without parsing it — the protocol
 * version, `Mcp-Method`, `Mcp-Name`, and `Mcp-Param-*` for tool parameters that the tool's input
 * schema marks with `x-mcp-header`. Pure: messages in, headers out.
 */

/** The `_meta` key that carries the protocol version on every 2026-07-28 request. */
export const PROTOCOL_VERSION_META = 'io.modelcontextprotocol/protocolVersion';
/** The first revision of the stateless (per-request metadata) era. */
export const FIRST_MODERN_PROTOCOL_VERSION = '2026-07-28';

/** Versions are dates: string order is time order. */
export function isModernProtocolVersion(version: string | undefined): boolean {
  return version !== undefined && version >= FIRST_MODERN_PROTOCOL_VERSION;
}

/** Methods whose `Mcp-Name` comes from `params.name` or `params.uri` ("Standard Request Headers"). */
const NAMED_METHODS: Record<string, 'name' | 'uri'> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

const SENTINEL = /^=\?base64\?.*\?=$/s;

/**
 * "Value Encoding": visible ASCII, space and tab pass as they are; anything else (non-ASCII,
 * control characters, leading or trailing whitespace) and any value that looks like the sentinel
 * is sent as `=?base64?…?=` of its UTF-8 bytes.
 */
export function encodeHeaderValue(value: string): string {
  const plain = /^[\x20-\x7e\t]*$/.test(value) && !/^[ \t]|[ \t]$/.test(value) && !SENTINEL.test(value);
  return plain ? value : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The reverse, for servers (the sandbox) and tests. Undefined when the sentinel holds no valid Base64. */
export function decodeHeaderValue(value: string): string | undefined {
  if (!SENTINEL.test(value)) return value;
  const b64 = value.slice('=?base64?'.length, -2);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined;
  return Buffer.from(b64, 'base64').toString('utf8');
}

/** One `x-mcp-header` annotation: where in the arguments the value is, and the header it goes in. */
export interface ParamHeader {
  /** The chain of `properties` keys from the schema root. */
  path: string[];
  /** The name part of `Mcp-Param-{name}`, as the schema spells it. */
  name: string;
}

export type ToolHeaders = { ok: true; headers: ParamHeader[] } | { ok: false; reason: string };

/** RFC 9110 §5.6.2 token characters. */
const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const SUB_SCHEMA_KEYWORDS = ['items', 'prefixItems', 'additionalProperties', 'patternProperties', 'oneOf', 'anyOf', 'allOf', 'not', 'if', 'then', 'else', '$ref', '$defs', 'definitions', 'contains', 'dependentSchemas', 'unevaluatedProperties', 'unevaluatedItems', 'propertyNames'];

/**
 * The `x-mcp-header` annotations of one tool's input schema, validated by "Schema Extension": a
 * non-empty token, unique case-insensitively, only on string, integer or boolean properties, and
 * only where the property is reachable from the root through `properties` keys alone. Any
 * violation makes the whole tool invalid (the client MUST drop it from `tools/list`).
 */
export function toolParamHeaders(inputSchema: unknown): ToolHeaders {
  const headers: ParamHeader[] = [];
  const seen = new Set<string>();
  let failure: string | undefined;

  const visit = (schema: unknown, path: string[], reachable: boolean): void => {
    if (failure || !schema || typeof schema !== 'object') return;
    if (Array.isArray(schema)) {
      for (const s of schema) visit(s, path, false);
      return;
    }
    const node = schema as Record<string, unknown>;
    if ('x-mcp-header' in node) {
      const name = node['x-mcp-header'];
      if (!reachable || path.length === 0) {
        failure = `x-mcp-header ${JSON.stringify(name)} is not on a property reachable through "properties" alone`;
        return;
      }
      if (typeof name !== 'string' || name.length === 0) {
        failure = `x-mcp-header at ${path.join('.')} is empty or not a string`;
        return;
      }
      if (!TCHAR.test(name)) {
        failure = `x-mcp-header ${JSON.stringify(name)} at ${path.join('.')} has characters not allowed in a header name`;
        return;
      }
      if (!['string', 'integer', 'boolean'].includes(node.type as string)) {
        failure = `x-mcp-header ${JSON.stringify(name)} is on a parameter of type ${JSON.stringify(node.type ?? 'unspecified')}, not string, integer or boolean`;
        return;
      }
      const key = name.toLowerCase();
      if (seen.has(key)) {
        failure = `x-mcp-header ${JSON.stringify(name)} is used twice`;
        return;
      }
      seen.add(key);
      headers.push({ path, name });
    }
    const props = node.properties;
    if (props && typeof props === 'object' && !Array.isArray(props)) {
      for (const [key, sub] of Object.entries(props as Record<string, unknown>)) visit(sub, [...path, key], reachable);
    }
    for (const keyword of SUB_SCHEMA_KEYWORDS) if (keyword in node) visit(node[keyword], path, false);
  };

  visit(inputSchema, [], true);
  return failure ? { ok: false, reason: failure } : { ok: true, headers };
}

/** "Value Encoding" type conversion; undefined (header omitted) for null, absent or non-primitive values. */
function paramValue(args: unknown, path: string[]): string | undefined {
  let cur: unknown = args;
  for (const key of path) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  if (typeof cur === 'string') return cur;
  if (typeof cur === 'boolean') return cur ? 'true' : 'false';
  if (typeof cur === 'number' && Number.isInteger(cur)) return String(cur);
  return undefined;
}

/**
 * The headers one POST carries. `protocolVersion` is the version the message's era needs
 * (from its `_meta`, else the negotiated one). `Mcp-Method`/`Mcp-Name`/`Mcp-Param-*` are added for
 * modern-era requests only: 2025 servers neither expect nor validate them.
 */
export function requestMetadataHeaders(message: unknown, protocolVersion: string | undefined, paramHeaders?: ParamHeader[]): Record<string, string> {
  const headers: Record<string, string> = {};
  if (protocolVersion) headers['mcp-protocol-version'] = protocolVersion;
  if (!isModernProtocolVersion(protocolVersion) || !message || typeof message !== 'object' || Array.isArray(message)) return headers;
  const m = message as { method?: unknown; params?: Record<string, unknown> };
  if (typeof m.method !== 'string') return headers;
  headers['mcp-method'] = encodeHeaderValue(m.method);
  const nameField = NAMED_METHODS[m.method];
  const name = nameField ? m.params?.[nameField] : undefined;
  if (typeof name === 'string') headers['mcp-name'] = encodeHeaderValue(name);
  if (m.method === 'tools/call' && paramHeaders) {
    for (const { path, name: header } of paramHeaders) {
      const value = paramValue(m.params?.arguments, path);
      if (value !== undefined) headers[`mcp-param-${header.toLowerCase()}`] = encodeHeaderValue(value);
    }
  }
  return headers;
}

/** The protocol version a request names in its own `_meta` (2026-07-28 requests always do). */
export function metaProtocolVersion(message: unknown): string | undefined {
  const params = (message as { params?: { _meta?: Record<string, unknown> } } | undefined)?.params;
  const v = params?._meta?.[PROTOCOL_VERSION_META];
  return typeof v === 'string' ? v : undefined;
}

/**
 * The request metadata headers for a raw JSON-RPC body (the library's authenticated fetch), when
 * it is a 2026-07-28 request: a caller that hand-writes the body gets the headers a strict server
 * requires. Anything else (another era, not JSON-RPC) gets none. Cheap for the common case: bodies
 * without the protocol-version `_meta` key are not parsed.
 */
export function headersForRawBody(text: string): Record<string, string> {
  if (!text.includes(PROTOCOL_VERSION_META)) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {};
  }
  const version = metaProtocolVersion(value);
  return isModernProtocolVersion(version) ? requestMetadataHeaders(value, version) : {};
}
