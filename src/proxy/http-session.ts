/**
 * The client side of MCP Streamable HTTP (spec 2025-11-25 "Transports"): every client message is
 * a POST; the answer is one JSON body or an SSE stream of several messages; an optional GET stream
 * carries server-initiated messages; the session id and the negotiated protocol version ride on
 * every request after initialize; a forgotten session (404) is re-initialized transparently.
 */
import {
  type JsonRpcId,
  type RawMessage,
  isInitializeRequest,
  isInitializedNotification,
  negotiatedProtocolVersion,
  notification,
  parseRaw,
  requestIds,
  responseIds,
  withId,
} from './messages.ts';
import { isEventStream, isJson, pause, readSse, reconnectDelayMs, sseBodyOf, type SseBody, type SseCursor } from './sse.ts';
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
      await discardBody(res);
      throw new LegacyTransportSuspected(res.status);
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
      const headers = this.#headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, sessionId);
      return await this.#opts.fetch(this.#opts.url, { method: 'POST', headers, body: message.text, signal: this.#closed.signal });
    } finally {
      clearTimeout(timer);
      release();
    }
  }

  #headers(extra: Record<string, string>, sessionId: string | undefined): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (sessionId) h['mcp-session-id'] = sessionId;
    // MCP spec "Protocol Version Header": the negotiated version on every request after initialize.
    if (this.#protocolVersion) h['mcp-protocol-version'] = this.#protocolVersion;
    return h;
  }

  async #consume(res: Response, message: RawMessage, swallowId?: JsonRpcId): Promise<void> {
    // 202 Accepted: a notification or response was taken; nothing comes back.
    if (res.status === 202) return discardBody(res);
    if (!res.ok) throw new UpstreamHttpError(res.status, await bodyExcerpt(res));
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
    if (swallowId !== undefined && answered.includes(swallowId)) return answered;
    this.#opts.onMessage(message);
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
