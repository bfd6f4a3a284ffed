/**
 * The HTTP answer to one client POST (MCP "Transports: Streamable HTTP", "Sending Messages to the
 * Server"): a single JSON body when the server's answer is one response, an SSE stream when more
 * comes (progress, server requests, several answers of a batch), and 202 for notifications and
 * responses. A JSON-RPC error the server sent with an HTTP error status goes out with that status,
 * so a client's version negotiation sees what the server said (MCP 2026-07-28 "Backward Compatibility").
 */
import type { ServerResponse } from 'node:http';
import { type JsonRpcId, type RawMessage, PROXY_ERROR, errorResponse, responseIds } from '../proxy/messages.ts';
import type { Logger } from '../types.ts';

export class PostAnswer {
  readonly #res: ServerResponse;
  readonly #logger: Logger;
  readonly #acceptsSse: boolean;
  readonly #headers: Record<string, string>;
  readonly #unanswered: Set<JsonRpcId>;
  readonly #batch: boolean;
  readonly #buffered: Array<{ message: RawMessage; status?: number }> = [];
  #streaming = false;
  #ended = false;
  #allAnswered!: () => void;
  /** Resolves once every request id in the POST has its answer (or the client went away). */
  readonly answered: Promise<void>;

  constructor(res: ServerResponse, opts: { ids: JsonRpcId[]; batch: boolean; acceptsSse: boolean; headers?: Record<string, string>; logger: Logger }) {
    this.#res = res;
    this.#logger = opts.logger;
    this.#acceptsSse = opts.acceptsSse;
    this.#headers = opts.headers ?? {};
    this.#unanswered = new Set(opts.ids);
    this.#batch = opts.batch;
    this.answered = new Promise((resolve) => (this.#allAnswered = resolve));
    if (this.#unanswered.size === 0) this.#allAnswered();
  }

  /** Adds headers before the answer starts (the session id of an initialize answer). */
  setHeader(name: string, value: string): void {
    this.#headers[name] = value;
  }

  get ended(): boolean {
    return this.#ended;
  }

  waits(id: JsonRpcId): boolean {
    return !this.#ended && this.#unanswered.has(id);
  }

  /** A message from the server for this exchange. */
  readonly sink = (message: RawMessage, status?: number): void => {
    if (this.#ended) return;
    const answers = responseIds(message.value);
    for (const id of answers) this.#unanswered.delete(id);
    if (this.#streaming) this.#writeEvent(message);
    else if (answers.length > 0 && this.#buffered.every((b) => responseIds(b.message.value).length > 0)) this.#buffered.push({ message, status });
    else if (this.#acceptsSse) this.#startStream(message);
    else this.#logger.debug('dropped a server message: the client accepts no event stream', { bytes: message.text.length });
    if (this.#unanswered.size === 0) this.#allAnswered();
  };

  /** The exchange is over: answer what is still open with an error and end the HTTP answer. */
  finish(unansweredReason?: string): void {
    if (this.#ended) return;
    for (const id of [...this.#unanswered]) {
      this.sink(errorResponse(id, PROXY_ERROR.connectionLost, unansweredReason ?? 'The MCP server did not answer; retry the request.'));
    }
    this.#ended = true;
    if (this.#streaming) {
      this.#res.end();
      return;
    }
    if (this.#buffered.length === 0) {
      this.#res.writeHead(202, this.#headers).end();
      return;
    }
    const status = this.#buffered.length === 1 ? (this.#buffered[0]!.status ?? 200) : 200;
    // JSON-RPC 2.0 §6: a batch is answered with an array; a single request with one object.
    const body = this.#batch || this.#buffered.length > 1 ? `[${this.#buffered.map((b) => stripBatch(b.message.text)).join(',')}]` : this.#buffered[0]!.message.text;
    this.#res.writeHead(status, { ...this.#headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }).end(body);
  }

  /** The client closed its side: nothing more is written. */
  abandon(): void {
    this.#ended = true;
    this.#allAnswered();
  }

  #startStream(message: RawMessage): void {
    this.#streaming = true;
    this.#res.writeHead(200, { ...this.#headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    for (const b of this.#buffered.splice(0)) this.#writeEvent(b.message);
    this.#writeEvent(message);
  }

  #writeEvent(message: RawMessage): void {
    this.#res.write(sseEvent(message));
  }
}

/** One SSE event carrying one JSON-RPC message (data lines may not hold raw newlines). */
export function sseEvent(message: RawMessage): string {
  const text = /[\r\n]/.test(message.text) ? JSON.stringify(message.value) : message.text;
  return `event: message\ndata: ${text}\n\n`;
}

/** A batch answer's members are joined into one array: an inner array is unwrapped. */
function stripBatch(text: string): string {
  const t = text.trim();
  return t.startsWith('[') && t.endsWith(']') ? t.slice(1, -1) : t;
}
