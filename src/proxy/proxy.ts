/**
 * The proxy: an MCP server on stdio that forwards every JSON-RPC message, both ways and untouched,
 * to one remote MCP server, with a token that is always fresh. Clients that can only start local
 * stdio servers (Codex, Claude Desktop, Cursor, VS Code) reach OAuth-protected servers through it.
 *
 * The forwarding rules (transport fallback, held requests while signing in, errors naming the
 * command to run) are the Forwarder's, shared with the HTTP gateway; this file is the stdio edge:
 * line framing, the ids still waiting for an answer, and shutdown.
 */
import type { Readable, Writable } from 'node:stream';
import type { FetchLike, Logger, ServerConfig } from '../types.ts';
import { Forwarder } from './forwarder.ts';
import { type JsonRpcId, type RawMessage, asStdioLine, cancelledRequestId, parseRaw, requestIds, responseIds } from './messages.ts';
import type { SignInCoordinator } from './signin-coordinator.ts';
import { createLineWriter, readLines } from './stdio.ts';

export { describeFailure } from './forwarder.ts';

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

export function startProxy(opts: ProxyOptions): RunningProxy {
  const { server, logger } = opts;
  /** Client requests not answered yet: an error goes only to these, and to each at most once. */
  const pending = new Set<JsonRpcId>();
  let closing: Promise<void> | undefined;
  const writer = createLineWriter(opts.output, (err) => {
    logger.warn('stdout is closed; shutting down', { error: err.message });
    void close('stdout closed');
  });

  /** Server → client. A JSON-RPC error from the server is logged at the default level: it is what
   * a user looks for when a client misbehaves (its code and id only, never params or data). */
  const toClient = (message: RawMessage): void => {
    for (const id of responseIds(message.value)) pending.delete(id);
    const shape = describe(message);
    if (shape.errorCode !== undefined) logger.info('the MCP server answered with an error', shape);
    logger.debug('server → client', shape);
    writer.write(asStdioLine(message));
  };

  const forwarder = new Forwarder({ server, fetch: opts.fetch, coordinator: opts.coordinator, logger, onMessage: toClient, ordered: true });
  const exchange = { waiting: (id: JsonRpcId) => pending.has(id) };

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
    void forwarder.forward(message, exchange);
  };

  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));

  const close = (reason: string): Promise<void> => {
    closing ??= (async () => {
      logger.info('proxy shutting down', { reason });
      await forwarder.close();
      finished();
    })();
    return closing;
  };

  logger.info('proxy started', { server: server.name, transport: server.oauth.transport ?? 'auto' });
  void readLines(opts.input, onLine).then(() => close('stdin closed'));
  return { done, close };
}

/** What the debug log says about a message: its shape, never its params or results. */
export function describe(message: RawMessage): Record<string, unknown> {
  const v = message.value;
  if (Array.isArray(v)) return { batch: v.length };
  const m = (v ?? {}) as Record<string, unknown>;
  return {
    ...(typeof m.method === 'string' ? { method: m.method } : {}),
    ...(m.id !== undefined ? { id: m.id } : {}),
    ...(m.error && typeof m.error === 'object' ? { errorCode: (m.error as { code?: unknown }).code } : {}),
  };
}
