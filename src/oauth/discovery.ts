/**
 * Discovery: from an MCP server URL to its Protected Resource Metadata (RFC 9728) and from there to
 * the authorization server's metadata (RFC 8414 / OpenID Connect Discovery 1.0), in the order the
 * MCP spec 2026-07-28 "Authorization Server Discovery" prescribes, with the 2025-03-26 fallback for
 * servers that publish no resource metadata. Pure: `fetch` is injected (with its deadline: see
 * src/oauth/http.ts).
 */
import * as z from 'zod';
import { McpOAuthError } from '../errors.ts';
import type { FetchLike } from '../types.ts';
import { assertSecureEndpoint, canonicalResourceUri } from './canonical.ts';
import { discardBody, fetchDocument, networkError } from './http.ts';
import { findProtectedResource, type ProtectedResourceMetadata } from './resource-metadata.ts';
import { parseBearerChallenge, type BearerChallenge } from './www-authenticate.ts';

export {
  findProtectedResource,
  discoverProtectedResource,
  protectedResourceMetadataSchema,
  protectedResourceMetadataUrls,
  resourceCovering,
  type FoundResourceMetadata,
  type ProtectedResourceMetadata,
} from './resource-metadata.ts';

/** RFC 8414 §2 plus the OpenID Connect Discovery and MCP members we use. */
export const authorizationServerMetadataSchema = z.looseObject({
  issuer: z.string().min(1),
  // OPTIONAL in RFC 8414 only when no grant needs it; the authorization code grant needs both.
  authorization_endpoint: z.string().min(1),
  token_endpoint: z.string().min(1),
  registration_endpoint: z.string().min(1).optional(),
  revocation_endpoint: z.string().min(1).optional(),
  scopes_supported: z.array(z.string()).optional(),
  response_types_supported: z.array(z.string()).optional(),
  grant_types_supported: z.array(z.string()).optional(),
  code_challenge_methods_supported: z.array(z.string()).optional(),
  token_endpoint_auth_methods_supported: z.array(z.string()).optional(),
  authorization_response_iss_parameter_supported: z.boolean().optional(), // RFC 9207 §3
  client_id_metadata_document_supported: z.boolean().optional(), // MCP spec "Client ID Metadata Documents"
});
export type AuthorizationServerMetadata = z.infer<typeof authorizationServerMetadataSchema>;

const ENDPOINT_FIELDS = ['authorization_endpoint', 'token_endpoint', 'registration_endpoint', 'revocation_endpoint'] as const;

/**
 * MCP spec 2025-11-25 "Authorization Server Metadata Discovery" priority order. With a path:
 * RFC 8414 §3.1 path insertion, OIDC path insertion (RFC 8414 §5), OIDC path appending (OpenID
 * Connect Discovery 1.0 §4). Without a path: RFC 8414 root, then OIDC root.
 */
export function authorizationServerMetadataUrls(issuer: string): Array<{ url: string; kind: 'oauth' | 'oidc' }> {
  const parsed = new URL(issuer);
  // RFC 8414 §3.1: "any terminating '/' following the host component MUST be removed".
  const path = parsed.pathname.replace(/\/+$/, '');
  const origin = parsed.origin;
  if (!path) {
    return [
      { url: `${origin}/.well-known/oauth-authorization-server`, kind: 'oauth' },
      { url: `${origin}/.well-known/openid-configuration`, kind: 'oidc' },
    ];
  }
  return [
    { url: `${origin}/.well-known/oauth-authorization-server${path}`, kind: 'oauth' },
    { url: `${origin}/.well-known/openid-configuration${path}`, kind: 'oidc' },
    { url: `${origin}${path}/.well-known/openid-configuration`, kind: 'oidc' },
  ];
}

/**
 * RFC 8414 §2 says issuers are compared as identical strings. One deviation is everywhere: a
 * resource metadata document lists `https://accounts.google.com/` while Google's own metadata
 * says `https://accounts.google.com`. A trailing "/" on an empty path is the same URL by RFC 3986
 * §6.2.3 (scheme-based normalization), so only that difference is forgiven; nothing else is
 * normalised (MCP 2026-07-28 "Authorization Server Metadata Discovery": the issuer MUST match).
 */
export function sameIssuer(a: string, b: string): boolean {
  if (a === b) return true;
  const [short, long] = a.length < b.length ? [a, b] : [b, a];
  if (long !== `${short}/`) return false;
  try {
    return new URL(long).pathname === '/' && !short.slice(short.indexOf('//') + 2).includes('/');
  } catch {
    return false;
  }
}

/** Fetches and validates the authorization server's metadata (RFC 8414 / OIDC Discovery). */
export async function discoverAuthorizationServer(opts: {
  issuer: string;
  fetch: FetchLike;
  /** MCP says to refuse an AS that does not advertise S256; a recognised provider (Entra ID,
   * whose metadata omits it although S256 works) or an explicit config opt-in may proceed. */
  acceptMissingPkceMetadata?: boolean;
}): Promise<AuthorizationServerMetadata> {
  const found = await findAuthorizationServer(opts);
  if (found) return found;
  const tried = authorizationServerMetadataUrls(opts.issuer).map((c) => c.url);
  throw new McpOAuthError('metadata_invalid', `no authorization server metadata found for issuer ${opts.issuer}; tried ${tried.join(', ')}`, {
    hint: 'the MCP server names an authorization server that publishes neither RFC 8414 nor OpenID Connect discovery; report it to the server operator',
    status: 404,
    details: { tried },
  });
}

/** Like discoverAuthorizationServer, but undefined when no location has a document (all 404/410). */
export async function findAuthorizationServer(opts: {
  issuer: string;
  fetch: FetchLike;
  acceptMissingPkceMetadata?: boolean;
}): Promise<AuthorizationServerMetadata | undefined> {
  const issuer = opts.issuer;
  assertSecureEndpoint(issuer, 'authorization server issuer');
  const candidates = authorizationServerMetadataUrls(issuer);
  // A later location may still hold a valid document (servers often answer unknown paths with an
  // HTML page or an error), so failures are remembered and only reported if nothing works.
  let documentError: McpOAuthError | undefined;
  let serverError: McpOAuthError | undefined;

  for (const { url } of candidates) {
    try {
      const metadata = await fetchDocument(url, authorizationServerMetadataSchema, 'authorization server metadata', opts.fetch);
      if (metadata === undefined) continue;
      validateAuthorizationServerMetadata(metadata, issuer, url);
      // MCP spec 2025-11-25 "Authorization Code Protection": PKCE support is known only from the
      // metadata; if `code_challenge_methods_supported` is absent or lacks S256 we MUST refuse.
      const advertised = metadata.code_challenge_methods_supported;
      if (!advertised?.includes('S256') && !(advertised === undefined && opts.acceptMissingPkceMetadata)) {
        throw new McpOAuthError(
          'pkce_unsupported',
          `the authorization server ${issuer} does not advertise PKCE with S256 (code_challenge_methods_supported is ${
            JSON.stringify(metadata.code_challenge_methods_supported) ?? 'absent'
          }); MCP requires PKCE, so sign-in was refused`,
          {
            hint: advertised === undefined
              ? 'if you know this authorization server supports PKCE S256 anyway (Microsoft Entra ID does), set provider = "entra" or assume_pkce = true in [mcp_servers.NAME.oauth]'
              : 'ask the server operator to enable PKCE (S256) on the authorization server; nothing can be fixed locally',
            details: { url },
          },
        );
      }
      return metadata;
    } catch (e) {
      if (!(e instanceof McpOAuthError)) throw e;
      if (e.code === 'pkce_unsupported') throw e;
      if (e.code === 'server_unavailable') serverError ??= e;
      else documentError ??= e;
    }
  }

  if (documentError) throw documentError;
  if (serverError) throw serverError;
  return undefined;
}

/** RFC 8414 §3.3 issuer equality and OAuth 2.1 §1.5 https endpoints. */
export function validateAuthorizationServerMetadata(metadata: AuthorizationServerMetadata, issuer: string, url: string): void {
  // RFC 8414 §3.3: the `issuer` MUST be identical to the issuer used to build the metadata URL,
  // else the document MUST NOT be used (it prevents one AS impersonating another; the 2026-07-28
  // MCP revision keys credentials by issuer, so this identity has to be exact but for the empty
  // path's trailing slash, see sameIssuer). Callers key everything by `metadata.issuer`.
  if (!sameIssuer(metadata.issuer, issuer)) {
    throw new McpOAuthError(
      'issuer_mismatch',
      `the authorization server metadata at ${url} declares issuer ${JSON.stringify(metadata.issuer)}, but it was fetched for issuer ${JSON.stringify(issuer)}; the document was not used`,
      { hint: 'the server may be misconfigured or impersonated; report it to the server operator', details: { url, expected: issuer, actual: metadata.issuer } },
    );
  }
  for (const field of ENDPOINT_FIELDS) {
    const value = metadata[field];
    if (value === undefined) continue;
    if (!URL.canParse(value)) {
      throw new McpOAuthError('metadata_invalid', `the authorization server metadata at ${url} has an invalid ${field}: ${JSON.stringify(value)} is not a URL`, {
        hint: 'report it to the server operator',
        details: { url, field },
      });
    }
    assertSecureEndpoint(value, `authorization server ${field}`);
  }
}

/**
 * MCP 2025-03-26 "Fallbacks for Servers without Metadata Discovery": the authorization base URL is
 * the MCP server URL without its path, and the endpoints are `/authorize`, `/token` and
 * `/register` under it. That revision requires PKCE S256 of every server, so it is assumed.
 */
export function defaultEndpointsMetadata(issuer: string): AuthorizationServerMetadata {
  const origin = new URL(issuer).origin;
  return {
    issuer: origin,
    authorization_endpoint: `${origin}/authorize`,
    token_endpoint: `${origin}/token`,
    registration_endpoint: `${origin}/register`,
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
  };
}

/**
 * Sends one unauthenticated JSON-RPC `ping` and returns the Bearer challenge of a 401 answer
 * (RFC 9728 §5.1). Undefined when the server does not answer 401: it does not ask for a token for
 * this. A `ping` rather than `initialize`, so that no MCP session is opened and left behind (a
 * 2025-era server answers a session-less ping with 400 once past its auth check; a 2026-07-28
 * server answers it). Only `login` uses it, when no metadata is found at the well-known URLs.
 */
export async function probeChallenge(opts: { serverUrl: string; fetch: FetchLike }): Promise<BearerChallenge | undefined> {
  assertSecureEndpoint(opts.serverUrl, 'MCP server URL');
  let response: Response;
  try {
    response = await opts.fetch(opts.serverUrl, {
      method: 'POST',
      // Shaped as a 2026-07-28 request (its `_meta` and the SEP-2243 headers that must match it), so
      // a strict server of that revision does not refuse it as malformed before its auth check;
      // 2025-era servers check the token first too.
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'ping' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'ping',
        params: {
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientInfo': { name: 'mcp-oauth', version: '0.1.0' },
            'io.modelcontextprotocol/clientCapabilities': {},
          },
        },
      }),
    });
  } catch (cause) {
    throw networkError(opts.serverUrl, cause);
  }
  await discardBody(response);
  if (response.status !== 401) return undefined;
  return parseBearerChallenge(response.headers.get('www-authenticate')) ?? {};
}

export interface DiscoveryResult {
  /** Undefined when the server publishes none (the 2025-03-26 fallback was used). */
  resourceMetadata?: ProtectedResourceMetadata;
  /** The canonical RFC 8707 `resource` to send (the server URL, or the metadata's covering prefix). */
  resource: string;
  /** The authorization server's own `issuer` (what credentials and registrations are keyed by). */
  issuer: string;
  authorizationServer: AuthorizationServerMetadata;
  /** How the authorization server was found, for `doctor`. */
  via: 'resource_metadata' | 'origin_metadata' | 'default_endpoints';
}

/**
 * The whole discovery: resource metadata (the challenge's URL first, then the well-known URLs),
 * then the first listed authorization server's metadata. Without any resource metadata, the
 * 2025-03-26 fallback: the MCP server's origin is the authorization server.
 */
export async function discoverAll(opts: {
  serverUrl: string;
  challenge?: BearerChallenge;
  /** See findProtectedResource. */
  expectedResource?: string;
  fetch: FetchLike;
  /** Whether an issuer may omit `code_challenge_methods_supported` (a recognised provider, or config). */
  pkceOptIn?: (issuer: string) => boolean;
}): Promise<DiscoveryResult> {
  const found = await findProtectedResource({
    serverUrl: opts.serverUrl,
    resourceMetadataUrl: opts.challenge?.resourceMetadata,
    expectedResource: opts.expectedResource,
    fetch: opts.fetch,
  });
  if (!found) {
    const origin = new URL(opts.serverUrl).origin;
    const resource = canonicalResourceUri(opts.expectedResource ?? opts.serverUrl);
    const published = await findAuthorizationServer({ issuer: origin, fetch: opts.fetch, acceptMissingPkceMetadata: opts.pkceOptIn?.(origin) });
    const authorizationServer = published ?? defaultEndpointsMetadata(origin);
    return { resource, issuer: authorizationServer.issuer, authorizationServer, via: published ? 'origin_metadata' : 'default_endpoints' };
  }
  // RFC 9728 §7.6 leaves the choice to the client; the first entry is the server's preference.
  const listed = found.metadata.authorization_servers[0];
  const authorizationServer = await discoverAuthorizationServer({ issuer: listed, fetch: opts.fetch, acceptMissingPkceMetadata: opts.pkceOptIn?.(listed) });
  return { resourceMetadata: found.metadata, resource: found.resource, issuer: authorizationServer.issuer, authorizationServer, via: 'resource_metadata' };
}

/** MCP 2026-07-28 "Authorization Server Binding": is `issuer` still one the server names? */
export function listsIssuer(metadata: ProtectedResourceMetadata, issuer: string): boolean {
  return metadata.authorization_servers.some((listed) => sameIssuer(listed, issuer));
}
