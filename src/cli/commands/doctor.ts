/**
 * A live, step-by-step trace of everything between this machine and the server's tools, each step
 * ✓/✗ with a hint. Secrets appear only as SHA-256 fingerprints.
 */
import { parse, requirePositional, type CliContext } from '../context.ts';
import { printJson, relativeTime, stepLine } from '../output.ts';
import { openCommandSession } from '../server-session.ts';
import { credentialsFor } from '../credentials-for.ts';
import { McpOAuthError, loginCommand } from '../../errors.ts';
import { fingerprint } from '../../secrets.ts';
import { probeChallenge, discoverProtectedResource, discoverAuthorizationServer } from '../../oauth/discovery.ts';
import { canonicalResourceUri } from '../../oauth/canonical.ts';
import { connectMcp } from '../../client/mcp.ts';

const USAGE = 'mcp-oauth doctor NAME|URL [--json]';

interface Step {
  step: string;
  ok: boolean | 'skip';
  detail?: string;
  hint?: string;
  error?: { code: string; message: string };
  data?: Record<string, unknown>;
}

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, {}, USAGE);
  if (!args) return 0;
  const steps: Step[] = [];
  let firstFailure: McpOAuthError | undefined;
  const record = async <T>(step: string, fn: () => Promise<{ value: T; detail?: string; data?: Record<string, unknown>; ok?: boolean; hint?: string }>): Promise<T | undefined> => {
    try {
      const r = await fn();
      steps.push({ step, ok: r.ok ?? true, detail: r.detail, data: r.data, hint: r.hint });
      if (!ctx.json) ctx.out(stepLine(r.ok ?? true, step, r.detail) + (r.hint ? `\n    → ${r.hint}` : ''));
      return r.value;
    } catch (e) {
      const err = e instanceof McpOAuthError ? e : new McpOAuthError('internal', e instanceof Error ? e.message : String(e));
      firstFailure ??= err;
      steps.push({ step, ok: false, detail: err.message, hint: err.hint, error: { code: err.code, message: err.message } });
      if (!ctx.json) ctx.out(stepLine(false, step, err.message) + (err.hint ? `\n    → ${err.hint}` : ''));
      return undefined;
    }
  };
  const skip = (step: string, why: string) => {
    steps.push({ step, ok: 'skip', detail: why });
    if (!ctx.json) ctx.out(stepLine('skip', step, why));
  };

  const server = await ctx.server(requirePositional(args.positionals, 0, 'server NAME or URL', USAGE));
  const store = await ctx.store();
  if (!ctx.json) ctx.out(`Checking ${server.name} (${server.url})\n`);
  await record('configuration', async () => ({ value: true, detail: `from ${server.source}${server.configFile ? ` (${server.configFile})` : ''}` }));

  const challenge = await record('server challenge', async () => {
    const c = await probeChallenge({ serverUrl: server.url, fetch: ctx.fetch });
    return {
      value: c ?? null,
      detail: c ? `401 with resource_metadata=${c.resourceMetadata ?? '(none)'}${c.scope ? `, scope="${c.scope.join(' ')}"` : ''}` : 'the server did not ask for a token',
      data: c ? { ...c } : undefined,
    };
  });

  const prm = challenge === undefined ? undefined : await record('protected resource metadata (RFC 9728)', async () => {
    const m = await discoverProtectedResource({ serverUrl: server.url, resourceMetadataUrl: challenge?.resourceMetadata, fetch: ctx.fetch });
    return { value: m, detail: `resource ${m.resource}, authorization server ${m.authorization_servers?.[0] ?? '(none)'}`, data: { resource: m.resource, authorization_servers: m.authorization_servers } };
  });
  if (challenge === undefined) skip('protected resource metadata (RFC 9728)', 'the server could not be reached');

  const issuer = prm?.authorization_servers?.[0];
  const asMeta = issuer ? await record('authorization server metadata (RFC 8414)', async () => {
    const m = await discoverAuthorizationServer({ issuer, fetch: ctx.fetch });
    return {
      value: m,
      detail: `issuer ${m.issuer}, token endpoint ${m.token_endpoint}, PKCE S256, ${m.registration_endpoint ? 'dynamic registration' : 'no dynamic registration'}`,
      data: { issuer: m.issuer, token_endpoint: m.token_endpoint, registration_endpoint: m.registration_endpoint, revocation_endpoint: m.revocation_endpoint, iss_parameter: m.authorization_response_iss_parameter_supported ?? false },
    };
  }) : undefined;
  if (!issuer) skip('authorization server metadata (RFC 8414)', 'no authorization server found');

  const [credential] = await credentialsFor(store, server);
  const now = Date.now();
  if (!credential) {
    steps.push({ step: 'stored credential', ok: false, detail: 'not signed in', hint: loginCommand(server.name) });
    firstFailure ??= new McpOAuthError('signin_required', `Not signed in to ${server.name}.`, { hint: loginCommand(server.name) });
    if (!ctx.json) ctx.out(stepLine(false, 'stored credential', 'not signed in') + `\n    → ${loginCommand(server.name)}`);
  } else {
    const resourceOk = credential.key.resource === canonicalResourceUri(server.oauthResource ?? server.url);
    const issuerOk = !asMeta || credential.key.issuer === asMeta.issuer;
    await record('stored credential', async () => ({
      value: true,
      ok: !credential.needsSignIn && issuerOk && resourceOk,
      detail: `${store.kind} store, access token ${fingerprint(credential.accessToken)} expires ${relativeTime(credential.expiresAt, now)}, refresh token ${credential.refreshToken ? fingerprint(credential.refreshToken) : 'none'}${credential.needsSignIn ? `; sign-in required: ${credential.needsSignIn.reason}` : ''}${issuerOk ? '' : `; issued by ${credential.key.issuer}, but the server now uses ${asMeta?.issuer}`}`,
      hint: credential.needsSignIn || !issuerOk ? loginCommand(server.name) : credential.refreshToken ? undefined : credential.refreshTokenMissingReason,
      data: { issuer: credential.key.issuer, expires_at: credential.expiresAt ?? null, has_refresh_token: Boolean(credential.refreshToken), refresh_token_missing_reason: credential.refreshTokenMissingReason },
    }));
  }

  const session = await openCommandSession(ctx, server.name === server.url ? server.url : server.name, { interactive: false });
  if (credential?.refreshToken && !credential.needsSignIn) {
    await record('refresh (a real token request)', async () => {
      await session.manager.afterUnauthorized(credential.accessToken ?? '');
      const fresh = await session.manager.credential({ reload: true });
      return { value: true, detail: `new access token ${fingerprint(fresh?.accessToken)} expires ${relativeTime(fresh?.expiresAt, Date.now())}${fresh?.refreshToken !== credential.refreshToken ? ', refresh token rotated' : ''}` };
    });
  } else {
    skip('refresh (a real token request)', credential ? 'no refresh token held' : 'not signed in');
  }

  if (credential && !credential.needsSignIn) {
    const conn = await record('initialize', async () => {
      const c = await connectMcp({ url: server.url, fetch: session.fetch });
      return { value: c, detail: `${c.serverInfo?.name ?? 'server'} ${c.serverInfo?.version ?? ''}, protocol ${c.protocolVersion ?? 'unknown'}` };
    });
    if (conn) {
      await record('tools/list', async () => {
        const { tools } = await conn.client.listTools();
        return { value: tools.length, detail: `${tools.length} tools (${tools.slice(0, 5).map((t) => t.name).join(', ')}${tools.length > 5 ? ', …' : ''})` };
      });
      await conn.close();
    } else skip('tools/list', 'initialize failed');
  } else {
    skip('initialize', 'needs a sign-in first');
    skip('tools/list', 'needs a sign-in first');
  }

  const ok = steps.every((s) => s.ok !== false);
  if (ctx.json) printJson(ctx, { server: server.name, url: server.url, ok, steps });
  else ctx.out(ok ? '\nAll checks passed.' : `\nNext: ${firstFailure?.hint ?? steps.find((s) => s.ok === false)?.hint ?? loginCommand(server.name)}`);
  return ok ? 0 : firstFailure?.exitCode ?? 1;
}
