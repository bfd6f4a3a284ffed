/**
 * Everything the gateway keeps for one configured server: one authenticated fetch and one sign-in
 * coordinator (so every client shares one credential, one refresh per expiry and one browser tab),
 * one stateless forwarder for MCP 2026-07-28 requests (no session: any client, any gateway), and a
 * forwarder per 2025-era client session (MCP 2025-11-25 "Session Management": the gateway is the
 * server its clients see, so it hands out its own session ids and keeps one upstream session each).
 */
import type { ServerResponse } from 'node:http';
import { crypto } from '../builtins.ts';
import { Forwarder } from '../proxy/forwarder.ts';
import { type JsonRpcId, type RawMessage, responseIds } from '../proxy/messages.ts';
import type { SignInCoordinator } from '../proxy/signin-coordinator.ts';
import type { FetchLike, Logger, ServerConfig } from '../types.ts';
import type { MessageSink } from '../proxy/upstream.ts';
import { sseEvent } from './answer.ts';

/** Server messages kept for a 2025 session whose client has no GET stream open. */
const MAX_QUEUED = 100;

export interface ServerAuth {
  fetch: FetchLike;
  coordinator?: SignInCoordinator;
}

/** One 2025-era client session: its own upstream session, and its GET stream when it has one. */
export class ClientSession {
  readonly id = crypto().randomUUID();
  readonly forwarder: Forwarder;
  lastUsed = Date.now();
  #stream: ServerResponse | undefined;
  readonly #queued: RawMessage[] = [];
  /** POSTs waiting for answers that arrive outside their own exchange (the 2024-11-05 transport). */
  readonly #waiting = new Map<JsonRpcId, MessageSink>();
  readonly #logger: Logger;

  constructor(server: ServerConfig, auth: ServerAuth, logger: Logger) {
    this.#logger = logger;
    this.forwarder = new Forwarder({ server, fetch: auth.fetch, coordinator: auth.coordinator, logger, ordered: false, onMessage: (m) => this.#fromServer(m) });
  }

  /** An answer's ids: where a response that comes outside the exchange goes. */
  expect(ids: JsonRpcId[], sink: MessageSink): () => void {
    for (const id of ids) this.#waiting.set(id, sink);
    return () => {
      for (const id of ids) if (this.#waiting.get(id) === sink) this.#waiting.delete(id);
    };
  }

  /** MCP spec "Listening for Messages from the Server": one GET stream per session at a time here. */
  openStream(res: ServerResponse): void {
    this.#stream?.end();
    this.#stream = res;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'mcp-session-id': this.id });
    res.flushHeaders();
    for (const m of this.#queued.splice(0)) res.write(sseEvent(m));
    res.on('close', () => {
      if (this.#stream === res) this.#stream = undefined;
    });
  }

  get streaming(): boolean {
    return this.#stream !== undefined;
  }

  async close(): Promise<void> {
    this.#stream?.end();
    this.#stream = undefined;
    await this.forwarder.close();
  }

  #fromServer(message: RawMessage): void {
    const [id] = responseIds(message.value);
    const sink = id === undefined ? undefined : this.#waiting.get(id);
    if (sink) {
      sink(message);
      return;
    }
    if (this.#stream) {
      this.#stream.write(sseEvent(message));
      return;
    }
    if (this.#queued.length >= MAX_QUEUED) this.#queued.shift();
    this.#queued.push(message);
    this.#logger.debug('kept a server message until the client opens its event stream', { queued: this.#queued.length });
  }
}

export class ServerRuntime {
  readonly server: ServerConfig;
  readonly auth: ServerAuth;
  /** MCP 2026-07-28: requests carry everything in themselves; one upstream serves every client. */
  readonly stateless: Forwarder;
  readonly sessions = new Map<string, ClientSession>();
  readonly #logger: Logger;

  constructor(server: ServerConfig, auth: ServerAuth, logger: Logger) {
    this.server = server;
    this.auth = auth;
    this.#logger = logger;
    this.stateless = new Forwarder({
      server,
      fetch: auth.fetch,
      coordinator: auth.coordinator,
      logger,
      ordered: false,
      // Every stateless answer travels on its own exchange's route; nothing else can come.
      onMessage: (m) => logger.debug('dropped a server message outside any request', { bytes: m.text.length }),
    });
  }

  newSession(): ClientSession {
    const session = new ClientSession(this.server, this.auth, this.#logger);
    this.sessions.set(session.id, session);
    return session;
  }

  async endSession(id: string): Promise<boolean> {
    const session = this.sessions.get(id);
    if (!session) return false;
    this.sessions.delete(id);
    await session.close();
    return true;
  }

  /** Sessions whose client went away without a DELETE (Codex restarts its servers every session). */
  async sweep(idleMs: number, now = Date.now()): Promise<void> {
    for (const [id, session] of this.sessions) {
      if (!session.streaming && now - session.lastUsed > idleMs) {
        this.#logger.info('ended an idle client session', { server: this.server.name });
        await this.endSession(id);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((id) => this.endSession(id)));
    await this.stateless.close();
  }
}
