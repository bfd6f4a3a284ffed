// The sandbox: a real authorization server (oidc-provider) and a real MCP server on 127.0.0.1,
// ephemeral ports. Used by the e2e tests, `mcp-oauth sandbox` / `npm run demo`, and the benchmarks.
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAuthorizationServer } from './authorization-server.ts';
import { createMcpResourceServer } from './mcp-server.ts';
import { emptyCounters } from './types.ts';
import type { Sandbox, SandboxOptions, SandboxState } from './types.ts';

export type { Sandbox, SandboxCounters, SandboxOptions, TokenEndpointFault, TokenRequestLogEntry } from './types.ts';

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

export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const googleMode = opts.googleMode ?? false;
  const options = {
    accessTokenTtlSeconds: opts.accessTokenTtlSeconds ?? 3600,
    refreshTokenTtlSeconds: opts.refreshTokenTtlSeconds ?? 14 * 24 * 3600,
    // Google does not rotate refresh tokens; everyone else in the sandbox does by default.
    rotateRefreshTokens: opts.rotateRefreshTokens ?? !googleMode,
    googleMode,
    autoApprove: opts.autoApprove ?? true,
    googleClientSecret: opts.googleClientSecret,
    // Google does not know offline_access (it uses access_type=offline instead).
    scopesSupported: opts.scopesSupported ?? (googleMode ? DEFAULT_SCOPES.filter((s) => s !== 'offline_access') : DEFAULT_SCOPES),
  };
  const requiredScope = opts.requiredScope ?? 'mcp:tools';
  const state: SandboxState = { counters: emptyCounters(), fault: undefined, revokedGrantIds: new Set() };

  const asHttp = createServer();
  const mcpHttp = createServer();
  try {
    const asPort = await listen(asHttp, opts.port ?? 0);
    const mcpPort = await listen(mcpHttp, opts.mcpPort ?? 0);
    const issuer = `http://127.0.0.1:${asPort}`;
    const mcpUrl = `http://127.0.0.1:${mcpPort}/mcp`;

    const as = await createAuthorizationServer({ issuer, mcpUrl, options, state });
    const mcp = createMcpResourceServer({ issuer, mcpUrl, requiredScope, scopesSupported: options.scopesSupported, state });
    asHttp.on('request', as.handle);
    mcpHttp.on('request', mcp.handle);

    return {
      issuer,
      mcpUrl,
      googleClient: as.googleClient,
      counters: state.counters,
      resetCounters() {
        // Mutate in place so references held by callers (sandbox.counters) stay live.
        Object.assign(state.counters, emptyCounters());
      },
      revokeAllGrants: () => as.revokeAllGrants(),
      setTokenEndpointFault(fault) {
        state.fault = fault && fault.times > 0 ? { ...fault } : undefined;
      },
      dropSessions: () => mcp.dropSessions(),
      async close() {
        await mcp.close();
        await Promise.all([closeServer(asHttp), closeServer(mcpHttp)]);
      },
    };
  } catch (err) {
    await Promise.all([closeServer(asHttp), closeServer(mcpHttp)]);
    throw err;
  }
}
