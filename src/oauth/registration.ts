/**
 * How this client becomes known to an authorization server, in the order of the MCP spec
 * 2025-11-25 "Client Registration Approaches": pre-registered client → Client ID Metadata Document
 * → (a registration we made earlier) → Dynamic Client Registration (RFC 7591).
 */
import * as z from 'zod';
import { McpOAuthError } from '../errors.ts';
import type { ClientRegistration, FetchLike, TokenEndpointAuthMethod } from '../types.ts';
import { assertSecureEndpoint } from './canonical.ts';
import type { AuthorizationServerMetadata } from './discovery.ts';
import { describeNetworkError, isJsonContentType, readJson, retryAfterSeconds } from './tokens.ts';

/** RFC 7591 §3.2.1 client information response (unknown members ignored). */
const ClientInformationSchema = z.looseObject({
  client_id: z.string().min(1),
  client_secret: z.string().nullish(),
  client_secret_expires_at: z.number().nonnegative().nullish(),
  token_endpoint_auth_method: z.string().nullish(),
  redirect_uris: z.array(z.string()).nullish(),
  grant_types: z.array(z.string()).nullish(),
});

/** RFC 7591 §3.2.2 client registration error response. */
const RegistrationErrorSchema = z.looseObject({
  error: z.string().min(1),
  error_description: z.string().optional(),
});

function preregisterHint(serverName: string | undefined, metadata: AuthorizationServerMetadata): string {
  const name = serverName ?? 'NAME';
  const cimd = metadata.client_id_metadata_document_supported === true ? ' (or set client_metadata_url)' : '';
  return `pre-register a client and set client_id in [mcp_servers.${name}.oauth]${cimd}`;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Whether a stored registration's redirect URI also covers `wanted`. RFC 8252 §7.3: for loopback
 * redirect URIs the AS MUST allow any port, so a registration made while the callback listened on
 * another (ephemeral) port still works; host, scheme and path must still match.
 */
export function redirectUriCovered(registered: string[], wanted: string): boolean {
  if (registered.includes(wanted)) return true;
  let w: URL;
  try {
    w = new URL(wanted);
  } catch {
    return false;
  }
  if (w.protocol !== 'http:' || !LOOPBACK_HOSTS.has(w.hostname)) return false;
  return registered.some((candidate) => {
    try {
      const r = new URL(candidate);
      return r.protocol === w.protocol && r.hostname === w.hostname && r.pathname === w.pathname && r.search === w.search;
    } catch {
      return false;
    }
  });
}

/** Auth method for a pre-registered client. RFC 8414 §2: an absent
 * token_endpoint_auth_methods_supported means client_secret_basic. */
function preregisteredMethod(secret: string | undefined, metadata: AuthorizationServerMetadata): TokenEndpointAuthMethod {
  if (!secret) return 'none';
  const supported = metadata.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  if (supported.includes('client_secret_basic')) return 'client_secret_basic';
  if (supported.includes('client_secret_post')) return 'client_secret_post';
  throw new McpOAuthError(
    'registration_failed',
    `The authorization server ${metadata.issuer} supports neither client_secret_basic nor client_secret_post (it lists: ${supported.join(', ')}), so the configured client secret cannot be used.`,
    { hint: 'pre-register a public client (no secret) or one that uses client_secret_basic/post' },
  );
}

/** MCP spec "Client ID Metadata Documents": the client_id URL MUST be https with a path. */
function assertClientMetadataUrl(url: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || parsed.protocol !== 'https:' || parsed.pathname === '/' || parsed.hash) {
    throw new McpOAuthError(
      'config_invalid',
      `The client metadata URL "${url}" must be an https URL with a path (MCP spec, Client ID Metadata Documents).`,
      { hint: 'fix client_metadata_url in [mcp_servers.NAME.oauth]' },
    );
  }
}

function reusable(existing: ClientRegistration | undefined, issuer: string, redirectUri: string, now: number, extraGrantTypes: string[] = []): boolean {
  if (!existing) return false;
  // A grant the earlier registration did not ask for (the device grant) needs a new registration.
  if (!extraGrantTypes.every((g) => existing.grantTypes?.includes(g))) return false;
  // Only our own DCR results: a pre-registered or CIMD client that is no longer configured
  // must not be used behind the user's back.
  if (existing.source !== 'dynamic_registration') return false;
  // 2026-07-28 revision: client registrations are per issuer.
  if (existing.issuer !== issuer) return false;
  // RFC 7591 §3.2.1: client_secret_expires_at 0 = never; an expired secret needs a new registration.
  if (existing.clientSecret && existing.clientSecretExpiresAt && existing.clientSecretExpiresAt <= now) return false;
  return redirectUriCovered(existing.redirectUris, redirectUri);
}

export async function resolveClientRegistration(opts: {
  issuer: string;
  metadata: AuthorizationServerMetadata;
  preregistered?: { clientId: string; clientSecret?: string };
  clientMetadataUrl?: string;
  existing?: ClientRegistration;
  redirectUri: string;
  clientName: string;
  fetch: FetchLike;
  now: number;
  /** Config entry name, only used to make the hints copy-pasteable. */
  serverName?: string;
  /** Grant types to register besides authorization_code and refresh_token (RFC 8628 §4: the device grant). */
  extraGrantTypes?: string[];
}): Promise<ClientRegistration> {
  const { issuer, metadata, redirectUri, now } = opts;
  // RFC 8414 §3.3 / 2026-07-28 issuer equality: never register with metadata of another issuer.
  if (metadata.issuer !== issuer) {
    throw new McpOAuthError(
      'issuer_mismatch',
      `The authorization server metadata is for "${metadata.issuer}", not "${issuer}".`,
      { hint: 'report it to the server operator' },
    );
  }

  // 1. Pre-registered client information wins (MCP spec priority 1).
  if (opts.preregistered) {
    const { clientId, clientSecret } = opts.preregistered;
    return {
      issuer,
      clientId,
      ...(clientSecret ? { clientSecret } : {}),
      tokenEndpointAuthMethod: preregisteredMethod(clientSecret, metadata),
      redirectUris: [redirectUri],
      source: 'preregistered',
      registeredAt: now,
    };
  }

  // 2. Client ID Metadata Document when the AS advertises support (MCP spec priority 2): the URL is
  // the client_id, a public client (the document declares token_endpoint_auth_method none).
  if (opts.clientMetadataUrl && metadata.client_id_metadata_document_supported === true) {
    assertClientMetadataUrl(opts.clientMetadataUrl);
    return {
      issuer,
      clientId: opts.clientMetadataUrl,
      tokenEndpointAuthMethod: 'none',
      redirectUris: [redirectUri],
      source: 'client_id_metadata_document',
      registeredAt: now,
    };
  }

  // 3. Reuse an earlier dynamic registration instead of piling up clients at the AS.
  if (opts.existing && reusable(opts.existing, issuer, redirectUri, now, opts.extraGrantTypes)) return opts.existing;

  // 4. Dynamic Client Registration (MCP spec priority 3).
  if (!metadata.registration_endpoint) {
    throw new McpOAuthError(
      'registration_failed',
      `The authorization server ${issuer} does not support dynamic client registration (no registration_endpoint), and no client is configured for it.`,
      { hint: preregisterHint(opts.serverName, metadata), details: { issuer } },
    );
  }
  return registerDynamically({ ...opts, registrationEndpoint: metadata.registration_endpoint });
}

/** RFC 7591 §3.1 client registration request and §3.2 response. */
async function registerDynamically(opts: {
  issuer: string;
  metadata: AuthorizationServerMetadata;
  registrationEndpoint: string;
  redirectUri: string;
  clientName: string;
  fetch: FetchLike;
  now: number;
  serverName?: string;
  extraGrantTypes?: string[];
}): Promise<ClientRegistration> {
  const endpoint = opts.registrationEndpoint;
  const grantTypes = ['authorization_code', ...(opts.extraGrantTypes ?? []), 'refresh_token'];
  const url = assertSecureEndpoint(endpoint, 'registration endpoint');
  const hint = preregisterHint(opts.serverName, opts.metadata);
  const body = {
    client_name: opts.clientName,
    // 2026-07-28 revision: native apps say so (OIDC Registration `application_type`), which lets the
    // AS accept loopback http redirect URIs (RFC 8252 §7.3).
    application_type: 'native',
    redirect_uris: [opts.redirectUri],
    grant_types: grantTypes,
    response_types: ['code'],
    // A public client: PKCE protects the code (RFC 8252 §8.4: native apps cannot keep secrets).
    token_endpoint_auth_method: 'none',
  };
  let res: Response;
  try {
    res = await opts.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      redirect: 'manual',
    });
  } catch (cause) {
    throw new McpOAuthError('network_error', `Could not reach the registration endpoint ${endpoint}: ${describeNetworkError(cause)}`, {
      cause,
      hint: 'check the network connection and try again',
      details: { endpoint },
    });
  }
  const contentType = res.headers.get('content-type');
  const received = `HTTP ${res.status} with content-type ${contentType ?? '(none)'}`;
  const json = isJsonContentType(contentType) ? await readJson(res) : undefined;

  if (res.status >= 500 || res.status === 429) {
    const retryAfter = retryAfterSeconds(res.headers.get('retry-after'), opts.now);
    throw new McpOAuthError('server_unavailable', `The registration endpoint ${endpoint} is unavailable (${received}).`, {
      status: res.status,
      hint: 'try again later',
      details: { endpoint, ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}) },
    });
  }
  if (res.status < 200 || res.status > 299) {
    // RFC 7591 §3.2.2: e.g. invalid_redirect_uri, invalid_client_metadata.
    const err = RegistrationErrorSchema.safeParse(json);
    const what = err.success
      ? `${err.data.error}${err.data.error_description ? ` (${err.data.error_description})` : ''}`
      : received;
    throw new McpOAuthError('registration_failed', `The authorization server ${opts.issuer} refused the client registration: ${what}.`, {
      status: res.status,
      oauthError: err.success ? err.data.error : undefined,
      hint,
      details: { endpoint },
    });
  }

  // The response holds a client secret when the AS insists on a confidential client: never shown.
  const parsed = ClientInformationSchema.safeParse(json);
  if (!parsed.success) {
    const fields = json === undefined ? 'the body is not JSON' : `missing or malformed ${[...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(body)'))].join(', ')}`;
    throw new McpOAuthError('registration_failed', `The registration endpoint ${endpoint} returned an invalid response (${received}): ${fields}.`, {
      status: res.status,
      hint,
      details: { endpoint },
    });
  }
  const info = parsed.data;
  // A secret next to "none" is useless to a public client; don't keep a secret we never send.
  const secret = info.token_endpoint_auth_method === 'none' ? undefined : info.client_secret || undefined;
  let method: TokenEndpointAuthMethod;
  if (!secret) {
    method = 'none';
  } else {
    // RFC 7591 §2: the AS may change the requested method; absent means client_secret_basic.
    const returned = info.token_endpoint_auth_method ?? 'client_secret_basic';
    if (returned !== 'client_secret_basic' && returned !== 'client_secret_post') {
      throw new McpOAuthError(
        'registration_failed',
        `The authorization server ${opts.issuer} registered the client with token_endpoint_auth_method "${returned}", which mcp-oauth cannot use.`,
        { hint, details: { endpoint } },
      );
    }
    method = returned;
  }
  const expiresAt = info.client_secret_expires_at ? info.client_secret_expires_at * 1000 : undefined;
  return {
    issuer: opts.issuer,
    clientId: info.client_id,
    ...(secret ? { clientSecret: secret } : {}),
    tokenEndpointAuthMethod: method,
    // RFC 7591 §3.2.1: the response holds the registered metadata, which the AS may have changed.
    redirectUris: info.redirect_uris && info.redirect_uris.length > 0 ? info.redirect_uris : [opts.redirectUri],
    source: 'dynamic_registration',
    registeredAt: opts.now,
    ...(expiresAt !== undefined ? { clientSecretExpiresAt: expiresAt } : {}),
    // RFC 7591 §3.2.1: what the AS registered, which may differ from what was asked.
    ...(opts.extraGrantTypes?.length ? { grantTypes: info.grant_types ?? grantTypes } : {}),
  };
}
