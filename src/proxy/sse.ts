/**
 * Reading a text/event-stream body (WHATWG HTML "Server-sent events"; MCP Streamable HTTP and the
 * older HTTP+SSE transport both carry JSON-RPC messages in `data`). Parsing is eventsource-parser's;
 * this adds the stream plumbing and keeps the last event id and the server's `retry:` hint, which
 * the caller needs to resume with Last-Event-ID.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export type SseEvent = EventSourceMessage;

export interface SseCursor {
  /** The last `id:` seen (HTML SSE §9.2.6: sent back as Last-Event-ID when reconnecting). */
  lastEventId?: string;
  /** The last `retry:` in milliseconds (how long to wait before reconnecting). */
  retryMs?: number;
}

/** A body that hands on its chunks without a web stream (the proxy's node:http fetch, src/proxy/node-http-response.ts). */
export interface ChunkedBody {
  readChunks(onChunk: (chunk: Uint8Array) => void): Promise<void>;
}

export type SseBody = ReadableStream<Uint8Array> | ChunkedBody | null;

function isChunked(body: NonNullable<SseBody>): body is ChunkedBody {
  return typeof (body as Partial<ChunkedBody>).readChunks === 'function';
}

/** What `readSse` should read of a response: its chunks directly when it offers them, else its web stream. */
export function sseBodyOf(res: Response): SseBody {
  const chunked = res as unknown as ChunkedBody;
  return isChunked(chunked) ? chunked : res.body;
}

/**
 * Reads events until the body ends (resolves) or breaks (rejects). `cursor` is updated as events
 * arrive, so it is current even when the read fails half-way.
 */
export async function readSse(body: SseBody, onEvent: (e: SseEvent) => void, cursor: SseCursor = {}): Promise<SseCursor> {
  if (!body) return cursor;
  const parser = createParser({
    onEvent(event) {
      if (event.id !== undefined) cursor.lastEventId = event.id;
      onEvent(event);
    },
    onRetry(ms) {
      cursor.retryMs = ms;
    },
  });
  const decoder = new TextDecoder();
  if (isChunked(body)) {
    await body.readChunks((chunk) => parser.feed(decoder.decode(chunk, { stream: true })));
    parser.feed(decoder.decode());
    return cursor;
  }
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  } finally {
    reader.releaseLock();
  }
  parser.feed(decoder.decode());
  return cursor;
}

export function isEventStream(res: Response): boolean {
  return (res.headers.get('content-type') ?? '').toLowerCase().startsWith('text/event-stream');
}

export function isJson(res: Response): boolean {
  return (res.headers.get('content-type') ?? '').toLowerCase().startsWith('application/json');
}

/** Waits `ms`, or less when `signal` aborts (then resolves: the caller checks whether to go on). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Reconnect delay: the server's `retry:` when given, else exponential from 500 ms, capped at 30 s. */
export function reconnectDelayMs(attempt: number, retryMs?: number): number {
  if (retryMs !== undefined && attempt === 0) return retryMs;
  const base = retryMs ?? 500;
  return Math.min(30_000, base * 2 ** attempt);
}
