/**
 * The quick-start demo: a local sandbox with short-lived tokens, a headless sign-in, then tool
 * calls across several expiries, each line saying when a refresh happened, ending with `status`.
 * Uses a throwaway MCP_OAUTH_HOME so nothing of the user's is touched.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, createCliContext, type CliContext } from '../context.ts';
import { McpOAuthError } from '../../errors.ts';
import { fingerprint } from '../../secrets.ts';
import { relativeTime } from '../output.ts';

const USAGE = 'mcp-oauth demo [--seconds 30] [--access-ttl 10] [--interval 2.5] [--grant client_credentials|jwt_bearer|enterprise] [--dpop]';
const DEMO_GRANTS = ['client_credentials', 'jwt_bearer', 'enterprise'] as const;

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, { seconds: { type: 'string' }, 'access-ttl': { type: 'string' }, interval: { type: 'string' }, grant: { type: 'string' }, dpop: { type: 'boolean' } }, USAGE);
  if (!args) return 0;
  const num = (v: unknown, d: number) => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!(n > 0)) throw new McpOAuthError('usage', `expected a positive number, got "${v}"`, { hint: `usage: ${USAGE}` });
    return n;
  };
  const totalSeconds = num(args.values.seconds, 30);
  const ttl = num(args.values['access-ttl'], 10);
  const intervalMs = num(args.values.interval, 2.5) * 1000;
  const grant = args.values.grant as (typeof DEMO_GRANTS)[number] | undefined;
  if (grant !== undefined && !DEMO_GRANTS.includes(grant)) {
    throw new McpOAuthError('usage', `--grant must be one of ${DEMO_GRANTS.join(', ')}, not ${JSON.stringify(grant)}`, { hint: `usage: ${USAGE}` });
  }

  const { startSandbox } = await import('../../sandbox/index.ts');
  const { followAuthorizeUrl } = await import('../../sandbox/headless-browser.ts');
  const { FileCredentialStore } = await import('../../store/file-store.ts');
  const { createOAuthSession, serverFromUrl } = await import('../../client/session.ts');
  const { connectMcp } = await import('../../client/mcp.ts');

  const home = await mkdtemp(join(tmpdir(), 'mcp-oauth-demo-'));
  const sandbox = await startSandbox({
    accessTokenTtlSeconds: Math.round(ttl),
    autoApprove: true,
    ...(grant ? { grant } : {}),
    ...(args.values.dpop ? { dpop: 'required' as const, dpopNonce: true } : grant ? { dpop: 'off' as const } : {}),
  });
  const t0 = Date.now();
  const stamp = () => `[${String(Math.floor((Date.now() - t0) / 1000)).padStart(2, '0')}s]`;
  try {
    ctx.out(`Sandbox on 127.0.0.1: authorization server ${sandbox.issuer}, MCP server ${sandbox.mcpUrl}`);
    ctx.out(`Access tokens live ${ttl} s; calling a tool every ${intervalMs / 1000} s for ${totalSeconds} s.\n`);
    const store = new FileCredentialStore(home);
    const server = { ...serverFromUrl(sandbox.mcpUrl), name: 'sandbox' };
    // The grant's material, as a user's config would name it: a secret in a variable, a workload
    // token in a file (rewritten by the "workload" before each use), the enterprise IdP's client.
    const env: NodeJS.ProcessEnv = { ...ctx.env };
    let refreshAssertion: (() => Promise<void>) | undefined;
    if (grant === 'client_credentials') {
      const c = sandbox.grantClients.clientSecretBasic!;
      Object.assign(server.oauth, { grant, clientId: c.clientId, clientSecretEnvVar: 'DEMO_CLIENT_SECRET' });
      env.DEMO_CLIENT_SECRET = c.clientSecret;
    } else if (grant === 'jwt_bearer') {
      const { writeFile } = await import('node:fs/promises');
      const file = join(home, 'workload.jwt');
      refreshAssertion = async () => writeFile(file, await sandbox.workload!.mint({ ttlSeconds: 600 }), { mode: 0o600 });
      await refreshAssertion();
      sandbox.workload!.onAccepted = () => void refreshAssertion?.();
      Object.assign(server.oauth, { grant, clientId: sandbox.grantClients.jwtBearer!.clientId, assertionFile: file });
    } else if (grant === 'enterprise') {
      const idp = sandbox.idp!;
      const c = sandbox.grantClients.enterprise!;
      Object.assign(server.oauth, { grant, clientId: c.clientId, clientSecretEnvVar: 'DEMO_MCP_CLIENT_SECRET', enterprise: { issuer: idp.issuer, clientId: idp.client.clientId, clientSecretEnvVar: 'DEMO_IDP_SECRET' } });
      env.DEMO_MCP_CLIENT_SECRET = c.clientSecret;
      env.DEMO_IDP_SECRET = idp.client.clientSecret;
    }
    if (grant) ctx.out(`Grant: ${grant}${args.values.dpop ? ', DPoP-bound tokens' : ''} (no browser${grant === 'enterprise' ? ' but one headless IdP sign-in' : ''}).`);
    let refreshes = 0;
    const session = createOAuthSession({
      server,
      store,
      env,
      logger: ctx.logger,
      interactive: {
        browser: { mode: 'custom', open: async (url) => void (await followAuthorizeUrl(url)) },
        onAuthorizeUrl: () => ctx.out(`${stamp()} signing in (headless browser, the sandbox approves automatically)…`),
      },
      onEvent: (e) => {
        if (e.type === 'refreshed') {
          refreshes++;
          ctx.out(`${stamp()} ↻ access token expired or about to: refreshed${e.rotated ? ', rotated refresh token saved first' : ''}; new one expires ${relativeTime(e.expiresAt, Date.now())}`);
        } else if (e.type === 'refresh_failed') ctx.out(`${stamp()} ! refresh failed: ${e.error.message}${e.willRetry ? ' (retrying)' : ''}`);
      },
    });
    const conn = await connectMcp({ url: sandbox.mcpUrl, fetch: session.fetch, clientName: 'mcp-oauth-demo' });
    const signedIn = await session.manager.credential();
    // From here on, count only what the token lifecycle does (the sign-in's own discovery probe
    // is an expected, unauthenticated 401).
    sandbox.resetCounters();
    ctx.out(`${stamp()} ✓ signed in; access token ${fingerprint(signedIn?.accessToken)}, refresh token ${signedIn?.refreshToken ? 'held' : 'none'}`);
    let calls = 0;
    let failed = 0;
    while (Date.now() - t0 < totalSeconds * 1000) {
      calls++;
      try {
        const result = await conn.client.callTool({ name: 'echo', arguments: { text: `call ${calls}` } });
        const text = (result.content as Array<{ text?: string }>)[0]?.text ?? '';
        const cred = await session.manager.credential();
        ctx.out(`${stamp()} echo → "${text}"  (token ${fingerprint(cred?.accessToken)}, expires ${relativeTime(cred?.expiresAt, Date.now())})`);
      } catch (e) {
        failed++;
        ctx.out(`${stamp()} ✗ call ${calls} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    await conn.close();
    const c = sandbox.counters;
    const renewals = grant ? Object.values(c.grants ?? {}).reduce((n, g) => n + g.issued, 0) : c.tokenRequests.refresh_token ?? 0;
    ctx.out(`\n${calls} calls, ${failed} failed. After sign-in the token endpoint saw ${renewals} ${grant ? `${grant} token requests` : 'refreshes'} (${refreshes} seen here), and the MCP server answered ${c.mcp401} × 401.`);
    ctx.out(`\n$ mcp-oauth status sandbox`);
    const statusCtx = createCliContext({ env: { ...ctx.env, MCP_OAUTH_HOME: home, MCP_OAUTH_STORE: 'file' }, argv: [] });
    statusCtx.server = async () => server;
    const { run: status } = await import('./status.ts');
    await status(statusCtx, ['sandbox']);
    ctx.out(`(The demo's throwaway store ${home} is deleted now. For real servers: mcp-oauth add NAME URL, then mcp-oauth login NAME.)`);
    return failed === 0 ? 0 : 1;
  } finally {
    await sandbox.close();
    await rm(home, { recursive: true, force: true });
  }
}
