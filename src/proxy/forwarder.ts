/**
 * The forwarding rules shared by the stdio proxy (proxy.ts) and the HTTP gateway (src/gateway/):
 * one client's messages to one remote MCP server, untouched, with a token that is always fresh.
 * What it adds, and nothing else: the transport choice (Streamable HTTP, else the 2024-11-05
 * HTTP+SSE fallback), holding a request while the user signs in (one browser tab, however many
 * requests wait), and a JSON-RPC error naming the command to run when an answer cannot be had.
 */
import { McpOAuthError, loginCommand } from '../errors.ts';
import { DEFAULT_MAX_AUTHORIZATIONS } from '../lifecycle/auth-fetch.ts';
import type { FetchLike, Logger, ServerConfig } from '../types.ts';
import { StreamableHttpSession } from './http-session.ts';
import { LegacySseSession } from './legacy-sse.ts';
import { type JsonRpcId, type RawMessage, PROXY_ERROR, errorResponse, isInitializeRequest, methodOf, requestIds } from './messages.ts';
import { needsSignIn, type SignInCoordinator, type SignInNeed } from './signin-coordinator.ts';
import {
  LegacyTransportSuspected,
  StreamLostError,
  UpstreamHttpError,
  type MessageSink,
  type Route,
  type Upstream,
  type UpstreamOptions,
} from './upstream.ts';

export interface ForwarderOptions {
  server: ServerConfig;
  /** The authenticated fetch (src/client/session.ts). */
  fetch: FetchLike;
  /** Signs in when a request finds the user signed out; absent = answer with an error at once. */
  coordinator?: SignInCoordinator;
  logger: Logger;
  /** Server messages that belong to no exchange with a route of its own (and all of them, for stdio). */
  onMessage: MessageSink;
  /** POST in the client's order (stdio: one ordered stream). HTTP clients order their own requests. */
  ordered?: boolean;
}

/** One client message on its way: where its answers go, and whether anyone still waits for them. */
export interface Exchange extends Route {
  /** Whether the request with this id is still waited for (default: yes). A cancelled one gets no error. */
  waiting?: (id: JsonRpcId) => boolean;
}

const SIGN_IN_CODES = new Set(['signin_required', 'signin_timeout', 'signin_denied', 'insufficient_scope', 'browser_failed']);

export class Forwarder {
  readonly #opts: ForwarderOptions;
  readonly #upstreamOptions: UpstreamOptions;
  #upstream: Upstream;
  /** Config `transport = "streamable-http"` or "sse" pins the transport; otherwise detect once. */
  #mayFallBack: boolean;
  #fellBackFrom: number | undefined;
  /** Until the first initialize is through, the transport is not settled: later messages wait. */
  #gate: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(opts: ForwarderOptions) {
    this.#opts = opts;
    this.#upstreamOptions = { url: opts.server.url, fetch: opts.fetch, logger: opts.logger, onMessage: opts.onMessage, ordered: opts.ordered ?? true };
    const forced = opts.server.oauth.transport;
    this.#upstream = forced === 'sse' ? new LegacySseSession(this.#upstreamOptions) : new StreamableHttpSession(this.#upstreamOptions);
    this.#mayFallBack = forced === undefined;
  }

  get transport(): Upstream['kind'] {
    return this.#upstream.kind;
  }

  /** Sends one client message (or batch); resolves when its exchange is over, never rejects. */
  forward(message: RawMessage, exchange: Exchange = {}): Promise<void> {
    if (isInitializeRequest(message) && this.#mayFallBack) {
      const run = this.#gate.then(() => this.#deliver(message, exchange));
      this.#gate = run;
      return run;
    }
    return this.#gate.then(() => this.#deliver(message, exchange));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#upstream.close().catch((err: unknown) => this.#opts.logger.debug('closing the upstream failed', { error: String(err) }));
  }

  async #deliver(message: RawMessage, exchange: Exchange): Promise<void> {
    const { logger, coordinator } = this.#opts;
    /** Sign-ins this message caused: the first one and step-ups, capped like auth-fetch's. */
    let signIns = 0;
    for (;;) {
      if (this.#closed || exchange.signal?.aborted) return;
      try {
        await this.#upstream.send(message, exchange);
        logger.debug('delivered', { method: methodOf(message.value), transport: this.#upstream.kind });
        if (isInitializeRequest(message)) this.#mayFallBack = false;
        return;
      } catch (err) {
        if (this.#closed || exchange.signal?.aborted) return;
        if (err instanceof LegacyTransportSuspected && this.#mayFallBack) {
          // MCP spec 2025-03-26 "Backwards Compatibility": try the 2024-11-05 transport at the same URL.
          this.#mayFallBack = false;
          this.#fellBackFrom = err.status;
          logger.info('the server does not speak Streamable HTTP; trying the HTTP+SSE transport', { status: err.status });
          const previous = this.#upstream;
          this.#upstream = new LegacySseSession(this.#upstreamOptions);
          void previous.close();
          continue;
        }
        if (needsSignIn(err) && coordinator && signIns < DEFAULT_MAX_AUTHORIZATIONS && !(err instanceof StreamLostError)) {
          // Hold the request while the user signs in, then send it (the server never saw it).
          signIns += 1;
          const scopes = Array.isArray(err.details?.scopes) ? (err.details.scopes as string[]) : undefined;
          const challenge = err.details?.challenge as SignInNeed['challenge'];
          try {
            await coordinator.ensureSignedIn({ scopes, challenge });
          } catch (signInError) {
            this.#answerWithError(message, exchange, signInError);
            return;
          }
          // The client cancelled while it waited: the server need not see the request at all.
          const ids = requestIds(message.value);
          if (ids.length > 0 && exchange.waiting && !ids.some((id) => exchange.waiting!(id))) return;
          continue;
        }
        this.#answerWithError(message, exchange, err);
        return;
      }
    }
  }

  #answerWithError(message: RawMessage, exchange: Exchange, err: unknown): void {
    const { logger, server } = this.#opts;
    const ids = requestIds(message.value).filter((id) => exchange.waiting?.(id) ?? true);
    const { code, text } = describeFailure(err, server.name, this.#fellBackFrom);
    const fields = { method: methodOf(message.value), code, error: text };
    // Nobody waits for an answer (a notification, or a request the client cancelled): debug only.
    if (ids.length) logger.warn('answering the client with an error', fields);
    else if (err instanceof StreamLostError) logger.debug('a stream nobody waits on ended', fields);
    else logger.warn('could not forward a message', fields);
    const sink = exchange.sink ?? this.#opts.onMessage;
    for (const id of ids) sink(errorResponse(id, code, text));
  }
}

/** The JSON-RPC error for a message the proxy could not get answered. Never a secret in it. */
export function describeFailure(err: unknown, serverName: string, fellBackFrom?: number): { code: number; text: string } {
  const login = loginCommand(serverName);
  if (err instanceof McpOAuthError && (SIGN_IN_CODES.has(err.code) || err.hint === login)) {
    const message = err.message.replace(/\s+$/, '');
    return { code: PROXY_ERROR.signInRequired, text: `${message}${/[.!?]$/.test(message) ? '' : '.'} To sign in, run: ${login}` };
  }
  if (err instanceof McpOAuthError) {
    return { code: PROXY_ERROR.upstreamFailed, text: `${err.message}${err.hint ? ` (${err.hint})` : ''}` };
  }
  if (err instanceof StreamLostError) {
    return { code: PROXY_ERROR.connectionLost, text: `The connection to ${serverName} was lost before it answered (${err.message}); retry the request.` };
  }
  if (err instanceof UpstreamHttpError) {
    const legacy = fellBackFrom ? ` (Streamable HTTP answered HTTP ${fellBackFrom}; the HTTP+SSE transport answered ${err.message})` : ` answered ${err.message}`;
    return { code: PROXY_ERROR.upstreamFailed, text: `The MCP server ${serverName}${legacy}.` };
  }
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${(err.cause as NodeJS.ErrnoException).code ?? err.cause.message})` : '';
  return { code: PROXY_ERROR.upstreamFailed, text: `Could not reach the MCP server ${serverName}: ${err instanceof Error ? err.message : String(err)}${cause}.` };
}
