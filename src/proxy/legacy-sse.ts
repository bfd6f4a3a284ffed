/**
 * The client side of the HTTP+SSE transport of MCP 2024-11-05: GET opens an SSE stream whose first
 * event, `endpoint`, names the URL to POST messages to; every server message (responses included)
 * arrives on that stream as a `message` event. Servers that never moved to Streamable HTTP still
 * speak it (MCP spec 2025-03-26 "Backwards Compatibility").
 */
import {
  type JsonRpcId,
  type RawMessage,
  PROXY_ERROR,
  errorResponse,
  isInitializeRequest,
  notification,
  parseRaw,
  requestIds,
  responseIds,
  withId,
} from './messages.ts';
import { isEventStream, pause, readSse, reconnectDelayMs, sseBodyOf } from './sse.ts';
import { UpstreamHttpError, bodyExcerpt, discardBody, type Upstream, type UpstreamOptions } from './upstream.ts';

/** How long a replayed initialize may take before the reconnect is tried again. */
const REINITIALIZE_TIMEOUT_MS = 15_000;
/** How long the server may take to name its POST endpoint on a new stream. */
const ENDPOINT_TIMEOUT_MS = 30_000;

export class LegacySseSession implements Upstream {
  readonly kind = 'sse' as const;
  readonly #opts: UpstreamOptions;
  readonly #closed = new AbortController();
  /** Resolves to the POST endpoint of the live stream. */
  #connection: Promise<URL> | undefined;
  #initialize: RawMessage | undefined;
  #reconnecting: Promise<void> | undefined;
  /** Client requests the server has accepted but not answered yet: failed if the stream drops. */
  readonly #pending = new Set<JsonRpcId>();
  /** Answers to our own replayed initialize, which the client must not see. */
  readonly #swallow = new Map<JsonRpcId, () => void>();
  #reinits = 0;

  constructor(opts: UpstreamOptions) {
    this.#opts = opts;
  }

  async send(message: RawMessage): Promise<void> {
    if (isInitializeRequest(message)) this.#initialize = message;
    else await this.#reconnecting?.catch(() => {});
    await this.#post(message, true);
  }

  async close(): Promise<void> {
    // 2024-11-05 has no session DELETE: closing the stream ends the session.
    this.#closed.abort();
  }

  async #post(message: RawMessage, track: boolean): Promise<void> {
    const endpoint = await this.#connect();
    const ids = track ? requestIds(message.value) : [];
    for (const id of ids) this.#pending.add(id);
    try {
      const res = await this.#opts.fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: message.text,
        signal: this.#closed.signal,
      });
      if (!res.ok) throw new UpstreamHttpError(res.status, await bodyExcerpt(res));
      // 202 Accepted (or 200): the answer comes on the stream.
      await discardBody(res);
    } catch (err) {
      for (const id of ids) this.#pending.delete(id);
      throw err;
    }
  }

  #connect(): Promise<URL> {
    this.#connection ??= this.#open();
    return this.#connection;
  }

  /** Opens the stream; resolves with the endpoint once the server names it. */
  #open(): Promise<URL> {
    const base = new URL(this.#opts.url);
    return new Promise<URL>((resolve, reject) => {
      let established = false;
      // A stream that never names its endpoint must not hold the client's messages forever.
      const stop = new AbortController();
      const noEndpoint = setTimeout(() => stop.abort(new Error(`no endpoint event within ${ENDPOINT_TIMEOUT_MS / 1000} s`)), ENDPOINT_TIMEOUT_MS);
      const signal = AbortSignal.any([this.#closed.signal, stop.signal]);
      const run = async () => {
        const res = await this.#opts.fetch(base, { method: 'GET', headers: { accept: 'text/event-stream' }, signal });
        if (!res.ok || !isEventStream(res)) {
          const detail = res.ok ? `expected an SSE stream, got ${res.headers.get('content-type') ?? 'no content type'}` : await bodyExcerpt(res);
          await discardBody(res);
          throw new UpstreamHttpError(res.status, detail);
        }
        await readSse(sseBodyOf(res), (e) => {
          if (e.event === 'endpoint') {
            const endpoint = new URL(e.data.trim(), base);
            // The bearer token goes wherever this points: only ever to the server's own origin.
            if (endpoint.origin !== base.origin) throw new Error(`the server named an endpoint on another origin (${endpoint.origin})`);
            established = true;
            clearTimeout(noEndpoint);
            this.#opts.logger.debug('legacy SSE endpoint received');
            resolve(endpoint);
          } else if ((e.event === undefined || e.event === 'message') && e.data) {
            this.#deliver(e.data);
          }
        });
      };
      run().finally(() => clearTimeout(noEndpoint)).then(
        () => {
          if (!established) reject(new UpstreamHttpError(200, 'the SSE stream ended before the server named its endpoint'));
          this.#dropped(established, new Error('the server closed the stream'));
        },
        (err: unknown) => {
          if (!established) reject(stop.signal.aborted ? new UpstreamHttpError(200, String(stop.signal.reason?.message ?? 'no endpoint event')) : err);
          this.#dropped(established, err);
        },
      );
    });
  }

  #dropped(established: boolean, err: unknown): void {
    this.#connection = undefined;
    if (this.#closed.signal.aborted) return;
    if (!established) return;
    this.#opts.logger.warn('the legacy SSE stream dropped; reconnecting', { error: String(err) });
    for (const id of this.#pending) {
      this.#opts.onMessage(errorResponse(id, PROXY_ERROR.connectionLost, 'The connection to the MCP server was lost before it answered; retry the request.'));
    }
    this.#pending.clear();
    if (this.#initialize) this.#reconnecting ??= this.#reconnect().finally(() => (this.#reconnecting = undefined));
  }

  /** A new stream is a new session: replay the client's initialize, swallow its answer. */
  async #reconnect(): Promise<void> {
    for (let attempt = 0; !this.#closed.signal.aborted; attempt++) {
      await pause(reconnectDelayMs(attempt), this.#closed.signal);
      try {
        const replay = withId(this.#initialize!, `mcp-oauth-proxy-reinitialize-${++this.#reinits}`);
        const id = requestIds(replay.value)[0];
        const answered = new Promise<void>((resolve) => this.#swallow.set(id, resolve));
        await this.#post(replay, false);
        const timedOut = await Promise.race([answered.then(() => false), pause(REINITIALIZE_TIMEOUT_MS, this.#closed.signal).then(() => true)]);
        this.#swallow.delete(id);
        if (timedOut) continue;
        await this.#post(notification('notifications/initialized'), false);
        this.#opts.logger.info('reconnected to the legacy SSE server');
        return;
      } catch (err) {
        this.#opts.logger.debug('legacy SSE reconnect failed', { error: String(err) });
      }
    }
  }

  #deliver(text: string): void {
    const message = parseRaw(text);
    if (!message) {
      this.#opts.logger.warn('dropped a message from the MCP server that is not JSON', { bytes: text.length });
      return;
    }
    const answered = responseIds(message.value);
    for (const id of answered) {
      const swallowed = this.#swallow.get(id);
      if (swallowed) return swallowed();
    }
    for (const id of answered) this.#pending.delete(id);
    this.#opts.onMessage(message);
  }
}
