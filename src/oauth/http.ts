/**
 * The HTTP edge of the protocol core, shared by discovery and the token endpoint calls: a deadline
 * on every request, bounded bodies, and network failures turned into `network_error` values. Pure
 * in the sense of the rest of src/oauth/: `fetch` is injected, nothing global is read.
 */
import type * as z from 'zod';
import { McpOAuthError } from '../errors.ts';
import type { FetchLike } from '../types.ts';

/** Default deadline for one discovery, registration or token request, body included. */
export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;
/** Metadata documents and token responses are a few KiB; anything past this is not one. */
export const MAX_JSON_BYTES = 1024 * 1024;

/**
 * `fetch` with a deadline that covers the whole exchange, body included: the signal stays attached
 * to the response, so a server that sends headers and then trickles (or streams forever) is cut
 * off too. A caller's own signal still aborts earlier.
 */
export function withTimeout(fetch: FetchLike, timeoutMs: number = DEFAULT_HTTP_TIMEOUT_MS): FetchLike {
  return (input, init) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    return fetch(input, { ...init, signal });
  };
}

/** The deadline from `MCP_OAUTH_HTTP_TIMEOUT_MS` (edges read the environment, the core does not). */
export function httpTimeoutFrom(env: NodeJS.ProcessEnv): number {
  const ms = Number(env.MCP_OAUTH_HTTP_TIMEOUT_MS);
  return Number.isFinite(ms) && ms > 0 ? ms : DEFAULT_HTTP_TIMEOUT_MS;
}

export function isTimeout(err: unknown): boolean {
  for (let cur = err, i = 0; cur && i < 5; cur = (cur as { cause?: unknown }).cause, i++) {
    const name = (cur as { name?: unknown }).name;
    if (name === 'TimeoutError') return true;
  }
  return false;
}

export function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

export function networkError(url: string, cause: unknown): McpOAuthError {
  const host = safeHost(url);
  if (isTimeout(cause)) {
    return new McpOAuthError('network_error', `${url} did not answer in time`, { hint: `check that ${host} is reachable and responsive, then retry`, cause, details: { url } });
  }
  const reason = cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause);
  return new McpOAuthError('network_error', `could not reach ${url}: ${reason}`, {
    hint: `check that ${host} is reachable, then retry`,
    cause,
    details: { url },
  });
}

/** GET a JSON document; network failures (including the deadline) become `network_error`. */
export async function getJson(url: string, fetch: FetchLike): Promise<Response> {
  try {
    return await fetch(url, { method: 'GET', headers: { accept: 'application/json' } });
  } catch (cause) {
    throw networkError(url, cause);
  }
}

/**
 * The body as text, at most `limit` bytes: a document larger than that is refused without reading
 * the rest (a well-known URL that streams forever must not exhaust memory or hang the client).
 */
export async function readBoundedText(response: Response, url: string, limit: number = MAX_JSON_BYTES): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw new McpOAuthError('metadata_invalid', `the document at ${url} is larger than ${Math.round(limit / 1024)} KiB, so it is not metadata`, {
          hint: 'check that the URL is the MCP endpoint; if it is, report the broken metadata to the server operator',
          details: { url },
        });
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof McpOAuthError) throw err;
    throw networkError(url, err);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

export async function discardBody(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // Already consumed or the stream errored: nothing to release.
  }
}

/**
 * GET a metadata document and validate it with its schema. Undefined for 404/410 (RFC 8414 §3.1,
 * RFC 9728 §3.1: nothing at this location, try the next); 5xx/429 are `server_unavailable`;
 * anything else that is not the document is `metadata_invalid` naming the URL.
 */
export async function fetchDocument<T extends z.ZodType>(url: string, schema: T, what: string, fetch: FetchLike): Promise<z.infer<T> | undefined> {
  const response = await getJson(url, fetch);
  if (response.status === 404 || response.status === 410) {
    await discardBody(response);
    return undefined;
  }
  await assertSuccess(response, url, what);
  return parseDocument(schema, await readJson(response, url), url);
}

async function assertSuccess(response: Response, url: string, what: string): Promise<void> {
  if (response.ok) return;
  await discardBody(response);
  if (response.status >= 500 || response.status === 429) {
    throw new McpOAuthError('server_unavailable', `${safeHost(url)} answered HTTP ${response.status} for the ${what} at ${url}`, {
      hint: 'the server is having trouble; retry in a moment',
      status: response.status,
      details: { url },
    });
  }
  throw new McpOAuthError('metadata_invalid', `could not fetch the ${what} at ${url}: HTTP ${response.status}`, {
    hint: 'check the server URL; if it is right, report the broken metadata to the server operator',
    status: response.status,
    details: { url },
  });
}

async function readJson(response: Response, url: string): Promise<unknown> {
  const text = await readBoundedText(response, url);
  try {
    return JSON.parse(text);
  } catch {
    throw new McpOAuthError('metadata_invalid', `the metadata at ${url} is not JSON (content-type ${response.headers.get('content-type') ?? 'none'})`, {
      hint: 'check that the URL is the MCP endpoint; if it is, report the broken metadata to the server operator',
      details: { url },
    });
  }
}

function parseDocument<T extends z.ZodType>(schema: T, json: unknown, url: string): z.infer<T> {
  // A `null` member means the same as an absent one; dropping them avoids rejecting servers that
  // serialise unset optional fields as null.
  const cleaned =
    json && typeof json === 'object' && !Array.isArray(json)
      ? Object.fromEntries(Object.entries(json).filter(([, v]) => v !== null))
      : json;
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.length ? issue.path.join('.') : '(the document itself)';
  throw new McpOAuthError('metadata_invalid', `the metadata at ${url} is invalid: field ${field}: ${issue.message}`, {
    hint: 'report the broken metadata to the server operator',
    details: { url, field },
  });
}
