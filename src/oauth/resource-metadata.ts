/**
 * Protected Resource Metadata (RFC 9728): where an MCP server says which authorization servers
 * it trusts, and for which resource. Pure: `fetch` is injected (with its deadline: see
 * src/oauth/http.ts).
 */
import * as z from 'zod';
import { McpOAuthError } from '../errors.ts';
import type { FetchLike } from '../types.ts';
import { assertSecureEndpoint, canonicalResourceUri } from './canonical.ts';
import { fetchDocument } from './http.ts';

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
 * The RFC 8707 resource a Protected Resource Metadata document may stand for, given the server URL.
 * RFC 9728 §3.3 asks for the identical identifier; deployed servers (and the MCP SDKs, which accept
 * it) often publish one document at the root for the whole origin, naming the origin or a path
 * prefix as `resource`. Accepted: the same origin, and a path that is the server's path or a
 * prefix of it at a segment boundary (`/a` covers `/a/mcp`, never `/ab/mcp`). Returns the canonical
 * resource to send, or undefined when the document is for something else.
 */
export function resourceCovering(metadataResource: string, serverUrl: string): string | undefined {
  let actual: URL;
  let server: URL;
  try {
    actual = new URL(canonicalResourceUri(metadataResource));
    server = new URL(canonicalResourceUri(serverUrl));
  } catch {
    return undefined;
  }
  if (actual.origin !== server.origin || actual.search !== '' && actual.search !== server.search) return undefined;
  const prefix = actual.pathname.replace(/\/+$/, '');
  const path = server.pathname.replace(/\/+$/, '');
  if (actual.search && prefix !== path) return undefined;
  if (prefix !== path && !path.startsWith(`${prefix}/`)) return undefined;
  return canonicalResourceUri(metadataResource);
}

export interface FoundResourceMetadata {
  metadata: ProtectedResourceMetadata;
  /** The canonical RFC 8707 resource to request tokens for (see resourceCovering). */
  resource: string;
  url: string;
}

/**
 * Looks for the server's Protected Resource Metadata (RFC 9728) and validates it. Undefined when no
 * location has a document (every one answered 404/410): the caller decides whether the 2025-03-26
 * fallback applies.
 */
export async function findProtectedResource(opts: {
  serverUrl: string;
  resourceMetadataUrl?: string;
  /** The configured `oauth_resource` override, when set: then the metadata must name it exactly. */
  expectedResource?: string;
  fetch: FetchLike;
}): Promise<FoundResourceMetadata | undefined> {
  // MCP spec "Communication Security": refuse before any request, since tokens would later be sent
  // to this URL in clear text.
  assertSecureEndpoint(opts.serverUrl, 'MCP server URL');
  if (opts.resourceMetadataUrl) assertSecureEndpoint(opts.resourceMetadataUrl, 'resource_metadata URL');
  const urls = protectedResourceMetadataUrls(opts.serverUrl, opts.resourceMetadataUrl);

  for (const url of urls) {
    // RFC 9728 §3.1 / MCP spec: a missing document at one location means "try the next one".
    const metadata = await fetchDocument(url, protectedResourceMetadataSchema, 'protected resource metadata', opts.fetch);
    if (metadata === undefined) continue;
    return { metadata, resource: checkResource(metadata, opts, url), url };
  }
  return undefined;
}

/**
 * RFC 9728 §3.3 (and §5.1 for the header URL): a document for another resource MUST NOT be used.
 * This is what stops a server from sending us to another resource's authorization server, so it
 * runs before any authorization server request.
 */
function checkResource(metadata: ProtectedResourceMetadata, opts: { serverUrl: string; expectedResource?: string }, url: string): string {
  const expected = canonicalResourceUri(opts.expectedResource ?? opts.serverUrl);
  const covering = opts.expectedResource
    ? (safeCanonical(metadata.resource) === expected ? expected : undefined)
    : resourceCovering(metadata.resource, opts.serverUrl);
  if (covering) return covering;
  throw new McpOAuthError(
    'resource_mismatch',
    `the protected resource metadata at ${url} is for ${JSON.stringify(metadata.resource)}, which does not cover ${JSON.stringify(expected)}; ` +
      'the server may be misconfigured or impersonated, so sign-in was refused',
    { hint: `check the URL: use exactly the MCP endpoint the server documents (the metadata names ${metadata.resource})`, details: { url, expected, actual: metadata.resource } },
  );
}

function safeCanonical(url: string): string {
  try {
    return canonicalResourceUri(url);
  } catch {
    return url;
  }
}

/** Fetches and validates the server's Protected Resource Metadata (RFC 9728); none is an error. */
export async function discoverProtectedResource(opts: {
  serverUrl: string;
  resourceMetadataUrl?: string;
  expectedResource?: string;
  fetch: FetchLike;
}): Promise<ProtectedResourceMetadata> {
  const found = await findProtectedResource(opts);
  if (found) return found.metadata;
  const urls = protectedResourceMetadataUrls(opts.serverUrl, opts.resourceMetadataUrl);
  const expected = canonicalResourceUri(opts.expectedResource ?? opts.serverUrl);
  throw new McpOAuthError('metadata_invalid', `no protected resource metadata (RFC 9728) found for ${expected}; tried ${urls.join(', ')}`, {
    hint: 'check that the URL is the MCP endpoint itself (e.g. https://host/mcp); a server without OAuth needs bearer_token_env_var in the config instead',
    status: 404,
    details: { tried: urls },
  });
}
