/**
 * Discovery: from an MCP server URL to its Protected Resource Metadata (RFC 9728) and from there to
 * the authorization server's metadata (RFC 8414 / OpenID Connect Discovery 1.0), in the order the
 * MCP spec 2025-11-25 "Authorization Server Discovery" prescribes. Pure: `fetch` is injected.
 */
import * as z from 'zod';
import { McpOAuthError } from '../errors.ts';
import type { FetchLike } from '../types.ts';
import { assertSecureEndpoint, canonicalResourceUri } from './canonical.ts';
import { parseBearerChallenge, type BearerChallenge } from './www-authenticate.ts';

/** RFC 9728 §2. Unknown members are kept (§2: clients MUST ignore what they do not understand). */
export const protectedResourceMetadataSchema = z.looseObject({
  resource: z.string().min(1),
  // RFC 9728 makes this OPTIONAL; MCP spec "Authorization Server Location" makes it a MUST with
  // at least one entry, and without it there is nobody to sign in with.
  authorization_servers: z.array(z.string().min(1)).min(1),
  scopes_supported: z.array(z.string()).optional(),
  bearer_methods_supported: z.array(z.string()).optional(),
  resource_name: z.string().optional(),
  resource_documentation: z.string().optional(),
});
export type ProtectedResourceMetadata = z.infer<typeof protectedResourceMetadataSchema>;

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

const PRM_WELL_KNOWN = '/.well-known/oauth-protected-resource';

/**
 * Where to look for Protected Resource Metadata, in order. MCP spec 2025-11-25 "Protected Resource
 * Metadata Discovery Requirements": the `resource_metadata` URL from `WWW-Authenticate` first
 * (RFC 9728 §5.1), else the well-known URI built by path insertion (RFC 9728 §3.1: the suffix goes
 * between host and path, terminating slash removed), then the root well-known URI.
 */
export function protectedResourceMetadataUrls(serverUrl: string, fromHeader?: string): string[] {
  const canonical = new URL(canonicalResourceUri(serverUrl));
  const urls: string[] = [];
  if (fromHeader) urls.push(fromHeader);
  const rest = canonical.pathname.replace(/\/+$/, '') + canonical.search;
  // "Not applicable if the MCP server is at the root": then path form and root form coincide.
  if (rest) urls.push(`${canonical.origin}${PRM_WELL_KNOWN}${rest}`);
  urls.push(`${canonical.origin}${PRM_WELL_KNOWN}`);
  return [...new Set(urls)];
}

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

/** Fetches and validates the server's Protected Resource Metadata (RFC 9728). */
export async function discoverProtectedResource(opts: {
  serverUrl: string;
  resourceMetadataUrl?: string;
  /** The configured `oauth_resource` override, when set: then the metadata must name it instead. */
  expectedResource?: string;
  fetch: FetchLike;
}): Promise<ProtectedResourceMetadata> {
  // MCP spec "Communication Security": refuse before any request, since tokens would later be sent
  // to this URL in clear text.
  assertSecureEndpoint(opts.serverUrl, 'MCP server URL');
  if (opts.resourceMetadataUrl) assertSecureEndpoint(opts.resourceMetadataUrl, 'resource_metadata URL');
  const expected = canonicalResourceUri(opts.expectedResource ?? opts.serverUrl);
  const urls = protectedResourceMetadataUrls(opts.serverUrl, opts.resourceMetadataUrl);

  for (const url of urls) {
    const response = await getJson(url, opts.fetch);
    // RFC 9728 §3.1 / MCP spec: a missing document at one location means "try the next one".
    if (response.status === 404 || response.status === 410) {
      await discardBody(response);
      continue;
    }
    await assertSuccess(response, url, 'protected resource metadata');
    const metadata = parseDocument(protectedResourceMetadataSchema, await readJson(response, url), url);

    // RFC 9728 §3.3 (and §5.1 for the header URL): the `resource` MUST be identical to the resource
    // identifier we used; otherwise the document MUST NOT be used. This is what stops a server from
    // sending us to another resource's authorization server, so it runs before any AS request.
    let actual: string;
    try {
      actual = canonicalResourceUri(metadata.resource);
    } catch {
      actual = metadata.resource;
    }
    if (actual !== expected) {
      throw new McpOAuthError(
        'resource_mismatch',
        `the protected resource metadata at ${url} is for ${JSON.stringify(metadata.resource)}, not ${JSON.stringify(expected)}; ` +
          'the server may be misconfigured or impersonated, so sign-in was refused',
        { hint: `check the URL: use exactly the MCP endpoint the server documents (the metadata names ${metadata.resource})`, details: { url, expected, actual: metadata.resource } },
      );
    }
    return metadata;
  }

  throw new McpOAuthError('metadata_invalid', `no protected resource metadata (RFC 9728) found for ${expected}; tried ${urls.join(', ')}`, {
    hint: 'check that the URL is the MCP endpoint itself (e.g. https://host/mcp); a server without OAuth needs bearer_token_env_var in the config instead',
    status: 404,
    details: { tried: urls },
  });
}

/** Fetches and validates the authorization server's metadata (RFC 8414 / OIDC Discovery). */
export async function discoverAuthorizationServer(opts: { issuer: string; fetch: FetchLike }): Promise<AuthorizationServerMetadata> {
  const { issuer } = opts;
  assertSecureEndpoint(issuer, 'authorization server issuer');
  const candidates = authorizationServerMetadataUrls(issuer);
  // A later location may still hold a valid document (servers often answer unknown paths with an
  // HTML page or an error), so failures are remembered and only reported if nothing works.
  let documentError: McpOAuthError | undefined;
  let serverError: McpOAuthError | undefined;

  for (const { url } of candidates) {
    const response = await getJson(url, opts.fetch);
    if (response.status === 404 || response.status === 410) {
      await discardBody(response);
      continue;
    }
    try {
      await assertSuccess(response, url, 'authorization server metadata');
      const metadata = parseDocument(authorizationServerMetadataSchema, await readJson(response, url), url);
      validateAuthorizationServerMetadata(metadata, issuer, url);
      // MCP spec 2025-11-25 "Authorization Code Protection": PKCE support is known only from the
      // metadata; if `code_challenge_methods_supported` is absent or lacks S256 we MUST refuse.
      if (!metadata.code_challenge_methods_supported?.includes('S256')) {
        throw new McpOAuthError(
          'pkce_unsupported',
          `the authorization server ${issuer} does not advertise PKCE with S256 (code_challenge_methods_supported is ${
            JSON.stringify(metadata.code_challenge_methods_supported) ?? 'absent'
          }); MCP requires PKCE, so sign-in was refused`,
          { hint: 'ask the server operator to enable PKCE (S256) on the authorization server; nothing can be fixed locally', details: { url } },
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
  const tried = candidates.map((c) => c.url);
  throw new McpOAuthError('metadata_invalid', `no authorization server metadata found for issuer ${issuer}; tried ${tried.join(', ')}`, {
    hint: 'the MCP server names an authorization server that publishes neither RFC 8414 nor OpenID Connect discovery; report it to the server operator',
    status: 404,
    details: { tried },
  });
}

/** RFC 8414 §3.3 issuer equality and OAuth 2.1 §1.5 https endpoints. */
export function validateAuthorizationServerMetadata(metadata: AuthorizationServerMetadata, issuer: string, url: string): void {
  // RFC 8414 §3.3: the `issuer` MUST be identical to the issuer used to build the metadata URL,
  // else the document MUST NOT be used (it prevents one AS impersonating another; the 2026-07-28
  // MCP revision keys credentials by issuer, so this identity has to be exact).
  if (metadata.issuer !== issuer) {
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
 * Sends an unauthenticated MCP `initialize` and returns the Bearer challenge of the 401 answer
 * (RFC 9728 §5.1, MCP spec "Authorization Server Discovery" sequence). Undefined when the server
 * does not answer 401 (it may not need OAuth at all). A 401 without a Bearer challenge gives {}.
 */
export async function probeChallenge(opts: { serverUrl: string; fetch: FetchLike }): Promise<BearerChallenge | undefined> {
  assertSecureEndpoint(opts.serverUrl, 'MCP server URL');
  const body = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'mcp-oauth', version: '0.1.0' } },
  };
  let response: Response;
  try {
    response = await opts.fetch(opts.serverUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify(body),
    });
  } catch (cause) {
    throw networkError(opts.serverUrl, cause);
  }
  await discardBody(response);
  if (response.status !== 401) return undefined;
  return parseBearerChallenge(response.headers.get('www-authenticate')) ?? {};
}

/** The whole discovery: PRM, then the first listed authorization server's metadata. */
export async function discoverAll(opts: {
  serverUrl: string;
  challenge?: BearerChallenge;
  /** See discoverProtectedResource. */
  expectedResource?: string;
  fetch: FetchLike;
}): Promise<{ resourceMetadata: ProtectedResourceMetadata; issuer: string; authorizationServer: AuthorizationServerMetadata }> {
  const resourceMetadata = await discoverProtectedResource({
    serverUrl: opts.serverUrl,
    resourceMetadataUrl: opts.challenge?.resourceMetadata,
    expectedResource: opts.expectedResource,
    fetch: opts.fetch,
  });
  // RFC 9728 §7.6 leaves the choice to the client; the first entry is the server's preference.
  const issuer = resourceMetadata.authorization_servers[0];
  const authorizationServer = await discoverAuthorizationServer({ issuer, fetch: opts.fetch });
  return { resourceMetadata, issuer, authorizationServer };
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers shared by the two discovery steps.

async function getJson(url: string, fetch: FetchLike): Promise<Response> {
  try {
    return await fetch(url, { method: 'GET', headers: { accept: 'application/json' } });
  } catch (cause) {
    throw networkError(url, cause);
  }
}

function networkError(url: string, cause: unknown): McpOAuthError {
  const host = safeHost(url);
  const reason = cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause);
  return new McpOAuthError('network_error', `could not reach ${url}: ${reason}`, {
    hint: `check that ${host} is reachable, then retry`,
    cause,
    details: { url },
  });
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
  const text = await response.text();
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

async function discardBody(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // Already consumed or the stream errored: nothing to release.
  }
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
