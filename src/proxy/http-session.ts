/**
 * The client side of MCP Streamable HTTP, both eras. 2025-03-26 … 2025-11-25 ("Transports"): every
 * client message is a POST; the answer is one JSON body or an SSE stream of several messages; an
 * optional GET stream carries server-initiated messages; the session id and the negotiated
 * protocol version ride on every request after initialize; a forgotten session (404) is
 * re-initialized transparently. 2026-07-28 (stateless): no initialize, no session, no GET stream;
 * every POST carries the SEP-2243 request metadata headers (request-metadata.ts), taken from the
 * message itself. A JSON-RPC error in a 4xx body is the server's answer and reaches the client as sent.
 */
import {
  type JsonRpcId,
  type RawMessage,
  errorResponse,
  isInitializeRequest,
  isInitializedNotification,
  methodOf,
  negotiatedProtocolVersion,
  notification,
  parseRaw,
  requestIds,
  responseIds,
  withId,
} from './messages.ts';
import { isEventStream, isJson, pause, readSse, reconnectDelayMs, sseBodyOf, type SseBody, type SseCursor } from './sse.ts';
import { isModernProtocolVersion, metaProtocolVersion, requestMetadataHeaders } from './request-metadata.ts';
import { ToolHeaderRegistry } from './tool-headers.ts';
import {
  LegacyTransportSuspected,
  StreamLostError,
  UpstreamHttpError,
  bodyExcerpt,
  discardBody,
  type Upstream,
  type UpstreamOptions,
} from './upstream.ts';

/** How long a request holds back the next message while its response headers are awaited. */
const ORDERING_WAIT_MS = 250;
/** Resume attempts for a POST stream that broke before its response (GET + Last-Event-ID). */
const MAX_RESUMES = 5;

export class StreamableHttpSession implements Upstream {
  readonly kind = 'streamable-http' as const;
  readonly #opts: UpstreamOptions;
  readonly #closed = new AbortController();
  readonly #tools: ToolHeaderRegistry;
  /** Answers to the proxy's own requests (tools/list for x-mcp-header), by id. */
  readonly #captured = new Map<JsonRpcId, unknown>();
  #ownRequests = 0;
  #sessionId: string | undefined;
  #protocolVersion: string | undefined;
  /** The client's original initialize request, replayed when the server forgets the session. */
  #initialize: RawMessage | undefined;
  #initializing: Promise<void> | undefined;
  #connectedOnce = false;
  #reinit: Promise<void> | undefined;
  /** The server forgot the session and the new one is not set up yet. */
  #lost = false;
  #reinits = 0;
  #listener: AbortController | undefined;
  #order: Promise<void> = Promise.resolve();

  constructor(opts: UpstreamOptions) {
    this.#opts = opts;
    this.#tools = new ToolHeaderRegistry(opts.logger);
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  async send(message: RawMessage): Promise<void> {
    if (isInitializeRequest(message)) {
      const run = this.#sendInitialize(message);
      this.#initializing = run.catch(() => {});
      return run;
    }
    // Nothing but initialize may go before the session exists (MCP spec "Lifecycle").
    await this.#initializing;
    await this.#reinit?.catch(() => {});
    // A re-initialization that failed (e.g. sign-in needed) is tried again before anything else.
    if (this.#lost) await this.#reinitialize(undefined);
    if (await this.#answeredLocally(message)) return;
    await this.#exchange(message);
    // MCP spec "Listening for Messages from the Server": the GET stream, once initialized.
    if (isInitializedNotification(message)) this.#startListening();
  }

  async close(): Promise<void> {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    this.#stopListening();
    const sessionId = this.#sessionId;
    if (!sessionId) return;
    // MCP spec "Session Management": a client that no longer needs the session SHOULD DELETE it.
    // Bounded: a token refresh or a slow server must not keep the client waiting on exit.
    const del = this.#opts
      .fetch(this.#opts.url, { method: 'DELETE', headers: this.#headers({}, sessionId), signal: AbortSignal.timeout(3000) })
      .then(async (res) => {
        await discardBody(res);
        this.#opts.logger.debug('ended the MCP session', { status: res.status });
      })
      .catch((err: unknown) => this.#opts.logger.debug('could not end the MCP session', { error: String(err) }));
    const stop = new AbortController();
    await Promise.race([del, pause(3500, stop.signal)]);
    stop.abort();
  }

  // ---- initialize and re-initialize ----

  async #sendInitialize(message: RawMessage): Promise<void> {
    this.#initialize = message;
    this.#stopListening();
    this.#sessionId = undefined;
    this.#lost = false;
    const res = await this.#post(message, undefined);
    if (!this.#connectedOnce && (res.status === 400 || res.status === 404 || res.status === 405)) {
      // MCP 2026-07-28 "Backward Compatibility": a 4xx whose body is a JSON-RPC error comes from a
      // Streamable HTTP server (e.g. -32022, the version is not supported: the client negotiates
      // from its list); only another answer means the 2024-11-05 HTTP+SSE transport.
      const answer = await errorBodyOf(res);
      if (typeof answer === 'string') throw new LegacyTransportSuspected(res.status);
      this.#connectedOnce = true;
      this.#deliver(answer.text, message);
      return;
    }
    this.#adoptSession(res);
    await this.#consume(res, message);
    this.#connectedOnce = true;
  }

  /** MCP spec "Session Management": the server assigns the id in the initialize response header. */
  #adoptSession(res: Response): void {
    const id = res.ok ? res.headers.get('mcp-session-id') : null;
    if (id) this.#sessionId = id;
  }

  /**
   * MCP spec "Session Management": on 404 for a request with a session id, the client MUST start a
   * new session with a new initialize request. The client's original initialize is replayed (with a
   * proxy-owned id, so its answer cannot be mistaken for a client's) and the answer swallowed: the
   * client already has one.
   */
  #reinitialize(staleSessionId: string | undefined): Promise<void> {
    if (this.#sessionId !== staleSessionId && !this.#reinit) return Promise.resolve();
    this.#reinit ??= (async () => {
      const original = this.#initialize;
      if (!original) throw new UpstreamHttpError(404, 'the server forgot the session and the client never initialized');
      this.#stopListening();
      this.#sessionId = undefined;
      this.#lost = true;
      this.#opts.logger.info('the MCP server forgot the session; initializing a new one');
      const replay = withId(original, `mcp-oauth-proxy-reinitialize-${++this.#reinits}`);
      const res = await this.#post(replay, undefined);
      this.#adoptSession(res);
      await this.#consume(res, replay, requestIds(replay.value)[0]);
      await this.#exchange(notification('notifications/initialized'), false);
      this.#lost = false;
      this.#startListening();
    })().finally(() => {
      this.#reinit = undefined;
    });
    return this.#reinit;
  }

  // ---- one message ----

  async #exchange(message: RawMessage, mayReinitialize = true): Promise<void> {
    const sessionId = this.#sessionId;
    const res = await this.#post(message, sessionId);
    if (res.status === 404 && sessionId !== undefined && mayReinitialize) {
      await discardBody(res);
      await this.#reinitialize(sessionId);
      return this.#exchange(message, false);
    }
    await this.#consume(res, message);
  }

  /**
   * POSTs in the order the client sent them: each waits until the previous one's response headers
   * arrived (the server has it), or briefly for a request whose server answers only when done.
   */
  async #post(message: RawMessage, sessionId: string | undefined): Promise<Response> {
    const previous = this.#order;
    let release!: () => void;
    this.#order = new Promise<void>((resolve) => (release = resolve));
    await previous;
    const timer = requestIds(message.value).length > 0 ? setTimeout(release, ORDERING_WAIT_MS) : undefined;
    try {
      // MCP spec "Sending Messages to the Server": Accept lists both answer forms.
      const headers = this.#headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, sessionId, message.value);
      return await this.#opts.fetch(this.#opts.url, { method: 'POST', headers, body: message.text, signal: this.#closed.signal });
    } finally {
      clearTimeout(timer);
      release();
    }
  }

  #headers(extra: Record<string, string>, sessionId: string | undefined, message?: unknown): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (sessionId) h['mcp-session-id'] = sessionId;
    // "Protocol Version Header": a 2026-07-28 request names its version in its own `_meta` (and
    // the header MUST match it); a 2025-era request carries the version negotiated by initialize.
    // SEP-2243's Mcp-Method / Mcp-Name / Mcp-Param-* go on modern-era requests only.
    const version = metaProtocolVersion(message) ?? this.#protocolVersion;
    const toolName = toolCallName(message);
    const params = toolName === undefined ? undefined : this.#tools.lookup(toolName);
    Object.assign(h, requestMetadataHeaders(message, version, params?.state === 'valid' ? params.headers : undefined));
    return h;
  }

  /**
   * A `tools/call` the proxy answers itself: its tool was removed from `tools/list` for invalid
   * x-mcp-header annotations. A modern-era call to a tool not seen yet first fetches `tools/list`
   * (with the call's own `_meta`), so that its `Mcp-Param-*` headers can be sent.
   */
  async #answeredLocally(message: RawMessage): Promise<boolean> {
    const name = toolCallName(message.value);
    const [id] = requestIds(message.value);
    if (name === undefined || id === undefined) return false;
    let info = this.#tools.lookup(name);
    if (info.state === 'unknown' && isModernProtocolVersion(metaProtocolVersion(message.value) ?? this.#protocolVersion)) {
      await this.#learnTools(message.value).catch((err: unknown) => this.#opts.logger.debug('could not list the tools before a call', { error: String(err) }));
      info = this.#tools.lookup(name);
    }
    if (info.state !== 'invalid') return false;
    this.#opts.onMessage(errorResponse(id, -32602, `The tool ${JSON.stringify(name)} is not available: its x-mcp-header annotations are invalid (${info.reason}), so it was removed from tools/list.`));
    return true;
  }

  /** `tools/list`, every page (bounded), answered to the proxy alone; deliver() learns from it. */
  async #learnTools(call: unknown): Promise<void> {
    const meta = (call as { params?: { _meta?: unknown } }).params?._meta;
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const id = `mcp-oauth-proxy-tools-list-${++this.#ownRequests}`;
      const params = { ...(meta ? { _meta: meta } : {}), ...(cursor ? { cursor } : {}) };
      const value = { jsonrpc: '2.0', id, method: 'tools/list', params };
      const request: RawMessage = { text: JSON.stringify(value), value };
      const res = await this.#post(request, this.#sessionId);
      await this.#consume(res, request, id);
      const result = this.#captured.get(id) as { nextCursor?: unknown } | undefined;
      this.#captured.delete(id);
      cursor = typeof result?.nextCursor === 'string' ? result.nextCursor : undefined;
      if (!cursor) return;
    }
  }

  async #consume(res: Response, message: RawMessage, swallowId?: JsonRpcId): Promise<void> {
    // 202 Accepted: a notification or response was taken; nothing comes back.
    if (res.status === 202) return discardBody(res);
    if (!res.ok) {
      // "Server JSON-RPC errors reach the client exactly as sent, whatever the HTTP status".
      const answer = await errorBodyOf(res);
      if (typeof answer === 'string') throw new UpstreamHttpError(res.status, answer);
      if (responseIds(answer.value).length === 0 && requestIds(message.value).length > 0) {
        // An error without the request's id (e.g. `id: null`) is still the server's word on it.
        this.#opts.logger.info('the MCP server refused a request without naming its id', { status: res.status });
      }
      this.#deliver(answer.text, message, swallowId);
      return;
    }
    if (isEventStream(res)) return this.#consumeStream(res, message, swallowId);
    const text = await res.text();
    if (!text.trim()) return;
    if (!isJson(res)) this.#opts.logger.warn('the MCP server answered with an unexpected content type', { contentType: res.headers.get('content-type') });
    this.#deliver(text, message, swallowId);
  }

  /** One message (or batch) from the server: to the client, unless it answers our replayed initialize. */
  #deliver(text: string, cause: RawMessage | undefined, swallowId?: JsonRpcId): JsonRpcId[] {
    const message = parseRaw(text);
    if (!message) {
      this.#opts.logger.warn('dropped a message from the MCP server that is not JSON', { bytes: text.length });
      return [];
    }
    const initId = cause && isInitializeRequest(cause) ? requestIds(cause.value)[0] : undefined;
    if (initId !== undefined) {
      const version = negotiatedProtocolVersion(message.value, initId);
      if (version) this.#protocolVersion = version;
    }
    const answered = responseIds(message.value);
    const toLearn = cause && methodOf(cause.value) === 'tools/list' ? resultOf(message.value, requestIds(cause.value)[0]) : undefined;
    const filtered = toLearn === undefined ? undefined : this.#tools.learn(toLearn);
    if (swallowId !== undefined && answered.includes(swallowId)) {
      this.#captured.set(swallowId, resultOf(message.value, swallowId));
      return answered;
    }
    // Tools with invalid annotations are removed from what the client sees; nothing else changes.
    this.#opts.onMessage(filtered === undefined ? message : withResult(message, filtered));
    return answered;
  }

  /**
   * An SSE answer to a POST: every `data` is a message, in order. MCP spec 2025-11-25
   * "Resumability and Redelivery": when the stream ends before the response, the client resumes
   * with GET + Last-Event-ID (after the server's `retry:`), if the server gave event ids.
   */
  async #consumeStream(res: Response, message: RawMessage, swallowId?: JsonRpcId): Promise<void> {
    const pending = new Set(requestIds(message.value));
    const cursor: SseCursor = {};
    let body: SseBody = sseBodyOf(res);
    for (let attempt = 0; ; ) {
      try {
        await readSse(body, (e) => {
          if (!e.data) return;
          for (const id of this.#deliver(e.data, message, swallowId)) pending.delete(id);
        }, cursor);
      } catch (err) {
        if (this.#closed.signal.aborted) return;
        this.#opts.logger.debug('the response stream broke', { error: String(err) });
      }
      if (pending.size === 0 || this.#closed.signal.aborted) return;
      if (cursor.lastEventId === undefined || attempt >= MAX_RESUMES || !this.#sessionId) {
        throw new StreamLostError('the MCP server closed the response stream before answering', [...pending]);
      }
      await pause(reconnectDelayMs(attempt++, cursor.retryMs), this.#closed.signal);
      const resumed = await this.#openGet(cursor.lastEventId).catch(() => undefined);
      if (!resumed) continue;
      body = sseBodyOf(resumed);
    }
  }

  async #openGet(lastEventId: string | undefined, signal?: AbortSignal): Promise<Response | undefined> {
    const headers = this.#headers({ accept: 'text/event-stream' }, this.#sessionId);
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    const res = await this.#opts.fetch(this.#opts.url, { method: 'GET', headers, signal: signal ?? this.#closed.signal });
    if (res.ok && isEventStream(res)) return res;
    await discardBody(res);
    if (res.status === 404 || res.status === 405) return res;
    return undefined;
  }

  // ---- the GET stream ----

  #stopListening(): void {
    this.#listener?.abort();
    this.#listener = undefined;
  }

  #startListening(): void {
    const sessionId = this.#sessionId;
    if (!sessionId || this.#listener || this.#closed.signal.aborted) return;
    const listener = new AbortController();
    this.#listener = listener;
    this.#listen(sessionId, AbortSignal.any([listener.signal, this.#closed.signal]))
      .catch((err: unknown) => this.#opts.logger.debug('the event stream stopped', { error: String(err) }))
      .finally(() => {
        if (this.#listener === listener) this.#listener = undefined;
      });
  }

  /**
   * Keeps the server's GET stream open for server-initiated requests and notifications. 405 = the
   * server offers none. A drop reconnects after `retry:` (or backoff) and resumes with Last-Event-ID
   * so the server can replay what was missed (MCP spec "Resumability and Redelivery").
   */
  async #listen(sessionId: string, signal: AbortSignal): Promise<void> {
    const cursor: SseCursor = {};
    for (let failures = 0; !signal.aborted && this.#sessionId === sessionId; ) {
      let res: Response | undefined;
      try {
        res = await this.#openGet(cursor.lastEventId, signal);
      } catch (err) {
        if (signal.aborted) return;
        this.#opts.logger.debug('could not open the event stream', { error: String(err) });
      }
      if (res?.status === 405) {
        this.#opts.logger.debug('the MCP server offers no event stream (GET 405)');
        return;
      }
      if (res?.status === 404) {
        // The session is gone: start a new one now rather than at the client's next request.
        await this.#reinitialize(sessionId).catch((err: unknown) => this.#opts.logger.warn('re-initializing the session failed', { error: String(err) }));
        return;
      }
      if (res) {
        failures = 0;
        this.#opts.logger.debug('event stream open', { resumedFrom: cursor.lastEventId !== undefined });
        try {
          await readSse(sseBodyOf(res), (e) => {
            if (e.data) this.#deliver(e.data, undefined);
          }, cursor);
        } catch (err) {
          if (signal.aborted) return;
          this.#opts.logger.debug('the event stream broke', { error: String(err) });
        }
        if (signal.aborted) return;
        await pause(reconnectDelayMs(0, cursor.retryMs ?? 1000), signal);
      } else {
        await pause(reconnectDelayMs(failures++, cursor.retryMs), signal);
      }
    }
  }
}

/** `params.name` of a tools/call request (not a batch). */
function toolCallName(value: unknown): string | undefined {
  const m = value as { method?: unknown; params?: { name?: unknown } } | undefined;
  return m && !Array.isArray(m) && m.method === 'tools/call' && typeof m.params?.name === 'string' ? m.params.name : undefined;
}

/** The `result` of the response with this id in a message (not a batch). */
function resultOf(value: unknown, id: JsonRpcId | undefined): unknown {
  const m = value as { id?: unknown; result?: unknown } | undefined;
  return m && !Array.isArray(m) && id !== undefined && m.id === id ? m.result : undefined;
}

function withResult(message: RawMessage, result: unknown): RawMessage {
  const value = { ...(message.value as object), result };
  return { text: JSON.stringify(value), value };
}

/**
 * The body of an error answer: the JSON-RPC message(s) it holds, as received, or else a short
 * excerpt for the proxy's own error.
 */
async function errorBodyOf(res: Response): Promise<RawMessage | string> {
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
