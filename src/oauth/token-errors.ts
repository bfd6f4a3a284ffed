/**
 * What a refusal from a token, revocation or device authorization endpoint means (RFC 6749 §5.2):
 * transient (5xx, 429, temporarily_unavailable) or the server's OAuth error, with a hint for the
 * user. The server's error_description is shown with every secret of the request redacted; the
 * body itself never is.
 */
import * as z from 'zod';
import { McpOAuthError } from '../errors.ts';
import { redact } from '../secrets.ts';
import type { TokenEndpointAuthMethod } from '../types.ts';
import { parseTokenBody, readText, retryAfterSeconds } from './token-body.ts';

/** RFC 6749 §5.2 error response. */
const ErrorResponseSchema = z.looseObject({
  error: z.string().min(1),
  error_description: z.string().optional(),
});

export function received(res: Response): string {
  return `HTTP ${res.status} with content-type ${res.headers.get('content-type') ?? '(none)'}`;
}

/** What an error from a token-endpoint-like answer is about, for its message and redaction. */
export interface TokenErrorContext {
  res: Response;
  endpoint: string;
  /** "token endpoint", "device authorization endpoint", … */
  what: string;
  action: string;
  /** Redacted from the server's error_description in case it echoes the request. */
  secrets: Array<string | undefined>;
  now?: number;
  clientMethod?: TokenEndpointAuthMethod;
}

/**
 * Maps a non-2xx answer to an error. `action` finishes "The authorization server refused the …".
 * `secrets` are redacted from the server's error_description in case it echoes the request.
 */
export async function errorFromResponse(opts: TokenErrorContext): Promise<McpOAuthError> {
  // Lenient on the content type here: a JSON `error` mislabelled as text/plain still decides
  // between "sign in again" (invalid_grant) and "retry"; the body itself is never shown.
  const body = parseTokenBody(await readText(opts.res), opts.res.headers.get('content-type'));
  return errorFromBody({ ...opts, body });
}

/** Like errorFromResponse, for a body already read (also a 200 carrying an `error`: GitHub). */
export function errorFromBody(opts: TokenErrorContext & { body: unknown }): McpOAuthError {
  const { res, body } = opts;
  const parsed = ErrorResponseSchema.safeParse(body);
  const oauthError = parsed.success ? parsed.data.error : undefined;
  const description = parsed.success && parsed.data.error_description
    ? redact(parsed.data.error_description, opts.secrets)
    : undefined;
  const retryAfter = retryAfterSeconds(res.headers.get('retry-after'), opts.now);
  const details: Record<string, unknown> = { endpoint: opts.endpoint };
  if (retryAfter !== undefined) details.retryAfterSeconds = retryAfter;
  if (description) details.errorDescription = description;

  // Transient: 5xx, 429, and RFC 6749 §4.1.2.1 `temporarily_unavailable` (some servers use it at the
  // token endpoint too). The stored credential stays; the caller retries with backoff.
  if (res.status >= 500 || res.status === 429 || oauthError === 'temporarily_unavailable') {
    return new McpOAuthError(
      'server_unavailable',
      `The ${opts.what} ${opts.endpoint} is unavailable (${received(res)}${oauthError ? `, ${oauthError}` : ''}).`,
      { status: res.status, oauthError, details, hint: 'try again later' },
    );
  }
  if (oauthError) {
    const hint =
      oauthError === 'invalid_grant'
        ? 'the grant has expired or was revoked: sign in again (mcp-oauth login NAME)'
        : oauthError === 'invalid_client'
          ? opts.clientMethod === 'private_key_jwt'
            // RFC 7523 §3.1: the assertion's signature, issuer, audience or key did not check out.
            ? 'the client assertion was not accepted: check that the private key matches the public key registered for the client, and the client id'
            : 'the client registration is no longer accepted: it is registered again at the next sign-in'
          : 'sign in again; if it keeps happening, report it to the server operator';
    return new McpOAuthError(
      'oauth_error',
      `The authorization server refused the ${opts.action}: ${oauthError}${description ? ` (${description})` : ''}`,
      { oauthError, status: res.status, details, hint },
    );
  }
  return new McpOAuthError(
    'oauth_error',
    `The ${opts.what} ${opts.endpoint} refused the ${opts.action} without an OAuth error (${received(res)}).`,
    { status: res.status, details, hint: 'check the server configuration; sign in again if it persists' },
  );
}
