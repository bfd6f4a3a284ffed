/**
 * The OAuth 2.0 Device Authorization Grant (RFC 8628), for machines without a browser (an SSH
 * session): ask the authorization server for a device code and a user code (§3.1–3.2), let the
 * user enter the code on any other device (§3.3), and poll the token endpoint until they have
 * (§3.4–3.5). Pure: `fetch`, the clock and `sleep` are injected. The token endpoint plumbing (client
 * authentication, error classification, token response parsing) is tokens.ts's.
 */
import * as z from 'zod';
import { McpOAuthError } from '../errors.ts';
import type { Clock, FetchLike, TokenSet } from '../types.ts';
import type { AuthorizationServerMetadata } from './discovery.ts';
import { errorFromResponse, isJsonContentType, postForm, readJson, requestTokens, type ClientAuth, type DpopForRequest } from './tokens.ts';

/** RFC 8628 §3.4 grant type, also what a client registers in `grant_types` (RFC 8628 §4 / RFC 7591 §2). */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default." */
export const DEFAULT_POLL_INTERVAL_SECONDS = 5;
/** RFC 8628 §3.5: `slow_down` adds 5 seconds to the interval, for this and all later requests. */
const SLOW_DOWN_STEP_MS = 5_000;
/** Upper bound of one wait after transient failures (the deadline still applies). */
const MAX_BACKOFF_MS = 60_000;

const seconds = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]);

/** RFC 8414 §2 / RFC 8628 §4: the metadata member that says the grant is offered. */
const DeviceMetadataSchema = z.looseObject({ device_authorization_endpoint: z.string().min(1).optional() });

/** RFC 8628 §3.2 device authorization response (unknown members ignored). */
const DeviceAuthorizationResponseSchema = z.looseObject({
  device_code: z.string().min(1),
  user_code: z.string().min(1),
  verification_uri: z.string().min(1).optional(),
  // Google's device endpoint predates the RFC's names and sends `verification_url` instead.
  verification_url: z.string().min(1).optional(),
  verification_uri_complete: z.string().min(1).optional(),
  expires_in: seconds.pipe(z.number().positive()),
  interval: seconds.pipe(z.number().nonnegative()).optional(),
});

export interface DeviceAuthorization {
  /** Secret: only ever sent back to the token endpoint. */
  deviceCode: string;
  /** What the user types on the verification page (shown, not secret on its own). */
  userCode: string;
  verificationUri: string;
  /** The verification URI with the user code in it (RFC 8628 §3.3.1), when the server gives one. */
  verificationUriComplete?: string;
  /** epoch ms: after it the device code is dead (RFC 8628 §3.2 `expires_in`). */
  expiresAt: number;
  /** The polling interval the server asked for (RFC 8628 §3.2), else the default 5. */
  intervalSeconds: number;
}

/** The device authorization endpoint, or undefined when the server does not offer the grant. */
export function deviceAuthorizationEndpointOf(metadata: AuthorizationServerMetadata): string | undefined {
  const parsed = DeviceMetadataSchema.safeParse(metadata);
  return parsed.success ? parsed.data.device_authorization_endpoint : undefined;
}

/**
 * What gets printed to the user must be plain text: a URL that is http(s) and a code without
 * control characters (a hostile server must not drive the user's terminal with escape sequences).
 */
function displayable(value: string | undefined, kind: 'url' | 'code'): boolean {
  if (value === undefined) return true;
  // C0/C1 controls and the bidi overrides that could disguise what is shown.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(value)) return false;
  if (kind === 'code') return value.length <= 64;
  if (/\s/.test(value)) return false;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

/**
 * RFC 8628 §3.1 device authorization request: client_id (or the client's authentication, RFC 6749
 * §2.3.1, exactly as at the token endpoint), `scope`, and the RFC 8707 `resource` (MCP spec
 * "Resource Parameter Implementation": in authorization and token requests alike). §3.2 response.
 */
export async function requestDeviceAuthorization(opts: {
  endpoint: string;
  client: ClientAuth;
  scopes: string[];
  /** RFC 8707; undefined where the provider refuses it (Entra ID). */
  resource?: string;
  fetch: FetchLike;
  now: number;
}): Promise<DeviceAuthorization> {
  const what = 'device authorization endpoint';
  const params: Record<string, string> = opts.resource === undefined ? {} : { resource: opts.resource };
  if (opts.scopes.length > 0) params.scope = opts.scopes.join(' ');
  const res = await postForm({ endpoint: opts.endpoint, what, client: opts.client, params, fetch: opts.fetch, now: opts.now });
  if (res.status < 200 || res.status > 299) {
    // §3.2: errors follow RFC 6749 §5.2 (e.g. unauthorized_client, invalid_scope).
    throw await errorFromResponse({
      res, endpoint: opts.endpoint, what, action: 'device authorization request', secrets: [opts.client.clientSecret], now: opts.now, clientMethod: opts.client.method,
    });
  }
  const invalid = (reason: string) =>
    new McpOAuthError('token_response_invalid', `The ${what} ${opts.endpoint} returned an invalid response: ${reason}.`, {
      status: res.status,
      details: { endpoint: opts.endpoint },
      hint: 'the authorization server is misbehaving; report it to the server operator, or sign in with mcp-oauth login NAME --no-browser',
    });
  const contentType = res.headers.get('content-type');
  if (!isJsonContentType(contentType)) throw invalid(`expected a JSON body but received content-type ${contentType ?? '(none)'}`);
  const body = await readJson(res);
  const parsed = DeviceAuthorizationResponseSchema.safeParse(body);
  if (!parsed.success) {
    // Field names only: values may be secrets (the device code).
    throw invalid(`missing or malformed ${[...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(body)'))].join(', ')}`);
  }
  const data = parsed.data;
  const verificationUri = data.verification_uri ?? data.verification_url;
  if (!verificationUri) throw invalid('missing verification_uri');
  if (!displayable(verificationUri, 'url') || !displayable(data.verification_uri_complete, 'url')) {
    throw invalid('the verification URI is not a plain http(s) URL');
  }
  if (!displayable(data.user_code, 'code')) throw invalid('the user code holds characters that cannot be shown');
  return {
    deviceCode: data.device_code,
    userCode: data.user_code,
    verificationUri,
    ...(data.verification_uri_complete ? { verificationUriComplete: data.verification_uri_complete } : {}),
    expiresAt: opts.now + data.expires_in * 1000,
    intervalSeconds: data.interval ?? DEFAULT_POLL_INTERVAL_SECONDS,
  };
}

/** What a poll told us, for progress output and tests. */
export type PollEvent =
  | { type: 'pending' }
  | { type: 'slow_down'; intervalMs: number }
  | { type: 'retry'; error: McpOAuthError; delayMs: number };

/**
 * RFC 8628 §3.4–3.5: poll the token endpoint with the device code until the user has approved,
 * denied, or the code expired. Waits `interval` before each request; `authorization_pending` →
 * poll again; `slow_down` → the interval grows by 5 s for good; `access_denied` → `signin_denied`;
 * `expired_token` (or our own deadline, `expires_in`) → `signin_timeout`; other errors as
 * tokens.ts classifies them. Transient failures (network, 5xx, 429) are retried with a doubling
 * wait (§3.5: "reduce their polling frequency before retrying … exponential backoff").
 */
export async function pollDeviceToken(opts: {
  tokenEndpoint: string;
  client: ClientAuth;
  authorization: DeviceAuthorization;
  /** RFC 8707; undefined where the provider refuses it (Entra ID). */
  resource?: string;
  fetch: FetchLike;
  clock: Clock;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  signal?: AbortSignal;
  onPoll?: (event: PollEvent) => void;
  /** RFC 9449 §5: a proof on every poll, so the tokens are bound to the credential's key. */
  dpop?: DpopForRequest;
}): Promise<TokenSet> {
  const { authorization, clock } = opts;
  let intervalMs = authorization.intervalSeconds * 1000;
  let failures = 0;
  let retryAfterMs = 0;
  for (;;) {
    const wait = failures === 0 ? intervalMs : Math.min(MAX_BACKOFF_MS, Math.max(intervalMs * 2 ** failures, retryAfterMs));
    if (clock() + wait >= authorization.expiresAt) throw expired('the code expired before the sign-in was completed');
    await opts.sleep(wait, opts.signal);
    try {
      return await requestTokens({
        tokenEndpoint: opts.tokenEndpoint,
        client: opts.client,
        fetch: opts.fetch,
        now: clock(),
        dpop: opts.dpop,
        params: { grant_type: DEVICE_CODE_GRANT, device_code: authorization.deviceCode, ...(opts.resource === undefined ? {} : { resource: opts.resource }) },
        action: 'device code token request',
        secrets: [authorization.deviceCode],
      });
    } catch (e) {
      if (!(e instanceof McpOAuthError)) throw e;
      // The OAuth error decides first: some servers send slow_down with 429 or 503.
      switch (e.oauthError) {
        case 'authorization_pending':
          failures = 0;
          opts.onPoll?.({ type: 'pending' });
          continue;
        case 'slow_down':
          failures = 0;
          intervalMs += SLOW_DOWN_STEP_MS;
          opts.onPoll?.({ type: 'slow_down', intervalMs });
          continue;
        case 'access_denied':
          throw new McpOAuthError('signin_denied', 'The sign-in was denied on the verification page.', {
            oauthError: e.oauthError,
            hint: 'run the login again and approve the request',
          });
        case 'expired_token':
          throw expired('the authorization server says the code expired', e.oauthError);
      }
      if (!e.transient) throw e;
      failures += 1;
      const retryAfter = e.details?.retryAfterSeconds;
      retryAfterMs = typeof retryAfter === 'number' ? retryAfter * 1000 : 0;
      opts.onPoll?.({ type: 'retry', error: e, delayMs: Math.min(MAX_BACKOFF_MS, Math.max(intervalMs * 2 ** failures, retryAfterMs)) });
    }
  }
}

function expired(why: string, oauthError?: string): McpOAuthError {
  return new McpOAuthError('signin_timeout', `The device sign-in timed out: ${why}.`, {
    oauthError,
    hint: 'run the login again and enter the new code sooner',
  });
}
