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
  cancelledRequestId,
  isInitializeRequest,
  isInitializedNotification,
  methodOf,
  negotiatedProtocolVersion,
  notification,
  parseRaw,
  requestIds,
  responseIds,
  withId,
  resultOf,
  toolCallName,
  withResult,
} from './messages.ts';
import { isEventStream, isJson, pause, readSse, reconnectDelayMs, sseBodyOf, type SseBody, type SseCursor } from './sse.ts';
import { listenForServerMessages } from './event-stream.ts';
import { isModernProtocolVersion, metaProtocolVersion, requestMetadataHeaders } from '../mcp/request-metadata.ts';
import { ToolHeaderRegistry } from './tool-headers.ts';
import {
  LegacyTransportSuspected,
  StreamLostError,
  UpstreamHttpError,
  discardBody,
  errorBodyOf,
  type MessageSink,
  type Route,
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
  /** 2026-07-28 requests whose answer is still coming, by id: cancelling one closes its stream. */
  readonly #inflight = new Map<JsonRpcId, AbortController>();
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

  async send(message: RawMessage, route: Route = {}): Promise<void> {
    if (isInitializeRequest(message)) {
      const run = this.#sendInitialize(message, route);
      this.#initializing = run.catch(() => {});
      return run;
    }
    // Nothing but initialize may go before the session exists (MCP spec "Lifecycle").
    await this.#initializing;
    await this.#reinit?.catch(() => {});
    // A re-initialization that failed (e.g. sign-in needed) is tried again before anything else.
    if (this.#lost) await this.#reinitialize(undefined);
    const cancelled = cancelledRequestId(message.value);
    const inflight = cancelled === undefined ? undefined : this.#inflight.get(cancelled);
    if (inflight) {
      // A 2026-07-28 request: there is no notifications/cancelled over HTTP, the stream is closed.
      this.#opts.logger.debug('cancelled a request by closing its response stream', { id: cancelled });
      inflight.abort();
      return;
    }
    if (await this.#answeredLocally(message, route)) return;
    await this.#exchange(message, true, route);
    // MCP spec "Listening for Messages from the Server": the GET stream, once initialized.
    if (isInitializedNotification(message)) this.#startListening();
  }

  async close(): Promise<void> {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    for (const inflight of this.#inflight.values()) inflight.abort();
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

  async #sendInitialize(message: RawMessage, route: Route): Promise<void> {
    this.#initialize = message;
    this.#stopListening();
    this.#sessionId = undefined;
    this.#lost = false;
    const res = await this.#post(message, undefined, route.signal);
    if (!this.#connectedOnce && (res.status === 400 || res.status === 404 || res.status === 405)) {
      // MCP 2026-07-28 "Backward Compatibility": a 4xx whose body is a JSON-RPC error comes from a
      // Streamable HTTP server (e.g. -32022, the version is not supported: the client negotiates
      // from its list); only another answer means the 2024-11-05 HTTP+SSE transport.
      const answer = await errorBodyOf(res);
      if (typeof answer === 'string') throw new LegacyTransportSuspected(res.status);
      this.#connectedOnce = true;
      this.#deliverErrorAnswer(answer, message, res.status, route);
      return;
    }
    this.#adoptSession(res);
    await this.#consume(res, message, route);
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
      await this.#consume(res, replay, {}, requestIds(replay.value)[0]);
      await this.#exchange(notification('notifications/initialized'), false, {});
      this.#lost = false;
      this.#startListening();
    })().finally(() => {
      this.#reinit = undefined;
    });
    return this.#reinit;
  }

  // ---- one message ----

  async #exchange(message: RawMessage, mayReinitialize: boolean, route: Route): Promise<void> {
    const sessionId = this.#sessionId;
    // MCP 2026-07-28 "Cancellation": closing a request's response stream IS its cancellation; the
    // stdio client's notifications/cancelled is turned into that (see send()). A routed exchange
    // (the gateway) is cancelled by its own signal instead: ids of different clients may collide.
    const [id] = requestIds(message.value);
    const cancel = !route.signal && id !== undefined && isModernProtocolVersion(metaProtocolVersion(message.value)) ? new AbortController() : undefined;
    if (cancel) this.#inflight.set(id!, cancel);
    // A routed exchange ends with its client's HTTP request (the gateway closes those on shutdown);
    // not AbortSignal.any with #closed: the hot path would pay for a composite signal per request.
    const signal = route.signal ?? cancel?.signal;
    try {
      const res = await this.#post(message, sessionId, signal);
      if (res.status === 404 && sessionId !== undefined && mayReinitialize) {
        await discardBody(res);
        await this.#reinitialize(sessionId);
        return this.#exchange(message, false, route);
      }
      await this.#consume(res, message, route);
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    } finally {
      if (cancel && this.#inflight.get(id!) === cancel) this.#inflight.delete(id!);
    }
  }

  /**
   * POSTs in the order the client sent them: each waits until the previous one's response headers
   * arrived (the server has it), or briefly for a request whose server answers only when done.
   */
  async #post(message: RawMessage, sessionId: string | undefined, cancel?: AbortSignal): Promise<Response> {
    if (this.#opts.ordered === false) return this.#postNow(message, sessionId, cancel);
    const previous = this.#order;
    let release!: () => void;
    this.#order = new Promise<void>((resolve) => (release = resolve));
    await previous;
    const timer = requestIds(message.value).length > 0 ? setTimeout(release, ORDERING_WAIT_MS) : undefined;
    try {
      return await this.#postNow(message, sessionId, cancel);
    } finally {
      clearTimeout(timer);
      release();
    }
  }

  #postNow(message: RawMessage, sessionId: string | undefined, cancel?: AbortSignal): Promise<Response> {
    // MCP spec "Sending Messages to the Server": Accept lists both answer forms.
    const headers = this.#headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, sessionId, message.value);
    // Not AbortSignal.any per request (it costs on the hot path): close() aborts every in-flight one.
    const signal = cancel ?? this.#closed.signal;
    return this.#opts.fetch(this.#opts.url, { method: 'POST', headers, body: message.text, signal });
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
  async #answeredLocally(message: RawMessage, route: Route): Promise<boolean> {
    const modern = isModernProtocolVersion(metaProtocolVersion(message.value) ?? this.#protocolVersion);
    const refusal = await this.#tools.refusalFor(message.value, modern, (params) => this.#ownRequest('tools/list', params));
    if (refusal) (route.sink ?? this.#opts.onMessage)(refusal);
    return refusal !== undefined;
  }

  /** One request of the proxy's own, answered to the proxy alone (deliver() still learns from it). */
  async #ownRequest(method: string, params: Record<string, unknown>): Promise<unknown> {
    const id = `mcp-oauth-proxy-${method.replace('/', '-')}-${++this.#ownRequests}`;
    const value = { jsonrpc: '2.0', id, method, params };
    const request: RawMessage = { text: JSON.stringify(value), value };
    const res = await this.#post(request, this.#sessionId);
    await this.#consume(res, request, {}, id);
    const result = this.#captured.get(id);
    this.#captured.delete(id);
    return result;
  }

  async #consume(res: Response, message: RawMessage, route: Route, swallowId?: JsonRpcId): Promise<void> {
    // 202 Accepted: a notification or response was taken; nothing comes back.
    if (res.status === 202) return discardBody(res);
    if (!res.ok) {
      // "Server JSON-RPC errors reach the client exactly as sent, whatever the HTTP status".
      const answer = await errorBodyOf(res);
      if (typeof answer === 'string') throw new UpstreamHttpError(res.status, answer);
      this.#deliverErrorAnswer(answer, message, res.status, route, swallowId);
      return;
    }
    if (isEventStream(res)) return this.#consumeStream(res, message, route, swallowId);
    const text = await res.text();
    if (!text.trim()) return;
    if (!isJson(res)) this.#opts.logger.warn('the MCP server answered with an unexpected content type', { contentType: res.headers.get('content-type') });
    this.#deliver(text, message, route.sink, swallowId);
  }

  /**
   * A JSON-RPC error the server sent with an HTTP error status, to the client as sent. One with
   * `id: null` (a 2025 server refusing a session-less request, say) is still the server's answer to
   * this one request: a stdio client can only match it by its id and would otherwise wait forever,
   * so it goes on with the request's id and nothing else changed.
   */
  #deliverErrorAnswer(answer: RawMessage, cause: RawMessage, status: number, route: Route, swallowId?: JsonRpcId): void {
    const asked = requestIds(cause.value);
    if (responseIds(answer.value).length === 0 && asked.length === 1 && !Array.isArray(answer.value)) {
      this.#opts.logger.info('the MCP server answered a request with an error that names no id', { status });
      this.#deliver(JSON.stringify({ ...(answer.value as object), id: asked[0] }), cause, route.sink, swallowId, status);
      return;
    }
    this.#deliver(answer.text, cause, route.sink, swallowId, status);
  }

  /** One message (or batch) from the server: to the client, unless it answers our replayed initialize. */
  #deliver(text: string, cause: RawMessage | undefined, sink: MessageSink | undefined, swallowId?: JsonRpcId, status?: number): JsonRpcId[] {
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
    (sink ?? this.#opts.onMessage)(filtered === undefined ? message : withResult(message, filtered), status);
    return answered;
  }

  /**
   * An SSE answer to a POST: every `data` is a message, in order. MCP spec 2025-11-25
   * "Resumability and Redelivery": when the stream ends before the response, the client resumes
   * with GET + Last-Event-ID (after the server's `retry:`), if the server gave event ids.
   */
  async #consumeStream(res: Response, message: RawMessage, route: Route, swallowId?: JsonRpcId): Promise<void> {
    const pending = new Set(requestIds(message.value));
    const cursor: SseCursor = {};
    let body: SseBody = sseBodyOf(res);
    for (let attempt = 0; ; ) {
      try {
        await readSse(body, (e) => {
          if (!e.data) return;
          for (const id of this.#deliver(e.data, message, route.sink, swallowId)) pending.delete(id);
        }, cursor);
      } catch (err) {
        if (this.#closed.signal.aborted || route.signal?.aborted) return;
        this.#opts.logger.debug('the response stream broke', { error: String(err) });
      }
      if (pending.size === 0 || this.#closed.signal.aborted || route.signal?.aborted) return;
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
    listenForServerMessages(
      {
        logger: this.#opts.logger,
        stillCurrent: () => this.#sessionId === sessionId,
        open: (lastEventId, signal) => this.#openGet(lastEventId, signal),
        deliver: (data) => void this.#deliver(data, undefined, undefined),
        sessionGone: () => this.#reinitialize(sessionId),
      },
      AbortSignal.any([listener.signal, this.#closed.signal]),
    )
      .catch((err: unknown) => this.#opts.logger.debug('the event stream stopped', { error: String(err) }))
      .finally(() => {
        if (this.#listener === listener) this.#listener = undefined;
      });
  }
}
