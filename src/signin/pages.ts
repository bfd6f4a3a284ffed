import { createHash } from 'node:crypto';

/**
 * The pages the loopback callback server shows in the user's browser. Self-contained: inline CSS
 * only (allowed by a CSP hash, not 'unsafe-inline'), no scripts, no external resources, so the
 * page that carried the authorization code cannot leak it to anyone (no Referer, no fetches).
 * Every interpolated string is HTML-escaped: `error_description` comes from the query string and
 * anyone can craft that URL.
 */

export interface CallbackPage {
  status: number;
  html: string;
  /** Value for the Content-Security-Policy header matching this page's inline style. */
  csp: string;
}

const STYLE =
  'body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:36rem;margin:15vh auto;' +
  'padding:0 1.5rem;color:#1f2328;background:#fff;line-height:1.5}' +
  'h1{font-size:1.4rem;margin:0 0 .75rem}p{margin:.5rem 0}' +
  '.ok h1{color:#1a7f37}.err h1{color:#cf222e}.muted{color:#59636e;font-size:.9rem}' +
  '@media (prefers-color-scheme:dark){body{color:#e6edf3;background:#0d1117}.muted{color:#9198a1}' +
  '.ok h1{color:#3fb950}.err h1{color:#f85149}}';

const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

/** No script, no network, no framing, no form posts; only our own inline style. */
export const PAGE_CSP =
  `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; base-uri 'none'; ` +
  `form-action 'none'; frame-ancestors 'none'`;

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function page(status: number, kind: 'ok' | 'err', title: string, paragraphs: string[]): CallbackPage {
  const body = paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n');
  const html =
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    '<meta name="referrer" content="no-referrer">' +
    `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>\n` +
    `<body class="${kind}"><main><h1>${escapeHtml(title)}</h1>\n${body}\n</main></body></html>\n`;
  return { status, html, csp: PAGE_CSP };
}

const DEFAULT_CLIENT = 'the application that asked you to sign in';

export function successPage(serverName: string, clientName = DEFAULT_CLIENT): CallbackPage {
  return page(200, 'ok', 'Signed in', [
    `Signed in to ${serverName}. You can close this tab and return to ${clientName}.`,
  ]);
}

export function errorPage(message: string, clientName = DEFAULT_CLIENT): CallbackPage {
  return page(400, 'err', 'Sign-in did not complete', [
    message,
    `You can close this tab. ${capitalize(clientName)} shows what to do next.`,
  ]);
}

/** 410 Gone: the loopback redirect is single use (a code is only ever accepted once, RFC 6749 §4.1.2). */
export function alreadyUsedPage(): CallbackPage {
  return page(410, 'err', 'This sign-in link was already used', [
    'This sign-in link was already used. If you are not signed in, run the sign-in command again.',
  ]);
}

/** Shown when the sign-in gave up waiting before this browser request arrived. */
export function expiredPage(): CallbackPage {
  return page(410, 'err', 'This sign-in has expired', [
    'This sign-in has expired: no longer waiting for it. Run the sign-in command again.',
  ]);
}

/** Shown when the caller did not decide in time (or is shutting down). Never claims success. */
export function receivedPage(params: URLSearchParams): CallbackPage {
  const error = describeAuthorizationError(params);
  if (error) return errorPage(error);
  return page(200, 'ok', 'Sign-in response received', [
    'Your browser returned to this computer. Go back to the application that asked you to sign in to see the result.',
    'You can close this tab.',
  ]);
}

export function notFoundPage(): CallbackPage {
  return page(404, 'err', 'Not found', ['Nothing here. This address only receives sign-in responses.']);
}

export function methodNotAllowedPage(): CallbackPage {
  return page(405, 'err', 'Method not allowed', ['This address only accepts GET requests from your browser.']);
}

/** RFC 6749 §4.1.2.1 error codes, in plain words for the browser page and the terminal. */
const PLAIN_ERRORS: Record<string, string> = {
  access_denied: 'You declined access, so you are not signed in.',
  invalid_request: 'The sign-in request was rejected as invalid by the authorization server.',
  unauthorized_client: 'The authorization server does not allow this client to sign in this way.',
  unsupported_response_type: 'The authorization server does not support this kind of sign-in.',
  invalid_scope: 'The authorization server rejected the requested permissions (scopes).',
  server_error: 'The authorization server had an internal error.',
  temporarily_unavailable: 'The authorization server is temporarily unavailable. Try again in a moment.',
};

/**
 * Plain-words description of an `error` redirect (RFC 6749 §4.1.2.1), or undefined when the
 * redirect is not an error. The server's `error_description` is appended as-is (callers escape).
 */
export function describeAuthorizationError(params: URLSearchParams): string | undefined {
  const error = params.get('error');
  if (!error) return undefined;
  const plain = PLAIN_ERRORS[error] ?? `The authorization server reported an error (${error}).`;
  const description = params.get('error_description')?.trim();
  return description ? `${plain} The server said: "${truncate(description, 300)}"` : plain;
}

function truncate(text: string, max: number): string {
  return text.length > max ? text.slice(0, max) + '…' : text;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
