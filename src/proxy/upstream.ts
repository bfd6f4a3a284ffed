/**
 * What the stdio side of the proxy talks to: one connection to the remote MCP server, over
 * Streamable HTTP (MCP 2025-03-26 and later) or the older HTTP+SSE transport (2024-11-05).
 */
import type { FetchLike, Logger } from '../types.ts';
import { parseRaw, type JsonRpcId, type RawMessage } from './messages.ts';
import { NodeHttpResponse } from './node-http-response.ts';

/** Where server messages go. `status` is the HTTP status of a non-2xx answer whose body was a
 * JSON-RPC error (the gateway answers its client with the same status). */
export type MessageSink = (message: RawMessage, status?: number) => void;

/** Per message: where its answers go and what cancels it (the gateway: the client's own HTTP request). */
export interface Route {
  /** Default: UpstreamOptions.onMessage. Server messages outside this exchange never come here. */
  sink?: MessageSink;
  /** Aborting it abandons the exchange (2026-07-28: closing the stream IS the cancellation). */
  signal?: AbortSignal;
}

export interface Upstream {
  readonly kind: 'streamable-http' | 'sse';
  /**
   * Sends one client message (or batch). Resolves when the exchange for it is over; every message
   * the server sends meanwhile goes to `onMessage`. Rejects with the fetch's error when the message
   * did not reach the server (safe to retry), or with StreamLostError when it did but the answer
   * was lost (not safe to retry).
   */
  send(message: RawMessage, route?: Route): Promise<void>;
  /** Ends the session (HTTP DELETE where the transport has one) and stops every stream. */
  close(): Promise<void>;
}

export interface UpstreamOptions {
  url: string;
  /** The authenticated fetch: bearer token, refresh, 401 retry, step-up. */
  fetch: FetchLike;
  logger: Logger;
  /** Every message from the server, in the order received, unless the message's route has a sink. */
  onMessage: MessageSink;
  /** POST in the order send() was called (default true). */
  ordered?: boolean;
}

/** The server answered the HTTP request with an error status. */
export class UpstreamHttpError extends Error {
  readonly status: number;
  constructor(status: number, detail: string) {
    super(`HTTP ${status}${detail ? `: ${detail}` : ''}`);
    this.name = 'UpstreamHttpError';
    this.status = status;
  }
}

/** The server accepted the message, but the stream carrying the answer broke for good. */
export class StreamLostError extends Error {
  readonly unanswered: JsonRpcId[];
  constructor(message: string, unanswered: JsonRpcId[]) {
    super(message);
    this.name = 'StreamLostError';
    this.unanswered = unanswered;
  }
}

/**
 * MCP spec 2025-03-26 "Backwards Compatibility": a POST initialize answered 4xx (404, 405…) means
 * the server may only speak the 2024-11-05 HTTP+SSE transport.
 */
export class LegacyTransportSuspected extends Error {
  readonly status: number;
  constructor(status: number) {
    super(`the server answered the initialize POST with HTTP ${status}`);
    this.name = 'LegacyTransportSuspected';
    this.status = status;
  }
}

/** A short, single-line, bounded excerpt of an error body (never logged whole). */
export async function bodyExcerpt(res: Response): Promise<string> {
  try {
    const text = (await res.text()).replace(/\s+/g, ' ').trim();
    return text.length > 200 ? `${text.slice(0, 200)}…` : text;
  } catch {
    return '';
  }
}

export async function discardBody(res: Response): Promise<void> {
  try {
    // The proxy's node:http responses drop their body without making a web stream for it.
    if ((res as unknown) instanceof NodeHttpResponse) return (res as unknown as NodeHttpResponse).discard();
    await res.body?.cancel();
  } catch {
    // already closed
  }
}

/**
 * The body of an error answer: the JSON-RPC message(s) it holds, as received, or else a short
 * excerpt for the proxy's own error.
 */
export async function errorBodyOf(res: Response): Promise<RawMessage | string> {
  let text: string;
  try {
    text = await res.text();
  } catch {
    return '';
  }
  const parsed = parseRaw(text);
  const members = parsed ? (Array.isArray(parsed.value) ? parsed.value : [parsed.value]) : [];
  const isRpc = members.length > 0 && members.every((m) => m && typeof m === 'object' && (m as { jsonrpc?: unknown }).jsonrpc === '2.0' && ('error' in m || 'result' in m));
  if (parsed && isRpc) return parsed;
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}
