/**
 * Reading what token, revocation and registration endpoints answer: content types, bodies (JSON or
 * form-encoded), Retry-After, network failures. Bodies are never put into messages (they may hold
 * secrets).
 */

/** RFC 9110 §10.2.3 Retry-After: delay-seconds or an HTTP-date. */
export function retryAfterSeconds(header: string | null, now?: number): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at) || now === undefined) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

export function isJsonContentType(contentType: string | null): boolean {
  // application/json, application/*+json, with or without parameters.
  return !!contentType && /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(contentType.trim());
}

export function isFormContentType(contentType: string | null): boolean {
  return !!contentType && /^application\/x-www-form-urlencoded\s*(;|$)/i.test(contentType.trim());
}

/**
 * A token endpoint body as an object: JSON (RFC 6749 §5.1), or application/x-www-form-urlencoded,
 * which GitHub answers unless the request asks for JSON ("Authorizing OAuth apps": the response
 * format follows the Accept header) and has been seen to send labelled application/json.
 * Undefined when it is neither; the text itself is never reported (it may hold a token).
 */
export function parseTokenBody(text: string, contentType: string | null): Record<string, unknown> | undefined {
  const form = () => Object.fromEntries(new URLSearchParams(text.trim()));
  if (isFormContentType(contentType)) return form();
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    // not JSON: maybe a mislabelled form body
  }
  return isJsonContentType(contentType) && /^[\w.-]+=/.test(text.trim()) ? form() : undefined;
}

export async function readText(res: Response): Promise<string> {
  try {
    return await res.text();
  } catch {
    return '';
  }
}

/** Parses a JSON body; undefined when the body is not JSON (the body itself is never reported). */
export async function readJson(res: Response): Promise<unknown> {
  try {
    return JSON.parse(await res.text());
  } catch {
    return undefined;
  }
}

/** undici says "fetch failed" and hides the useful part (ECONNREFUSED, ENOTFOUND) in `cause`. */
export function describeNetworkError(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const inner = cause.cause as { code?: unknown; message?: unknown } | undefined;
  const code = inner && typeof inner.code === 'string' ? inner.code : undefined;
  return code ? `${cause.message} (${code})` : cause.message;
}
