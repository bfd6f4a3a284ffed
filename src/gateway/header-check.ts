/**
 * The gateway is the server its clients talk to, so it checks what MCP 2026-07-28 (SEP-2243,
 * "Standard Headers") asks of a server: the `Mcp-Method` / `Mcp-Name` / `MCP-Protocol-Version`
 * headers a client sent must say what the body says, else 400 with -32020 HeaderMismatch. It
 * never forwards them: the headers upstream are derived from the body again (the proxy's rule),
 * together with the `Mcp-Param-*` headers the tool's annotations call for. Pure.
 */
import { decodeHeaderValue, isModernProtocolVersion, metaProtocolVersion, requestMetadataHeaders } from '../mcp/request-metadata.ts';

export const HEADER_MISMATCH = -32020;

const CHECKED = ['mcp-protocol-version', 'mcp-method', 'mcp-name'] as const;

/** The first header that contradicts the body, or undefined. Headers not sent are not checked. */
export function headerMismatch(message: unknown, headers: Record<string, string | string[] | undefined>): string | undefined {
  // The common case on the hot path: a client that sends none of them has nothing to check.
  if (CHECKED.every((name) => headers[name] === undefined)) return undefined;
  const version = metaProtocolVersion(message);
  if (!isModernProtocolVersion(version)) return undefined;
  const expected = requestMetadataHeaders(message, version);
  for (const name of CHECKED) {
    const raw = headers[name];
    const sent = Array.isArray(raw) ? raw[0] : raw;
    if (sent === undefined) continue;
    const want = expected[name] === undefined ? undefined : decodeHeaderValue(expected[name]!);
    if (decodeHeaderValue(sent) !== want) return `${name} is ${JSON.stringify(sent)} but the request body says ${JSON.stringify(want ?? '(nothing)')}`;
  }
  return undefined;
}
