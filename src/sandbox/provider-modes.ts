// The sandbox's identity provider modes: the real oidc-provider plus thin middleware that makes it
// answer like Google, Microsoft Entra ID, Keycloak, Atlassian, GitHub, Auth0 or Okta where those
// differ from the standards (the quirks listed, with their sources, in src/oauth/quirks.ts).
// `startSandbox({ provider: NAME })`, `mcp-oauth sandbox --provider NAME`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { errors as oidcErrors } from './oidc-provider-quiet.ts';

export const SANDBOX_PROVIDERS = ['google', 'entra', 'keycloak', 'atlassian', 'github', 'auth0', 'okta'] as const;
export type SandboxProvider = (typeof SANDBOX_PROVIDERS)[number];

export function isSandboxProvider(value: string): value is SandboxProvider {
  return (SANDBOX_PROVIDERS as readonly string[]).includes(value);
}

/** The Entra sandbox's API: scopes name it (`api://…/.default`), never a `resource` parameter. */
export const ENTRA_API_SCOPE = 'api://mcp-sandbox/.default';
const ENTRA_TENANT = '7f1c3b9e-5d2a-4c8e-9b61-0a4e2d8c5f13';

type KoaMiddleware = (ctx: any, next: () => Promise<void>) => Promise<void>;

export interface PreregisteredClient {
  clientId: string;
  clientSecret?: string;
  /** oidc-provider client metadata. */
  metadata: Record<string, unknown>;
}

export interface ProviderMode {
  name: SandboxProvider;
  /** The issuer's path (oidc-provider is mounted under it): '/realms/demo', '/{tenant}/v2.0', … */
  issuerPath: string;
  /** No dynamic registration: the one pre-registered client (googleMode has its own). */
  client?: PreregisteredClient;
  revocation: boolean;
  /** Tokens are for the MCP server even without a `resource` parameter (Entra: it never gets one). */
  resourceDefaultsToMcp: boolean;
  /** Defaults of the sandbox for this provider. */
  scopesSupported?: string[];
  requiredScope?: string;
  rotateRefreshTokens?: boolean;
  /** Koa middleware inside the sandbox's own (sees the request as sent, rewrites the answer). */
  middleware: KoaMiddleware;
  /** Whether the grant of this authorization request gets a refresh token (undefined: always). */
  refreshTokenFor?: (params: Record<string, unknown>) => boolean;
  /** Called from getResourceServerInfo: Entra refuses a `resource` next to `.default` scopes. */
  checkResource?: (ctx: any) => void;
  /** Node-level routing before oidc-provider: issuer path prefix, metadata locations. True: answered. */
  route(req: IncomingMessage, res: ServerResponse): boolean;
}

function scopesOf(value: unknown): string[] {
  return typeof value === 'string' ? value.split(' ').filter(Boolean) : [];
}

function notFound(res: ServerResponse): true {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: 'not_found' }));
  return true;
}

/**
 * Mounts oidc-provider under the issuer's path with plain node:http: the path is stripped from
 * `req.url` and the full one kept in `req.originalUrl`, from which oidc-provider derives the mount
 * path of the URLs it builds (its "mounting" documentation). Interaction pages stay at the root.
 */
function mountedRouter(issuerPath: string, opts: { blocked?: string[]; aliases?: Record<string, string> } = {}) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    const path = url.pathname;
    if (path.startsWith('/interaction/')) return false;
    const alias = opts.aliases?.[path];
    const target = alias ?? path;
    if (opts.blocked?.includes(target) && !alias) return notFound(res);
    if (!issuerPath) return false;
    if (target !== issuerPath && !target.startsWith(`${issuerPath}/`)) return notFound(res);
    (req as IncomingMessage & { originalUrl?: string }).originalUrl = target + url.search;
    req.url = (target.slice(issuerPath.length) || '/') + url.search;
    return false;
  };
}

/** States of authorization requests that asked for offline_access (oidc-provider drops the scope
 * from its own view of the request unless prompt=consent is sent, so it is seen here first). */
function offlineTracker() {
  const states = new Set<string>();
  return {
    note(ctx: any): void {
      if (ctx.path === '/auth' && scopesOf(ctx.query.scope).includes('offline_access') && typeof ctx.query.state === 'string') states.add(ctx.query.state);
    },
    asked: (params: Record<string, unknown>) => typeof params.state === 'string' && states.has(params.state),
  };
}

/** An error redirect like the provider's (RFC 6749 §4.1.2.1 + RFC 9207 `iss`), only ever to a
 * loopback redirect URI (the sandbox's clients). */
function redirectError(ctx: any, issuer: string, error: string, description: string): boolean {
  let redirect: URL;
  try {
    redirect = new URL(String(ctx.query.redirect_uri));
  } catch {
    return false;
  }
  if (redirect.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(redirect.hostname)) return false;
  redirect.searchParams.set('error', error);
  redirect.searchParams.set('error_description', description);
  if (typeof ctx.query.state === 'string') redirect.searchParams.set('state', ctx.query.state);
  redirect.searchParams.set('iss', issuer);
  ctx.status = 303;
  ctx.redirect(redirect.href);
  return true;
}

function isTokenRequest(ctx: any): boolean {
  return ctx.method === 'POST' && ctx.path === '/token';
}

function isDiscovery(ctx: any): boolean {
  return ctx.method === 'GET' && ctx.path === '/.well-known/openid-configuration' && ctx.body && typeof ctx.body === 'object';
}

function refusedRefresh(ctx: any): boolean {
  return isTokenRequest(ctx) && ctx.oidc?.params?.grant_type === 'refresh_token' && ctx.status >= 400 && ctx.body?.error === 'invalid_grant';
}

function preregistered(name: SandboxProvider, secret: string | undefined): PreregisteredClient {
  const clientId = `sandbox-${name}-${randomBytes(6).toString('hex')}`;
  return {
    clientId,
    clientSecret: secret,
    metadata: {
      client_id: clientId,
      ...(secret ? { client_secret: secret } : {}),
      client_name: `Pre-registered sandbox client (${name})`,
      // A desktop/native app: loopback redirect on any port (RFC 8252 §7.3).
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: secret ? 'client_secret_basic' : 'none',
    },
  };
}

/** The mode for a provider. `issuer` is the full issuer (origin + issuerPath). */
export function createProviderMode(
  name: SandboxProvider,
  opts: { issuer: () => string; refreshTokenTtlSeconds: number; clientSecret?: string; reuseDetected: () => number },
): ProviderMode {
  const offline = offlineTracker();
  const base = { name, revocation: true, resourceDefaultsToMcp: false };

  switch (name) {
    case 'google':
      // The pre-registered client, access_type/prompt and the kept refresh token are googleMode's.
      return {
        ...base,
        issuerPath: '',
        route: () => false,
        middleware: async (ctx, next) => {
          // Google does not know offline_access: "Error 400: invalid_scope".
          if (ctx.path === '/auth' && scopesOf(ctx.query.scope).includes('offline_access')
            && redirectError(ctx, opts.issuer(), 'invalid_scope', 'Some requested scopes were invalid. {invalid=[offline_access]}')) return;
          await next();
        },
      };
    case 'entra': {
      const issuerPath = `/${ENTRA_TENANT}/v2.0`;
      return {
        ...base,
        issuerPath,
        client: preregistered(name, undefined),
        revocation: false,
        resourceDefaultsToMcp: true,
        scopesSupported: [ENTRA_API_SCOPE, 'offline_access'],
        requiredScope: ENTRA_API_SCOPE,
        // OpenID Connect discovery only: no RFC 8414 document at either location.
        route: mountedRouter(issuerPath, { blocked: [`${issuerPath}/.well-known/oauth-authorization-server`, `/.well-known/oauth-authorization-server${issuerPath}`] }),
        refreshTokenFor: offline.asked,
        checkResource(ctx) {
          // The request as sent (oidc-provider fills in the default resource in its own params).
          const query = ctx.query ?? {};
          if (query.resource !== undefined && scopesOf(query.scope).some((s) => s.endsWith('/.default'))) {
            throw new oidcErrors.InvalidTarget("AADSTS9010010: The resource parameter provided in the request doesn't match with the requested scopes.");
          }
        },
        middleware: async (ctx, next) => {
          offline.note(ctx);
          await next();
          // The live document has no code_challenge_methods_supported, although S256 works.
          if (isDiscovery(ctx)) delete ctx.body.code_challenge_methods_supported;
        },
      };
    }
    case 'keycloak':
      return {
        ...base,
        issuerPath: '/realms/demo',
        route: mountedRouter('/realms/demo'),
        middleware: async (ctx, next) => {
          const reuseBefore = opts.reuseDetected();
          await next();
          if (refusedRefresh(ctx)) {
            // Keycloak's words for a reused refresh token (Revoke Refresh Token, Max Reuse 0).
            const reused = opts.reuseDetected() > reuseBefore;
            ctx.body = { error: 'invalid_grant', error_description: reused ? 'Maximum allowed refresh token reuse exceeded' : 'Token is not active' };
          } else if (isTokenRequest(ctx) && ctx.status === 200 && ctx.body?.refresh_token) {
            // Like a realm with "Offline Session Max Limited" (an unlimited offline token says 0).
            Object.assign(ctx.body, { refresh_expires_in: opts.refreshTokenTtlSeconds, 'not-before-policy': 0, session_state: randomBytes(8).toString('hex') });
          }
        },
      };
    case 'atlassian':
      return {
        ...base,
        issuerPath: '',
        route: () => false,
        refreshTokenFor: offline.asked,
        middleware: async (ctx, next) => {
          offline.note(ctx);
          await next();
          if (refusedRefresh(ctx)) {
            ctx.status = 403;
            ctx.body = { error: 'unauthorized_client', error_description: 'refresh_token is invalid' };
          }
        },
      };
    case 'github': {
      const issuerPath = '/login/oauth';
      return {
        ...base,
        issuerPath,
        client: preregistered(name, opts.clientSecret ?? randomBytes(24).toString('base64url')),
        scopesSupported: ['mcp:tools', 'mcp:admin'],
        // Only the RFC 8414 path-insertion location (https://github.com/.well-known/oauth-authorization-server/login/oauth).
        route: mountedRouter(issuerPath, {
          aliases: { [`/.well-known/oauth-authorization-server${issuerPath}`]: `${issuerPath}/.well-known/openid-configuration` },
          blocked: [`${issuerPath}/.well-known/openid-configuration`, `${issuerPath}/.well-known/oauth-authorization-server`],
        }),
        middleware: async (ctx, next) => {
          const wantsJson = /\bapplication\/json\b/i.test(ctx.get('accept'));
          await next();
          if (!isTokenRequest(ctx) || !ctx.body || typeof ctx.body !== 'object') return;
          if (refusedRefresh(ctx)) ctx.body = { error: 'bad_refresh_token', error_description: 'The refresh token passed is incorrect or expired.' };
          // Errors come with HTTP 200 and an `error` member.
          if (ctx.status >= 400 && ctx.body.error) ctx.status = 200;
          if (ctx.body.refresh_token) ctx.body.refresh_token_expires_in = opts.refreshTokenTtlSeconds;
          if (!wantsJson) {
            // Form-encoded unless asked for JSON ("Authorizing OAuth apps").
            const form = new URLSearchParams(Object.entries(ctx.body).map(([k, v]) => [k, String(v)])).toString();
            ctx.type = 'application/x-www-form-urlencoded';
            ctx.body = form;
          }
        },
      };
    }
    case 'auth0':
    case 'okta': {
      const issuerPath = name === 'okta' ? '/oauth2/default' : '';
      return {
        ...base,
        issuerPath,
        route: name === 'okta' ? mountedRouter(issuerPath) : () => false,
        refreshTokenFor: offline.asked,
        middleware: async (ctx, next) => {
          offline.note(ctx);
          if (name === 'auth0' && ctx.path === '/auth') {
            // Auth0 names the API by `audience`, and ignores `resource`: without an audience the
            // token is for Auth0's own userinfo, opaque to the MCP server.
            const query = new URLSearchParams(ctx.querystring);
            const audience = query.get('audience');
            query.delete('resource');
            if (audience) query.set('resource', audience);
            ctx.querystring = query.toString();
          }
          await next();
          // Left out of the metadata so the tests show that the provider profile, not the
          // metadata, is what asks for it (the live documents may list it).
          if (isDiscovery(ctx) && Array.isArray(ctx.body.scopes_supported)) {
            ctx.body.scopes_supported = ctx.body.scopes_supported.filter((s: string) => s !== 'offline_access');
          }
        },
      };
    }
  }
}
