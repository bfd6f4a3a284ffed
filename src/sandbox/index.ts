// The sandbox: a real authorization server (oidc-provider) and a real MCP server on 127.0.0.1,
// ephemeral ports. Used by the e2e tests, `mcp-oauth sandbox` / `npm run demo`, and the benchmarks.
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAuthorizationServer } from './authorization-server.ts';
import { createMcpResourceServer } from './mcp-server.ts';
import { audienceFor, discoveryProfile, recordingMetadataRequests } from './discovery-modes.ts';
import { issuerCounters } from './issuer-counters.ts';
import { emptyCounters } from './types.ts';
import { createProviderMode } from './provider-modes.ts';
import { setupGrantModes } from './grant-modes.ts';
import type { GrantModes } from './grant-modes.ts';
import { createDpopResourceCheck } from './dpop-check.ts';
import { configureDpop } from './dpop-as.ts';
import type { Sandbox, SandboxOptions, SandboxState } from './types.ts';

export type {
  DiscoveryMode, DpopCounters, GrantOutcome, IssuerCounters, McpLogEntry, Sandbox, SandboxCounters, SandboxOptions, TokenEndpointFault, TokenRequestLogEntry,
} from './types.ts';
export { SANDBOX_GRANTS, isSandboxGrant, JWT_BEARER_GRANT, TOKEN_EXCHANGE_GRANT, type SandboxGrant, type GrantClients, type PrivateKeyJwtClient, type SecretClient } from './grant-clients.ts';
export { SANDBOX_DPOP_MODES, isSandboxDpop, type SandboxDpop } from './dpop-check.ts';
export { WORKLOAD_ISSUER, type WorkloadIssuer, type WorkloadMintOptions } from './workload.ts';
export { ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE, type EnterpriseIdp } from './enterprise-idp.ts';
export { DISCOVERY_MODES, DISCOVERY_MODE_DESCRIPTIONS, isDiscoveryMode } from './discovery-modes.ts';
export { SANDBOX_PROVIDERS, isSandboxProvider, type SandboxProvider } from './provider-modes.ts';
export { SANDBOX_PROTOCOLS, SANDBOX_PROTOCOL_DESCRIPTIONS, isSandboxProtocol, type SandboxProtocol } from './eras.ts';

const DEFAULT_SCOPES = ['mcp:tools', 'mcp:admin', 'offline_access'];

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** RFC 8414 §2 `token_endpoint` in the metadata documents (both well-known paths) set to `url`. */
function advertiseTokenEndpoint(provider: any, url: string): void {
  provider.use(async (ctx: any, next: () => Promise<void>) => {
    await next();
    if (ctx.method === 'GET' && ctx.path.startsWith('/.well-known/') && ctx.body && typeof ctx.body === 'object' && 'token_endpoint' in ctx.body) {
      ctx.body.token_endpoint = url;
    }
  });
}

export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  // An identity provider's quirks (provider-modes.ts); `googleMode` is provider 'google'.
  const providerName = opts.provider ?? (opts.googleMode ? 'google' : undefined);
  const googleMode = opts.googleMode ?? providerName === 'google';
  let issuerOfMode = '';
  const mode = providerName
    ? createProviderMode(providerName, {
        issuer: () => issuerOfMode,
        refreshTokenTtlSeconds: opts.refreshTokenTtlSeconds ?? 14 * 24 * 3600,
        clientSecret: opts.clientSecret ?? opts.googleClientSecret,
        reuseDetected: () => state.counters.refreshReuseDetected,
      })
    : undefined;
  const options = {
    accessTokenTtlSeconds: opts.accessTokenTtlSeconds ?? 3600,
    refreshTokenTtlSeconds: opts.refreshTokenTtlSeconds ?? 14 * 24 * 3600,
    // Google does not rotate refresh tokens; everyone else in the sandbox does by default.
    rotateRefreshTokens: opts.rotateRefreshTokens ?? mode?.rotateRefreshTokens ?? !googleMode,
    googleMode,
    autoApprove: opts.autoApprove ?? true,
    googleClientSecret: opts.googleClientSecret ?? (googleMode ? opts.clientSecret : undefined),
    // Google does not know offline_access (it uses access_type=offline instead).
    scopesSupported: opts.scopesSupported ?? mode?.scopesSupported ?? (googleMode ? DEFAULT_SCOPES.filter((s) => s !== 'offline_access') : DEFAULT_SCOPES),
    deviceFlow: opts.deviceFlow ?? true,
    deviceIntervalSeconds: opts.deviceIntervalSeconds,
  };
  const discovery = opts.discovery ?? 'standard';
  const profile = discoveryProfile(discovery);
  options.scopesSupported = [...options.scopesSupported, ...profile.extraScopes.filter((s) => !options.scopesSupported.includes(s))];
  const requiredScope = opts.requiredScope ?? mode?.requiredScope ?? 'mcp:tools';
  const state: SandboxState = { counters: emptyCounters(), fault: undefined, revokedGrantIds: new Set() };

  const asHttp = createServer();
  const mcpHttp = createServer();
  const secondHttp = createServer();
  let modes: GrantModes | undefined;
  try {
    // The 2025-03-26 modes have the authorization server on the MCP server's origin (--port unused).
    const asPort = profile.asOnMcpOrigin ? undefined : await listen(asHttp, opts.port ?? 0);
    const mcpPort = await listen(mcpHttp, opts.mcpPort ?? 0);
    const mcpOrigin = `http://127.0.0.1:${mcpPort}`;
    const issuer = asPort === undefined ? mcpOrigin : `http://127.0.0.1:${asPort}${mode?.issuerPath ?? ''}`;
    issuerOfMode = issuer;
    const mcpUrl = `${mcpOrigin}/mcp`;
    const secondIssuer = opts.secondIssuer ? `http://127.0.0.1:${await listen(secondHttp, 0)}` : undefined;
    // The authorization server's "mcpUrl" is the resource it issues tokens for (its audience).
    const resource = audienceFor(discovery, mcpUrl);
    const counters = () => state.counters;
    // Sign-in without a person and DPoP (grant-modes.ts); with none of their options, nothing changes.
    const grantModes = (modes = await setupGrantModes(opts, {
      issuer, resource, state, autoApprove: options.autoApprove, refreshTokenTtlSeconds: options.refreshTokenTtlSeconds,
      resourceScopes: options.scopesSupported.filter((s) => s !== 'openid' && s !== 'offline_access'),
    }));
    const dpopOptions = { mode: opts.dpop, nonce: opts.dpopNonce, algs: opts.dpopSigningAlgs };
    const dpop = createDpopResourceCheck({ ...dpopOptions, state });

    const as = await createAuthorizationServer({
      issuer, mcpUrl: resource, options, state, routes: profile.asRoutes, mode,
      configure: grantModes.configure,
      extend: (provider) => {
        issuerCounters(issuer, state, profile.asRoutes)(provider);
        grantModes.extend(provider);
        if (opts.tokenEndpointUrl) advertiseTokenEndpoint(provider, opts.tokenEndpointUrl);
      },
    });
    const second = secondIssuer
      ? await createAuthorizationServer({
          issuer: secondIssuer, mcpUrl: resource, options, state, extend: issuerCounters(secondIssuer, state), configure: (config) => configureDpop(config, dpopOptions),
        })
      : undefined;
    let active = issuer;
    const mcp = createMcpResourceServer({
      activeIssuer: () => active,
      mcpUrl,
      mode: discovery,
      protocol: opts.protocol ?? 'dual',
      invalidHeaderToolsInLegacyEra: opts.invalidHeaderToolsInLegacyEra,
      requiredScope,
      scopesSupported: options.scopesSupported,
      state,
      fallback: profile.asOnMcpOrigin ? as.handle : undefined,
      dpop,
    });
    if (asPort !== undefined) asHttp.on('request', recordingMetadataRequests(new URL(issuer).origin, counters, as.handle));
    mcpHttp.on('request', recordingMetadataRequests(mcpOrigin, counters, mcp.handle));
    if (second && secondIssuer) secondHttp.on('request', recordingMetadataRequests(secondIssuer, counters, second.handle));

    return {
      issuer,
      mcpUrl,
      discovery,
      resource,
      secondIssuer,
      activeIssuer: () => active,
      switchAuthorizationServer() {
        if (!secondIssuer) throw new Error('startSandbox({ secondIssuer: true }) is needed to switch authorization servers');
        active = active === issuer ? secondIssuer : issuer;
        return active;
      },
      googleClient: as.googleClient,
      provider: providerName,
      preregisteredClient: as.preregisteredClient ?? as.googleClient,
      counters: state.counters,
      resetCounters() {
        // Mutate in place so references held by callers (sandbox.counters) stay live.
        Object.assign(state.counters, emptyCounters());
        if (grantModes.ownsIdp) grantModes.idp?.resetCounters();
      },
      revokeAllGrants: async () => {
        await as.revokeAllGrants();
        await second?.revokeAllGrants();
      },
      setTokenEndpointFault(fault) {
        state.fault = fault && fault.times > 0 ? { ...fault } : undefined;
      },
      protocol: opts.protocol ?? 'dual',
      notifyToolsChanged: () => mcp.notifyToolsChanged(),
      dropSessions: () => mcp.dropSessions(),
      grants: grantModes.grants,
      grantClients: grantModes.clients,
      workload: grantModes.workload,
      idp: grantModes.idp,
      dpop: opts.dpop,
      rotateDpopNonces({ keepPrevious = false } = {}) {
        dpop.nonces?.rotate(keepPrevious);
        // oidc-provider rotates its own nonces softly every minute; a hard rotation swaps its secret.
        if (!keepPrevious) grantModes.rotateAsNonces();
      },
      async close() {
        await mcp.close();
        await Promise.all([closeServer(asHttp), closeServer(mcpHttp), closeServer(secondHttp), grantModes.close()]);
      },
    };
  } catch (err) {
    await Promise.all([closeServer(asHttp), closeServer(mcpHttp), closeServer(secondHttp), modes?.close()]);
    throw err;
  }
}
