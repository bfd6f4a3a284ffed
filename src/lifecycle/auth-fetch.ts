/**
 * A `fetch` that is always signed in: it adds the Bearer token (RFC 6750 §2.1) when there is a
 * credential, and otherwise sends none until the server asks (MCP 2026-07-28 "Authorization Flow
 * Steps": the 401 and its challenge start discovery and sign-in); it refreshes and retries once on
 * 401 (RFC 6750 §3.1 invalid_token), and steps up scopes on 403 insufficient_scope (MCP 2026-07-28
 * "Step-Up Authorization Flow"). Responses are passed on untouched and unbuffered, so Streamable
 * HTTP / SSE streams keep streaming.
 */
import { McpOAuthError, loginCommand } from '../errors.ts';
import { parseBearerChallenge, type BearerChallenge } from '../oauth/www-authenticate.ts';
import type { FetchLike, Logger } from '../types.ts';
import { silentLogger } from '../types.ts';
import type { TokenManager } from './token-manager.ts';
import { headersForRawBody } from '../mcp/request-metadata.ts';

/**
 * Authorization requests (sign-ins) one operation may cause, the first one and step-ups together.
 * MCP 2026-07-28 "Step-Up Authorization Flow": retry "no more than a few times" and track scope
 * upgrade attempts; a server that keeps answering insufficient_scope must not loop the browser.
 */
export const DEFAULT_MAX_AUTHORIZATIONS = 3;

type RequestBody = NonNullable<RequestInit['body']>;

/**
 * A request body that can be sent twice. Strings, bytes, Blobs, URLSearchParams and FormData are
 * re-serialised by fetch on every call; a stream can be read only once, so it is buffered. That is
 * safe to replay after a 401: the server refused before running the request (RFC 6750 §3.1).
 */
export async function replayableBody(body: RequestInit['body']): Promise<RequestBody | undefined> {
  if (body === undefined || body === null) return undefined;
  if (isReplayable(body)) return body;
  // ReadableStream or (async) iterable: read it once, keep the bytes.
  return new Uint8Array(await new Response(body as BodyInit).arrayBuffer());
}

/**
 * The common kinds first: `FormData` and `Response` are undici's globals, and touching one loads
 * undici (~50 ms), which a caller on node:http (the proxy) never needs.
 */
function isReplayable(body: RequestBody): boolean {
  return (
    typeof body === 'string' ||
    ArrayBuffer.isView(body) ||
    body instanceof ArrayBuffer ||
    body instanceof URLSearchParams ||
    body instanceof Blob ||
    body instanceof FormData
  );
}

function isHeaders(headers: HeadersInit): headers is Headers {
  return typeof (headers as Headers).forEach === 'function' && typeof (headers as Headers).get === 'function';
}

/**
 * The caller's headers plus `Authorization`, replacing any Authorization the caller set: exactly
 * one set of credentials (RFC 6750 §2). A plain record or pairs stay plain (no undici `Headers`
 * per request); a `Headers` object stays one.
 */
function headersWithBearer(headers: HeadersInit | undefined, token: string, scheme = 'Bearer'): HeadersInit {
  const authorization = `${scheme} ${token}`;
  if (headers === undefined) return { authorization };
  if (Array.isArray(headers)) return [...headers.filter(([name]) => name.toLowerCase() !== 'authorization'), ['authorization', authorization]];
  if (isHeaders(headers)) {
    const copy = new Headers(headers);
    copy.set('authorization', authorization);
    return copy;
  }
  const out: Record<string, string> = {};
  for (const name of Object.keys(headers)) if (name.toLowerCase() !== 'authorization') out[name] = headers[name]!;
  out.authorization = authorization;
  return out;
}

function hasHeader(headers: HeadersInit | undefined, name: string): boolean {
  if (headers === undefined) return false;
  if (Array.isArray(headers)) return headers.some(([n]) => n.toLowerCase() === name);
  if (isHeaders(headers)) return headers.has(name);
  return Object.keys(headers).some((n) => n.toLowerCase() === name);
}

/** `headers` plus those of `extra` the caller did not set itself (names compared case-insensitively). */
function headersWithDefaults(headers: HeadersInit | undefined, extra: Record<string, string>): HeadersInit | undefined {
  const names = Object.keys(extra);
  if (names.length === 0) return headers;
  const copy = new Headers(headers);
  for (const name of names) if (!copy.has(name)) copy.set(name, extra[name]!);
  return copy;
}

function withBearer(init: RequestInit | undefined, body: RequestBody | undefined, token: string | undefined, extra: Record<string, string> = {}): RequestInit {
  const headers = headersWithDefaults(init?.headers, extra);
  const next: RequestInit = token === undefined ? { ...init, ...(headers ? { headers } : {}) } : { ...init, headers: headersWithBearer(headers, token) };
  if (body !== undefined) next.body = body;
  // A buffered stream is no longer a stream: `duplex` only applies to stream bodies.
  if (body instanceof Uint8Array && 'duplex' in next) delete (next as { duplex?: unknown }).duplex;
  return next;
}

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // already closed
  }
}

export function createAuthenticatedFetch(
  manager: TokenManager,
  opts: {
    fetch: FetchLike;
    /** Sign-ins per operation, first and step-ups together (default 3). */
    maxAuthorizations?: number;
    logger?: Logger;
    /** Only requests to this origin get the token (the MCP server's); others are refused. */
    allowedOrigin?: string;
  },
): FetchLike {
  const maxAuthorizations = opts.maxAuthorizations ?? DEFAULT_MAX_AUTHORIZATIONS;
  const logger = opts.logger ?? silentLogger;
  let checkedUrl: string | undefined;
  /** RFC 9449 §9: the latest `DPoP-Nonce` each resource server gave us, sent with the next proof. */
  const dpopNonces = new Map<string, string>();

  return async (input, init) => {
    // RFC 6750 §5.3 / RFC 9700 §4.10: a bearer token is only ever presented to the resource server
    // it was issued for. A redirect target or an SSE `endpoint` on another origin does not get it.
    // The proxy sends every message to one URL: a string already checked is not parsed again.
    if (opts.allowedOrigin && input !== checkedUrl) {
      const target = new URL(typeof input === 'string' || input instanceof URL ? input : (input as Request).url);
      if (target.origin !== opts.allowedOrigin) {
        throw new McpOAuthError('insecure_url', `Refusing to send the access token for ${manager.serverName} to ${target.origin}: it belongs to ${opts.allowedOrigin}.`, {
          hint: 'check the server URL; a server must not send clients to another origin',
        });
      }
      if (typeof input === 'string') checkedUrl = input;
    }
    const raw = init?.body;
    const body = raw === undefined || raw === null ? undefined : isReplayable(raw) ? raw : await replayableBody(raw);
    // MCP 2026-07-28 "Request Metadata": a hand-written 2026-07-28 body gets the headers a strict
    // server requires (MCP-Protocol-Version, Mcp-Method, Mcp-Name), unless the caller set them.
    // (The proxy sets them itself: its bodies are not parsed a second time.)
    const metadata = typeof body === 'string' && !hasHeader(init?.headers, 'mcp-method') ? headersForRawBody(body) : {};
    let token = await manager.tokenForRequest();
    // RFC 9449 §7: a DPoP-bound token goes as `Authorization: DPoP …` with a fresh proof (htm, htu,
    // ath, and the server's current nonce) on every request, made with the credential's key.
    const url = typeof input === 'string' || input instanceof URL ? String(input) : (input as Request).url;
    const method = (init?.method ?? 'GET').toUpperCase();
    const send = async (): Promise<Response> => {
      const key = token === undefined ? undefined : manager.dpopKeyFor(token);
      if (!key || token === undefined) return opts.fetch(input, withBearer(init, body, token, metadata));
      const dpop = await import('../oauth/dpop.ts');
      const origin = new URL(url).origin;
      const proof = await dpop.createDpopProof({ privateJwk: key, htm: method, htu: url, accessToken: token, nonce: dpopNonces.get(origin), now: Date.now() });
      const headers = headersWithDefaults(headersWithBearer(headersWithDefaults(init?.headers, metadata), token, 'DPoP'), { dpop: proof });
      const res = await opts.fetch(input, { ...withBearer(init, body, undefined), headers });
      const nonce = dpop.dpopNonceFrom(res);
      if (nonce) dpopNonces.set(origin, nonce);
      return res;
    };
    let res = await send();
    let nonceRetries = 0;
    let refreshed = false;
    let authorizations = 0;
    /** Runs a lifecycle step and counts the sign-ins it started (joined ones count: the user saw them). */
    const counting = async (step: () => Promise<string>): Promise<string> => {
      const before = manager.signIns;
      try {
        return await step();
      } finally {
        authorizations += manager.signIns - before;
      }
    };

    for (;;) {
      // RFC 9449 §9: the resource server wants a proof with its nonce; not a token problem. Capped.
      if (res.status === 401 && token !== undefined && manager.dpopKeyFor(token) && /error="?use_dpop_nonce/.test(res.headers.get('www-authenticate') ?? '')) {
        await discard(res);
        if (nonceRetries >= 2) {
          throw new McpOAuthError('dpop_error', `${manager.serverName} kept refusing the DPoP proof with use_dpop_nonce: a nonce loop.`, {
            hint: `report it to the server operator, or set dpop = "off" in [mcp_servers.${manager.serverName}.oauth] if the server allows bearer tokens`,
            status: 401,
          });
        }
        nonceRetries += 1;
        res = await send();
        continue;
      }
      if (res.status === 401) {
        const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
        await discard(res);
        if (refreshed) {
          // A freshly refreshed token rejected too: retrying more would only loop.
          const reason = `the server rejected a freshly refreshed access token (HTTP 401${challenge?.error ? `, ${challenge.error}` : ''})`;
          await manager.markNeedsSignIn(reason, challenge?.error);
          throw new McpOAuthError('signin_required', `Sign-in required for ${manager.serverName}: ${reason}.`, {
            hint: loginCommand(manager.serverName),
            status: 401,
            details: { server: manager.serverName },
          });
        }
        refreshed = true;
        logger.debug(token === undefined ? '401 from the MCP server; signing in' : '401 from the MCP server; refreshing and retrying once', { server: manager.serverName, error: challenge?.error });
        const sent = token;
        token = await counting(() => manager.afterUnauthorized(sent, challenge));
        res = await send();
        continue;
      }
      if (res.status === 403) {
        const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
        if (challenge?.error === 'insufficient_scope') {
          await discard(res);
          if (authorizations >= maxAuthorizations) throw tooManyAuthorizations(manager.serverName, challenge, authorizations);
          logger.info('the MCP server needs more scopes; signing in again', { server: manager.serverName, scopes: challenge.scope });
          token = await counting(() => manager.afterInsufficientScope(challenge));
          res = await send();
          continue;
        }
      }
      return res;
    }
  };
}

function tooManyAuthorizations(server: string, challenge: BearerChallenge, authorizations: number): McpOAuthError {
  const wanted = challenge.scope?.length ? ` (it asks for: ${challenge.scope.join(' ')})` : '';
  return new McpOAuthError(
    'insufficient_scope',
    `${server} still refuses the request for missing permissions after ${authorizations} sign-in${authorizations === 1 ? '' : 's'}${wanted}.`,
    { hint: `check that your account may use these scopes, then run ${loginCommand(server)}`, status: 403, details: { scopes: challenge.scope ?? [] } },
  );
}
