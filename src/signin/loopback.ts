import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpOAuthError } from '../errors.ts';
import type { Logger } from '../types.ts';
import { silentLogger } from '../types.ts';
import {
  alreadyUsedPage,
  errorPage,
  expiredPage,
  methodNotAllowedPage,
  notFoundPage,
  receivedPage,
  successPage,
} from './pages.ts';
import type { CallbackPage } from './pages.ts';

/**
 * The loopback redirect receiver for native clients (RFC 8252 §7.3; MCP authorization spec:
 * native clients use loopback redirect URIs). It listens on 127.0.0.1 only — never 0.0.0.0 —
 * so nothing on the network can deliver (or steal) the authorization code, and it accepts exactly
 * one redirect.
 */

const CALLBACK_PATH = '/callback';
/** How long the browser waits for the caller to validate state/iss before a neutral page. */
const RESPOND_GRACE_MS = 10_000;

export type CallbackPageResult =
  | { ok: true; serverName: string; clientName?: string }
  | { ok: false; message: string; clientName?: string };

export interface ReceivedCallback {
  params: URLSearchParams;
  /**
   * Sends the browser page. The HTTP response is held until this is called, so the page only
   * says "signed in" after the caller checked state and iss (RFC 9207) and exchanged the code.
   * Idempotent; after 10 s without a call, a neutral page is sent instead.
   */
  respond(result: CallbackPageResult): void;
}

export interface CallbackServer {
  /** `http://127.0.0.1:PORT/callback`, the exact redirect_uri to register and send. */
  redirectUri: string;
  waitForCallback(signal?: AbortSignal): Promise<ReceivedCallback>;
  /** Idempotent; frees the port. A held response gets the neutral page first. */
  close(): Promise<void>;
}

export interface StartCallbackServerOptions {
  /** Fixed port (`callback_port` in config, for pre-registered redirect URIs); else ephemeral. */
  port?: number;
  timeoutMs: number;
  logger?: Logger;
}

export async function startCallbackServer(opts: StartCallbackServerOptions): Promise<CallbackServer> {
  const logger = opts.logger ?? silentLogger;
  let state: 'waiting' | 'received' | 'timed_out' | 'closed' = 'waiting';
  let settle!: { resolve(v: ReceivedCallback): void; reject(e: unknown): void };
  const received = new Promise<ReceivedCallback>((resolve, reject) => (settle = { resolve, reject }));
  // Nobody may be waiting yet when the timeout fires; the rejection is observed via waitForCallback.
  received.catch(() => {});
  let timeout: NodeJS.Timeout | undefined;
  let heldResponse: { res: ServerResponse; params: URLSearchParams; timer: NodeJS.Timeout } | undefined;

  const send = (res: ServerResponse, p: CallbackPage): void => {
    if (res.headersSent || res.writableEnded) return;
    res.writeHead(p.status, {
      'Content-Type': 'text/html; charset=utf-8',
      // The page sits on a URL that carried the code: never cache it, never send it as Referer.
      'Cache-Control': 'no-store',
      'Content-Security-Policy': p.csp,
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      Connection: 'close',
    });
    res.end(p.html);
  };

  const finishHeld = (p: CallbackPage): void => {
    if (!heldResponse) return;
    clearTimeout(heldResponse.timer);
    send(heldResponse.res, p);
    heldResponse = undefined;
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== CALLBACK_PATH) return send(res, notFoundPage());
    // Only the browser's redirect (a GET) counts; anything else must not burn the single use.
    if (req.method !== 'GET') return send(res, methodNotAllowedPage());
    if (state === 'timed_out' || state === 'closed') return send(res, expiredPage());
    if (state === 'received') {
      logger.warn('loopback callback received again; refusing (single use)');
      return send(res, alreadyUsedPage());
    }
    state = 'received';
    clearTimeout(timeout);
    const params = url.searchParams;
    const timer = setTimeout(() => finishHeld(receivedPage(params)), RESPOND_GRACE_MS);
    timer.unref();
    heldResponse = { res, params, timer };
    res.on('close', () => {
      if (heldResponse?.res === res) {
        clearTimeout(heldResponse.timer);
        heldResponse = undefined;
      }
    });
    logger.debug('loopback callback received', { hasCode: params.has('code'), error: params.get('error') ?? undefined });
    let responded = false;
    settle.resolve({
      params,
      respond(result) {
        if (responded) return;
        responded = true;
        finishHeld(
          result.ok ? successPage(result.serverName, result.clientName) : errorPage(result.message, result.clientName),
        );
      },
    });
  };

  const server = createServer(onRequest);
  const port = await listenOnLoopback(server, opts.port);
  const redirectUri = `http://127.0.0.1:${port}${CALLBACK_PATH}`;
  logger.debug('loopback callback server listening', { redirectUri });

  timeout = setTimeout(() => {
    if (state !== 'waiting') return;
    state = 'timed_out';
    settle.reject(
      new McpOAuthError('signin_timeout', `No sign-in completed within ${formatDuration(opts.timeoutMs)}.`, {
        hint: 'run the command again; with --no-browser you can paste the URL instead',
      }),
    );
  }, opts.timeoutMs);
  timeout.unref();

  let closing: Promise<void> | undefined;
  return {
    redirectUri,
    waitForCallback(signal?: AbortSignal): Promise<ReceivedCallback> {
      if (!signal) return received;
      if (signal.aborted) return Promise.reject(signal.reason);
      return new Promise<ReceivedCallback>((resolve, reject) => {
        const onAbort = (): void => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        received.then(
          (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
          (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
        );
      });
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        clearTimeout(timeout);
        if (state === 'waiting') {
          settle.reject(new McpOAuthError('signin_timeout', 'The sign-in was cancelled.'));
        }
        state = state === 'timed_out' ? state : 'closed';
        if (heldResponse) finishHeld(receivedPage(heldResponse.params));
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function listenOnLoopback(server: Server, port: number | undefined): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EADDRINUSE') {
        reject(
          new McpOAuthError('usage', `port ${port} is in use`, {
            hint: 'choose another callback_port in the config, or free the port and run the command again',
            cause: err,
          }),
        );
      } else if (err.code === 'EACCES') {
        reject(
          new McpOAuthError('usage', `not allowed to listen on port ${port}`, {
            hint: 'choose a callback_port above 1024',
            cause: err,
          }),
        );
      } else {
        reject(
          new McpOAuthError('internal', `could not start the sign-in callback server (${err.code ?? err.message})`, {
            cause: err,
          }),
        );
      }
    };
    server.once('error', onError);
    // RFC 8252 §7.3 / §8.3: bind the loopback IP literal, not "localhost" (which may resolve to
    // ::1 or to a non-loopback interface) and never all interfaces. Port 0 = ephemeral.
    server.listen({ port: port ?? 0, host: '127.0.0.1', exclusive: true }, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function formatDuration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) {
    const m = ms / 60_000;
    return `${m} minute${m === 1 ? '' : 's'}`;
  }
  if (ms >= 60_000) return `${(ms / 60_000).toFixed(1)} minutes`;
  const s = Math.round(ms / 100) / 10;
  return `${s} second${s === 1 ? '' : 's'}`;
}

/**
 * For --no-browser: the user pastes where their browser ended up (a page that failed to load,
 * e.g. on another machine). Accepts the full URL, or just its query (`?code=…&state=…` or
 * `code=…&state=…`). The URL's origin and path must be our redirect URI, so a URL from some
 * other flow is not silently accepted. Messages never echo the query: it holds the code.
 */
export function parseRedirectedUrl(text: string, expectedRedirectUri: string): URLSearchParams {
  const trimmed = text.trim();
  if (!trimmed) throw new McpOAuthError('usage', 'nothing was pasted', { hint: pasteHint(expectedRedirectUri) });
  let params: URLSearchParams;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    let pasted: URL;
    try {
      pasted = new URL(trimmed);
    } catch {
      throw new McpOAuthError('usage', 'the pasted text is not a valid URL', { hint: pasteHint(expectedRedirectUri) });
    }
    const expected = new URL(expectedRedirectUri);
    if (pasted.origin !== expected.origin || pasted.pathname !== expected.pathname) {
      throw new McpOAuthError(
        'usage',
        `the pasted URL goes to ${pasted.origin}${pasted.pathname}, not to ${expected.origin}${expected.pathname}`,
        { hint: pasteHint(expectedRedirectUri) },
      );
    }
    params = pasted.searchParams;
  } else {
    // Bare query: must look like one, so stray text (a log line, "yes") is not read as params.
    const query = trimmed.startsWith('?') ? trimmed.slice(1) : trimmed;
    if (!/^[^\s=&]+=[^\s]*$/.test(query)) {
      throw new McpOAuthError('usage', 'the pasted text is neither a URL nor a query string', {
        hint: pasteHint(expectedRedirectUri),
      });
    }
    params = new URLSearchParams(query);
  }
  // RFC 6749 §4.1.2 / §4.1.2.1: a redirect carries either `code` or `error`.
  if (!params.has('code') && !params.has('error')) {
    throw new McpOAuthError('usage', 'the pasted URL has no code or error parameter', {
      hint: pasteHint(expectedRedirectUri),
    });
  }
  return params;
}

function pasteHint(redirectUri: string): string {
  return `copy the whole address from the browser's address bar; it starts with ${redirectUri}?`;
}
