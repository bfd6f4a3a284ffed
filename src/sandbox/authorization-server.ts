// The sandbox authorization server: a real oidc-provider (v9) configured like an MCP-ready AS on
// loopback: RFC 8414 + OIDC discovery, RFC 7591 DCR, RFC 7636 PKCE (S256 only, always required),
// RFC 8707 resource indicators (JWT access tokens whose `aud` is the MCP server), RFC 7009
// revocation, RFC 9207 `iss` in authorization responses, refresh token rotation + reuse detection.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors as oidcErrors } from './oidc-provider-quiet.ts';
import { consentPage, loginPage } from './pages.ts';
import { deviceFlowFeature, deviceFlowMiddleware } from './device-flow.ts';
import type { SandboxOptions, SandboxState } from './types.ts';
import type { ProviderMode } from './provider-modes.ts';

export const DEMO_ACCOUNT = 'demo';
const OIDC_SCOPES = new Set(['openid', 'offline_access']);

export interface AuthorizationServer {
  handle(req: IncomingMessage, res: ServerResponse): void;
  googleClient?: { clientId: string; clientSecret: string };
  /** The provider mode's pre-registered client (no dynamic registration), when it has one. */
  preregisteredClient?: { clientId: string; clientSecret?: string };
  revokeAllGrants(): Promise<void>;
}

export interface AuthorizationServerInit {
  issuer: string;
  mcpUrl: string;
  options: Required<Pick<SandboxOptions, 'accessTokenTtlSeconds' | 'refreshTokenTtlSeconds' | 'rotateRefreshTokens' | 'googleMode' | 'autoApprove' | 'scopesSupported'>> &
    Pick<SandboxOptions, 'googleClientSecret' | 'deviceFlow' | 'deviceIntervalSeconds'>;
  state: SandboxState;
  /** oidc-provider `routes` overrides (the discovery modes' 2025-03-26 default endpoints). */
  routes?: Record<string, string>;
  /** Called with the provider before its request handler is built (more middleware: issuer-counters.ts). */
  extend?: (provider: any) => void;
  /** Behave like an identity provider (provider-modes.ts). */
  mode?: ProviderMode;
  /** Called with the oidc-provider configuration before the provider is built (more clients and
   * features: the grant modes, grant-modes.ts; the enterprise IdP, enterprise-idp.ts). */
  configure?: (config: any) => void;
}

function resourceScopesOf(scopesSupported: string[]): string[] {
  return scopesSupported.filter((s) => !OIDC_SCOPES.has(s));
}

function asList(value: unknown): string[] {
  if (value === undefined || value === null || value === '') return [];
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export async function createAuthorizationServer(init: AuthorizationServerInit): Promise<AuthorizationServer> {
  const { issuer, mcpUrl, options, state, mode } = init;
  // Tokens for the MCP server even without a `resource` parameter (Google ignores it, Entra refuses it).
  const resourceByDefault = options.googleMode || !!mode?.resourceDefaultsToMcp;
  const resourceScopes = resourceScopesOf(options.scopesSupported);
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('hex'), alg: 'ES256', use: 'sig' };

  const grantIds = new Set<string>();
  // googleMode: grants whose authorization request had access_type=offline AND prompt=consent.
  const offlineGrants = new Set<string>();

  const googleClient = options.googleMode
    ? { clientId: `sandbox-google-${randomBytes(6).toString('hex')}.apps.example`, clientSecret: options.googleClientSecret ?? randomBytes(24).toString('base64url') }
    : undefined;

  const config: any = {
    clients: googleClient
      ? [{
          client_id: googleClient.clientId,
          client_secret: googleClient.clientSecret,
          client_name: 'Pre-registered sandbox client (googleMode)',
          // Like a Google "Desktop app" client: loopback redirect on any port (RFC 8252 §7.3).
          application_type: 'native',
          redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        }]
      : mode?.client ? [mode.client.metadata] : [],
    jwks: { keys: [signingKey] },
    ...(init.routes ? { routes: init.routes } : {}),
    scopes: ['openid', ...options.scopesSupported.filter((s) => s !== 'openid')],
    claims: { openid: ['sub'] },
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    extraParams: ['access_type'],
    responseTypes: ['code'],
    clientDefaults: { id_token_signed_response_alg: 'ES256', grant_types: ['authorization_code'], response_types: ['code'] },
    // Google ignores `resource`; elsewhere a missing `resource` yields an opaque token the MCP server rejects.
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: !options.googleMode && !mode?.client },
      revocation: { enabled: mode?.revocation ?? true },
      deviceFlow: deviceFlowFeature(options.deviceFlow !== false), // RFC 8628: device-flow.ts
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: string) => oneOf ?? (resourceByDefault ? mcpUrl : undefined),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx: unknown, resourceIndicator: string) => {
          mode?.checkResource?.(ctx);
          // RFC 8707 §2: the only protected resource here is the MCP server's canonical URI.
          if (resourceIndicator !== mcpUrl) throw new oidcErrors.InvalidTarget();
          return {
            scope: resourceScopes.join(' '),
            audience: mcpUrl,
            accessTokenTTL: options.accessTokenTtlSeconds,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    // The grant id travels in the JWT so the MCP server can reject tokens of revoked grants.
    extraTokenClaims: async (_ctx: unknown, token: { grantId?: string }) => ({ gid: token.grantId }),
    pkce: { required: () => true },
    expiresWithSession: async () => false,
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }, code: { grantId: string; scopes: Set<string> }) => {
      if (!client.grantTypeAllowed('refresh_token')) return false;
      // Google only returns a refresh token for access_type=offline&prompt=consent.
      if (options.googleMode || mode?.refreshTokenFor) return offlineGrants.has(code.grantId);
      return true;
    },
    rotateRefreshToken: options.rotateRefreshTokens,
    ttl: {
      AccessToken: options.accessTokenTtlSeconds,
      AuthorizationCode: 60,
      DeviceCode: 600, // RFC 8628 §3.2 expires_in: 10 minutes to enter the code
      RefreshToken: options.refreshTokenTtlSeconds,
      Grant: options.refreshTokenTtlSeconds,
      Session: options.refreshTokenTtlSeconds,
      Interaction: 3600,
      IdToken: 3600,
    },
    renderError: async (ctx: { type: string; body: string }, out: Record<string, string>) => {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><html><body><h1>Sandbox authorization error</h1><pre>${Object.entries(out)
        .map(([k, v]) => `${k}: ${String(v).replace(/[<>&]/g, '')}`)
        .join('\n')}</pre></body></html>`;
    },
  };
  init.configure?.(config);
  const provider = new Provider(issuer, config);

  provider.on('grant.revoked', (_ctx: unknown, grantId: string) => {
    state.revokedGrantIds.add(grantId);
  });
  provider.on('grant.error', (_ctx: unknown, err: { error_description?: string; error_detail?: string }) => {
    // oidc-provider revokes the whole grant when a consumed (rotated) refresh token is presented
    // again (OAuth 2.0 Security BCP §4.14.2 / RFC 9700 refresh token reuse detection).
    if ([err?.error_detail, err?.error_description].includes('refresh token already used')) state.counters.refreshReuseDetected += 1;
  });
  provider.on('registration_create.success', () => {
    state.counters.registrations += 1;
  });

  let inflight = 0;
  provider.use(async (ctx: any, next: () => Promise<void>) => {
    const { counters } = state;
    if (ctx.method === 'GET' && ctx.path === '/.well-known/oauth-authorization-server') {
      // RFC 8414 §3: same document as OIDC discovery (issuer without a path → root well-known).
      ctx.path = '/.well-known/openid-configuration';
    }
    if (ctx.path === (init.routes?.authorization ?? '/auth')) {
      counters.authorizeRequests.push(Object.fromEntries(new URLSearchParams(ctx.querystring)));
    }
    if (ctx.path === '/token/revocation' && ctx.method === 'POST') counters.revocations += 1;
    if (ctx.path !== '/token' || ctx.method !== 'POST') return next();

    inflight += 1;
    const entry = { grantType: 'unknown', at: Date.now(), concurrent: inflight, accept: ctx.get('accept') || undefined } as {
      grantType: string; resource?: string[]; at: number; concurrent: number; accept?: string;
    };
    counters.tokenRequestLog.push(entry);
    try {
      const fault = state.fault;
      if (fault && fault.times > 0) {
        fault.times -= 1;
        if (fault.times <= 0) state.fault = undefined;
        const form = await readForm(ctx.req);
        entry.grantType = form.get('grant_type') ?? 'unknown';
        if (form.getAll('resource').length) entry.resource = form.getAll('resource');
        ctx.status = fault.status;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = fault.body ?? { error: 'temporarily_unavailable', error_description: 'sandbox fault injection' };
        return;
      }
      await next();
      const params = ctx.oidc?.params ?? {};
      entry.grantType = params.grant_type ?? 'unknown';
      const resource = asList(params.resource);
      if (resource.length) entry.resource = resource;
      if (options.googleMode && entry.grantType === 'refresh_token' && ctx.body && typeof ctx.body === 'object') {
        // Google answers a refresh without a refresh_token: the client must keep the one it has.
        delete ctx.body.refresh_token;
      }
    } finally {
      inflight -= 1;
      counters.tokenRequests[entry.grantType] = (counters.tokenRequests[entry.grantType] ?? 0) + 1;
    }
  });
  // Inside the middleware above: it sees the request as sent and the answer as the provider's.
  if (mode) provider.use(mode.middleware);

  /** Create a grant with everything the authorization request asked for (sandbox: no partial consent). */
  async function approve(details: any, accountId: string): Promise<string> {
    const params = details.params as Record<string, unknown>;
    const grant = new provider.Grant({ accountId, clientId: params.client_id });
    const requested = asList(params.scope).flatMap((s) => s.split(' ')).filter(Boolean);
    // oidc-provider checks every requested scope listed in `scopes` (what discovery advertises)
    // as an "OIDC scope", and the resource server's scopes per resource: grant both.
    const oidc = requested.filter((s) => OIDC_SCOPES.has(s) || options.scopesSupported.includes(s));
    if (oidc.length) grant.addOIDCScope(oidc.join(' '));
    const rs = requested.filter((s) => resourceScopes.includes(s));
    const resources = asList(params.resource);
    if (!resources.length && resourceByDefault) resources.push(mcpUrl);
    for (const resource of resources) grant.addResourceScope(resource, rs.join(' '));
    const grantId: string = await grant.save();
    grantIds.add(grantId);
    const prompts = String(params.prompt ?? '').split(' ');
    if (params.access_type === 'offline' && prompts.includes('consent')) offlineGrants.add(grantId);
    if (mode?.refreshTokenFor?.(params)) offlineGrants.add(grantId);
    return grantId;
  }

  async function handleInteraction(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const [, , uid, action] = url.pathname.split('/');
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    const client = await provider.Client.find(details.params.client_id);
    const clientName: string = client?.clientName ?? details.params.client_id;
    const html = (body: string, status = 200) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(body);
    };

    if (options.autoApprove) {
      const accountId: string = details.session?.accountId ?? DEMO_ACCOUNT;
      const grantId = await approve(details, accountId);
      const result = details.prompt.name === 'login'
        ? { login: { accountId }, consent: { grantId } }
        : { consent: { grantId } };
      return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
    }

    if (req.method === 'GET' && !action) {
      if (details.prompt.name === 'login') return html(loginPage(uid, clientName));
      const scopes = asList(details.params.scope).flatMap((s) => s.split(' ')).filter(Boolean);
      return html(consentPage(uid, clientName, scopes, asList(details.params.resource)));
    }
    if (req.method === 'POST' && action === 'login') {
      const form = await readForm(req);
      if (form.get('username') !== DEMO_ACCOUNT || form.get('password') !== 'demo') {
        return html(loginPage(uid, clientName, 'Wrong username or password (use demo / demo).'), 401);
      }
      return provider.interactionFinished(req, res, { login: { accountId: DEMO_ACCOUNT } }, { mergeWithLastSubmission: false });
    }
    if (req.method === 'POST' && action === 'confirm') {
      await readForm(req);
      const grantId = await approve(details, details.session?.accountId ?? DEMO_ACCOUNT);
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    if (req.method === 'POST' && action === 'abort') {
      await readForm(req);
      return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-user denied the request' }, { mergeWithLastSubmission: false });
    }
    html('<!DOCTYPE html><p>Not found</p>', 404);
  }

  init.extend?.(provider);
  provider.use(deviceFlowMiddleware(state, { intervalSeconds: options.deviceIntervalSeconds, authorizationPath: init.routes?.device_authorization ?? '/device/auth', tokenPath: init.routes?.token ?? '/token' }));
  const callback = provider.callback();
  return {
    googleClient,
    ...(mode?.client ? { preregisteredClient: { clientId: mode.client.clientId, clientSecret: mode.client.clientSecret } } : {}),
    handle(req, res) {
      // The provider's issuer path and metadata locations (provider-modes.ts).
      if (mode?.route(req, res)) return;
      const url = new URL(req.url ?? '/', issuer);
      if (url.pathname.startsWith('/interaction/')) {
        handleInteraction(req, res, url).catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(`interaction failed: ${(err as Error)?.message ?? 'unknown error'}`);
        });
        return;
      }
      callback(req, res);
    },
    async revokeAllGrants() {
      for (const grantId of grantIds) {
        state.revokedGrantIds.add(grantId);
        const grant = await provider.Grant.find(grantId);
        if (grant) await grant.destroy();
        for (const model of [provider.RefreshToken, provider.AuthorizationCode, provider.AccessToken]) {
          await model.adapter.revokeByGrantId(grantId);
        }
      }
    },
  };
}
