/**
 * The soak's fault layer: a small HTTP server in front of the sandbox authorization server's token
 * endpoint (the sandbox advertises it as `token_endpoint`: `startSandbox({ tokenEndpointUrl })`).
 * It forwards every token request to the real oidc-provider and, for refreshes only, injects what
 * a real server cannot be made to do on demand:
 * - `status`: answer 503 `temporarily_unavailable` (RFC 6749 §5.2) without asking the AS;
 * - `hang`: accept the request and never answer (nor forward it), so the client's HTTP deadline
 *   (MCP_OAUTH_HTTP_TIMEOUT_MS) fires;
 * - `late`: forward it (the AS rotates the refresh token) and hold the answer past that deadline;
 * - an intercept: hold one refresh either before the AS sees it or after the AS rotated, until the
 *   soak says what to do (the kill run kills the process that sent it in that window).
 * It also remembers when the newest access token that reached a client expires, so a failed call
 * can be judged: did it fail while a valid token existed?
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FaultMode = { kind: 'pass' } | { kind: 'status'; status: number } | { kind: 'hang' } | { kind: 'late'; delayMs: number };
export type InterceptPhase = 'before' | 'after';

/** A refresh held by an intercept; `release` decides its fate. */
export interface HeldRefresh {
  phase: InterceptPhase;
  /** The client's TCP port (soak/socket-owner.ts finds its process). */
  remotePort: number;
  at: number;
  /** before: 'forward' sends it on, 'drop' never forwards it; after: 'deliver' or 'drop' the answer. */
  release(action: 'forward' | 'deliver' | 'drop'): void;
}

export interface FaultStats {
  /** Refresh requests that reached this layer. */
  refreshAttempts: number;
  /** Refresh requests forwarded to the authorization server. */
  refreshesForwarded: number;
  /** Refresh requests answered by the fault (503 or never). */
  refreshesFaulted: number;
  /** Answers from the AS that the client never received (late answers, dropped answers). */
  answersLost: number;
  /** Other token requests (the sign-ins' authorization_code exchanges), all forwarded. */
  otherTokenRequests: number;
}

export interface FaultServer {
  /** The URL to advertise as `token_endpoint`. */
  tokenUrl: string;
  port: number;
  setTarget(asTokenUrl: string): void;
  setMode(mode: FaultMode): void;
  mode(): FaultMode;
  /** Holds the next refresh in `phase`; resolves when one is held. */
  intercept(phase: InterceptPhase): Promise<HeldRefresh>;
  cancelIntercept(): void;
  /** Expiry (epoch ms) of the newest access token delivered to a client by time `at` (default
   * now); 0 before the first. Conservative: counted from when the request arrived here. */
  validUntil(at?: number): number;
  /** Every access token delivered: when, and until when it is valid. */
  deliveries: Array<{ at: number; validUntil: number; refresh: boolean }>;
  stats: FaultStats;
  resetStats(): void;
  close(): Promise<void>;
}

function emptyStats(): FaultStats {
  return { refreshAttempts: 0, refreshesForwarded: 0, refreshesFaulted: 0, answersLost: 0, otherTokenRequests: 0 };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const FORWARDED_HEADERS = ['content-type', 'authorization', 'accept', 'dpop', 'user-agent'];

export async function startFaultServer(): Promise<FaultServer> {
  let target = '';
  let mode: FaultMode = { kind: 'pass' };
  let stats = emptyStats();
  const deliveries: Array<{ at: number; validUntil: number; refresh: boolean }> = [];
  let pending: { phase: InterceptPhase; resolve: (h: HeldRefresh) => void } | undefined;
  const open = new Set<ServerResponse>();

  /** Holds this refresh if an intercept for `phase` is armed; resolves with what to do. */
  function hold(phase: InterceptPhase, req: IncomingMessage): Promise<'forward' | 'deliver' | 'drop'> | undefined {
    if (!pending || pending.phase !== phase) return undefined;
    const { resolve } = pending;
    pending = undefined;
    return new Promise((decide) => resolve({ phase, remotePort: req.socket.remotePort ?? 0, at: Date.now(), release: decide }));
  }

  async function forward(body: string, req: IncomingMessage): Promise<{ status: number; headers: Record<string, string>; text: string }> {
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_HEADERS) {
      const v = req.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    const res = await fetch(target, { method: 'POST', headers, body });
    const out: Record<string, string> = {};
    for (const name of ['content-type', 'cache-control', 'pragma', 'www-authenticate', 'dpop-nonce']) {
      const v = res.headers.get(name);
      if (v) out[name] = v;
    }
    return { status: res.status, headers: out, text: await res.text() };
  }

  /** Writes the answer if the client is still there; notes the access token's expiry when it was. */
  function deliver(res: ServerResponse, answer: { status: number; headers: Record<string, string>; text: string }, receivedAt: number, refresh: boolean): boolean {
    if (res.destroyed || res.socket?.destroyed) {
      stats.answersLost += 1;
      return false;
    }
    res.writeHead(answer.status, answer.headers);
    res.end(answer.text);
    if (answer.status === 200) {
      try {
        const body = JSON.parse(answer.text) as { access_token?: unknown; expires_in?: unknown };
        // The token is valid from when the AS issued it (at most receivedAt) for expires_in.
        if (typeof body.access_token === 'string' && typeof body.expires_in === 'number') deliveries.push({ at: Date.now(), validUntil: receivedAt + body.expires_in * 1000, refresh });
      } catch {
        // not JSON: nothing to note
      }
    }
    return true;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    open.add(res);
    res.on('close', () => open.delete(res));
    const receivedAt = Date.now();
    const body = await readBody(req);
    if (req.method !== 'POST' || !target) {
      res.writeHead(req.method === 'POST' ? 503 : 405).end();
      return;
    }
    const isRefresh = new URLSearchParams(body).get('grant_type') === 'refresh_token';
    if (!isRefresh) {
      stats.otherTokenRequests += 1;
      deliver(res, await forward(body, req), receivedAt, false);
      return;
    }
    stats.refreshAttempts += 1;
    const before = hold('before', req);
    if (before && (await before) === 'drop') {
      // Killed before the request left the process, as far as the AS can tell: it never sees it.
      stats.refreshesFaulted += 1;
      res.destroy();
      return;
    }
    const now = mode;
    if (now.kind === 'status') {
      stats.refreshesFaulted += 1;
      res.writeHead(now.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'soak fault layer' }));
      return;
    }
    if (now.kind === 'hang') {
      // Never answered: the client's deadline ends it (res 'close'), or close() does.
      stats.refreshesFaulted += 1;
      return;
    }
    stats.refreshesForwarded += 1;
    const answer = await forward(body, req);
    if (now.kind === 'late') await new Promise((r) => setTimeout(r, now.delayMs));
    const after = hold('after', req);
    if (after && (await after) === 'drop') {
      stats.answersLost += 1;
      res.destroy();
      return;
    }
    deliver(res, answer, receivedAt, true);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    tokenUrl: `http://127.0.0.1:${port}/token`,
    port,
    setTarget(url) {
      target = url;
    },
    setMode(m) {
      mode = m;
    },
    mode: () => mode,
    intercept(phase) {
      return new Promise((resolve) => (pending = { phase, resolve }));
    },
    cancelIntercept() {
      pending = undefined;
    },
    validUntil(at = Date.now()) {
      let until = 0;
      for (const d of deliveries) if (d.at <= at) until = Math.max(until, d.validUntil);
      return until;
    },
    deliveries,
    get stats() {
      return stats;
    },
    resetStats() {
      stats = emptyStats();
    },
    async close() {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
