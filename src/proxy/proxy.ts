/**
 * The proxy: an MCP server on stdio that forwards every JSON-RPC message, both ways and untouched,
 * to one remote MCP server, with a token that is always fresh. Clients that can only start local
 * stdio servers (Codex, Claude Desktop, Cursor, VS Code) reach OAuth-protected servers through it.
 *
 * What it adds, and nothing else: sign-in when needed (held requests, one browser tab), a JSON-RPC
 * error naming the command to run when sign-in is not possible, session re-initialization, the
 * legacy HTTP+SSE fallback, and a clean DELETE of the session on exit.
 */
import type { Readable, Writable } from 'node:stream';
import { McpOAuthError, loginCommand } from '../errors.ts';
import { DEFAULT_MAX_AUTHORIZATIONS } from '../lifecycle/auth-fetch.ts';
import type { FetchLike, Logger, ServerConfig } from '../types.ts';
import { StreamableHttpSession } from './http-session.ts';
import { LegacySseSession } from './legacy-sse.ts';
import {
  type JsonRpcId,
  type RawMessage,
  PROXY_ERROR,
  asStdioLine,
  cancelledRequestId,
  errorResponse,
  isInitializeRequest,
  methodOf,
  parseRaw,
  requestIds,
  responseIds,
} from './messages.ts';
import { needsSignIn, type SignInCoordinator, type SignInNeed } from './signin-coordinator.ts';
import { createLineWriter, readLines } from './stdio.ts';
import { LegacyTransportSuspected, StreamLostError, UpstreamHttpError, type Upstream, type UpstreamOptions } from './upstream.ts';

export interface ProxyOptions {
  server: ServerConfig;
  /** The authenticated fetch (src/client/session.ts). */
  fetch: FetchLike;
  /** Signs in when a request finds the user signed out; absent = answer with an error at once. */
  coordinator?: SignInCoordinator;
  input: Readable;
  output: Writable;
  logger: Logger;
}

export interface RunningProxy {
  /** Resolves when the proxy has shut down (stdin ended or close() was called). */
  done: Promise<void>;
  close(reason: string): Promise<void>;
}

const SIGN_IN_CODES = new Set(['signin_required', 'signin_timeout', 'signin_denied', 'insufficient_scope', 'browser_failed']);

export function startProxy(opts: ProxyOptions): RunningProxy {
  const { server, logger } = opts;
  /** Client requests not answered yet: an error goes only to these, and to each at most once. */
  const pending = new Set<JsonRpcId>();
  let closing: Promise<void> | undefined;
  const writer = createLineWriter(opts.output, (err) => {
    logger.warn('stdout is closed; shutting down', { error: err.message });
    void close('stdout closed');
  });

  const toClient = (message: RawMessage): void => {
    for (const id of responseIds(message.value)) pending.delete(id);
    logger.debug('server → client', describe(message));
    writer.write(asStdioLine(message));
  };

  /** Server → client. A JSON-RPC error from the server is logged at the default level: it is what
   * a user looks for when a client misbehaves (its code and id only, never params or data). */
  const fromServer = (message: RawMessage): void => {
    const shape = describe(message);
    if (shape.errorCode !== undefined) logger.info('the MCP server answered with an error', shape);
    toClient(message);
  };

  const upstreamOptions: UpstreamOptions = { url: server.url, fetch: opts.fetch, logger, onMessage: fromServer };
  const forced = server.oauth.transport;
  let upstream: Upstream = forced === 'sse' ? new LegacySseSession(upstreamOptions) : new StreamableHttpSession(upstreamOptions);
  // Config `transport = "streamable-http"` or "sse" pins the transport; otherwise detect once.
  let mayFallBack = forced === undefined;
  let fellBackFrom: number | undefined;
  /** Until the first initialize is through, the transport is not settled: later messages wait. */
  let gate: Promise<void> = Promise.resolve();

  const answerWithError = (message: RawMessage, err: unknown): void => {
    const ids = requestIds(message.value).filter((id) => pending.has(id));
    const { code, text } = describeFailure(err, server.name, fellBackFrom);
    const fields = { method: methodOf(message.value), code, error: text };
    // Nobody waits for an answer (a notification, or a request the client cancelled): debug only.
    if (ids.length) logger.warn('answering the client with an error', fields);
    else if (err instanceof StreamLostError) logger.debug('a stream nobody waits on ended', fields);
    else logger.warn('could not forward a message', fields);
    for (const id of ids) toClient(errorResponse(id, code, text));
  };

  const deliver = async (message: RawMessage): Promise<void> => {
    /** Sign-ins this message caused: the first one and step-ups, capped like auth-fetch's. */
    let signIns = 0;
    for (;;) {
      if (closing) return;
      try {
        await upstream.send(message);
        logger.debug('delivered', { ...describe(message), transport: upstream.kind });
        if (isInitializeRequest(message)) mayFallBack = false;
        return;
      } catch (err) {
        if (closing) return;
        if (err instanceof LegacyTransportSuspected && mayFallBack) {
          // MCP spec 2025-03-26 "Backwards Compatibility": try the 2024-11-05 transport at the same URL.
          mayFallBack = false;
          fellBackFrom = err.status;
          logger.info('the server does not speak Streamable HTTP; trying the HTTP+SSE transport', { status: err.status });
          const previous = upstream;
          upstream = new LegacySseSession(upstreamOptions);
          void previous.close();
          continue;
        }
        if (needsSignIn(err) && opts.coordinator && signIns < DEFAULT_MAX_AUTHORIZATIONS && !(err instanceof StreamLostError)) {
          // Hold the request while the user signs in, then send it (the server never saw it).
          signIns += 1;
          const scopes = Array.isArray(err.details?.scopes) ? (err.details.scopes as string[]) : undefined;
          const challenge = err.details?.challenge as SignInNeed['challenge'];
          try {
            await opts.coordinator.ensureSignedIn({ scopes, challenge });
          } catch (signInError) {
            answerWithError(message, signInError);
            return;
          }
          // The client cancelled while it waited: the server need not see the request at all.
          const ids = requestIds(message.value);
          if (ids.length > 0 && !ids.some((id) => pending.has(id))) return;
          continue;
        }
        answerWithError(message, err);
        return;
      }
    }
  };

  const onLine = (line: string): void => {
    if (closing) return;
    const message = parseRaw(line);
    if (!message) {
      // JSON-RPC 2.0 §5.1: -32700 Parse error, id null.
      logger.warn('the client sent a line that is not JSON', { bytes: line.length });
      writer.write(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }));
      return;
    }
    for (const id of requestIds(message.value)) pending.add(id);
    // A cancelled request gets no answer (MCP spec "Cancellation"), not even a proxy error.
    const cancelled = cancelledRequestId(message.value);
    if (cancelled !== undefined) pending.delete(cancelled);
    logger.debug('client → server', describe(message));
    if (isInitializeRequest(message) && mayFallBack) {
      gate = gate.then(() => deliver(message));
    } else {
      void gate.then(() => deliver(message));
    }
  };

  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));

  const close = (reason: string): Promise<void> => {
    closing ??= (async () => {
      logger.info('proxy shutting down', { reason });
      await upstream.close().catch((err: unknown) => logger.debug('closing the upstream failed', { error: String(err) }));
      finished();
    })();
    return closing;
  };

  logger.info('proxy started', { server: server.name, transport: forced ?? 'auto' });
  void readLines(opts.input, onLine).then(() => close('stdin closed'));
  return { done, close };
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

/** What the debug log says about a message: its shape, never its params or results. */
function describe(message: RawMessage): Record<string, unknown> {
  const v = message.value;
  if (Array.isArray(v)) return { batch: v.length };
  const m = (v ?? {}) as Record<string, unknown>;
  return {
    ...(typeof m.method === 'string' ? { method: m.method } : {}),
    ...(m.id !== undefined ? { id: m.id } : {}),
    ...(m.error && typeof m.error === 'object' ? { errorCode: (m.error as { code?: unknown }).code } : {}),
  };
}
