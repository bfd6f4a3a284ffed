/**
 * A live, step-by-step trace of everything between this machine and the server's tools, each step
 * ✓/✗ with a hint. Secrets appear only as SHA-256 fingerprints.
 */
import { parse, requirePositional, type CliContext } from '../context.ts';
import { printJson, relativeTime, stepLine } from '../output.ts';
import { openCommandSession } from '../server-session.ts';
import { credentialsInUse } from '../credentials-for.ts';
import { McpOAuthError, loginCommand } from '../../errors.ts';
import { fingerprint } from '../../secrets.ts';
import { probeChallenge, findProtectedResource, findAuthorizationServer, discoverAuthorizationServer, defaultEndpointsMetadata, sameIssuer } from '../../oauth/discovery.ts';
import { canonicalResourceUri } from '../../oauth/canonical.ts';
import { connectMcp } from '../../client/mcp.ts';
import { acceptsMissingPkceMetadata, providerFor, recogniseIssuer } from '../../oauth/quirks.ts';
import { describeGatewayFor, refreshTokenExpiryWarning } from '../describe.ts';

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

  // The local gateway (`mcp-oauth serve`): informational. Not running is no failure: clients with
  // the stdio entry start their own proxy and never need it.
  const { gatewayStatus } = await import('../../gateway/state.ts');
  const gateway = describeGatewayFor(await gatewayStatus(ctx.home), server);
  const gatewayData = { running: gateway.running, served: gateway.served, url: gateway.url, pid: gateway.pid, endpoint: gateway.endpoint };
  if (gateway.running) {
    await record('gateway', async () => ({ value: true, detail: gateway.detail, data: gatewayData }));
  } else {
    steps.push({ step: 'gateway', ok: 'skip', detail: `${gateway.detail}; only clients installed with --gateway need it`, data: gatewayData });
    if (!ctx.json) ctx.out(stepLine('skip', 'gateway', `${gateway.detail}; only clients installed with --gateway need it`));
  }

  const challenge = await record('server challenge', async () => {
    const c = await probeChallenge({ serverUrl: server.url, fetch: ctx.oauthFetch });
    return {
      value: c ?? null,
      detail: c ? `401 with resource_metadata=${c.resourceMetadata ?? '(none)'}${c.scope ? `, scope="${c.scope.join(' ')}"` : ''}` : 'the server did not ask for a token',
      data: c ? { ...c } : undefined,
    };
  });

  // `null`: no document anywhere (the 2025-03-26 fallback, or no OAuth at all); undefined: failed.
  const prm = challenge === undefined ? undefined : await record('protected resource metadata (RFC 9728)', async () => {
    const found = await findProtectedResource({ serverUrl: server.url, resourceMetadataUrl: challenge?.resourceMetadata, expectedResource: server.oauthResource, fetch: ctx.oauthFetch });
    if (!found) {
      return {
        value: null,
        detail: challenge
          ? 'none published: the 2025-03-26 fallback applies (the authorization server is the server\'s own origin)'
          : 'none published, and the server did not ask for a token: it needs no sign-in',
        data: { found: false },
      };
    }
    const m = found.metadata;
    const prefix = found.resource !== canonicalResourceUri(server.oauthResource ?? server.url) ? ` (covers the server URL; sent as the resource parameter)` : '';
    return { value: m, detail: `at ${found.url}: resource ${m.resource}${prefix}, authorization server ${m.authorization_servers[0]}`, data: { url: found.url, resource: m.resource, resource_parameter: found.resource, authorization_servers: m.authorization_servers } };
  });
  if (challenge === undefined) skip('protected resource metadata (RFC 9728)', 'the server could not be reached');

  const fallback = prm === null && challenge ? new URL(server.url).origin : undefined;
  const issuer = prm?.authorization_servers?.[0] ?? fallback;
  const asMeta = issuer ? await record('authorization server metadata (RFC 8414)', async () => {
    // A recognised provider known to do S256 without saying so (Entra), or assume_pkce = true.
    const published = await findAuthorizationServer({ issuer, fetch: ctx.oauthFetch, acceptMissingPkceMetadata: acceptsMissingPkceMetadata(issuer, server.oauth) });
    if (!published && !fallback) return { value: await discoverAuthorizationServer({ issuer, fetch: ctx.oauthFetch }), detail: '' };
    const m = published ?? defaultEndpointsMetadata(issuer);
    const pkce = published && !published.code_challenge_methods_supported ? 'PKCE S256 assumed (not advertised)' : 'PKCE S256';
    const where = published ? '' : 'no metadata: the 2025-03-26 default endpoints /authorize, /token, /register; ';
    return {
      value: m,
      detail: `${where}issuer ${m.issuer}, token endpoint ${m.token_endpoint}, ${pkce}, ${m.registration_endpoint ? 'dynamic registration' : 'no dynamic registration'}`,
      data: { issuer: m.issuer, token_endpoint: m.token_endpoint, registration_endpoint: m.registration_endpoint, revocation_endpoint: m.revocation_endpoint, iss_parameter: m.authorization_response_iss_parameter_supported ?? false, default_endpoints: !published },
    };
  }) : undefined;
  if (!issuer) skip('authorization server metadata (RFC 8414)', prm === null ? 'the server needs no sign-in' : 'no authorization server found');

  // The identity provider and every quirk mcp-oauth applies for it (src/oauth/quirks.ts); a step
  // only when there is one (or the config names one).
  const providerIssuer = asMeta?.issuer ?? issuer;
  if (providerIssuer && (server.oauth.provider || recogniseIssuer(providerIssuer) !== 'generic')) {
    const profile = await record('identity provider', async () => {
      const p = providerFor(providerIssuer, server.oauth.provider);
      const how = p.recognisedFrom === 'config' ? `provider = "${p.name}" in the config` : 'recognised from the issuer';
      const detail = p.name === 'generic'
        ? (server.oauth.provider ? 'quirks turned off (provider = "none")' : 'none recognised: standard OAuth, no quirks')
        : `${p.label} (${how}), ${p.quirks.length} quirks applied`;
      const quirks = p.quirks.map(({ id, summary, doc, confirmed }) => ({ id, summary, doc, confirmed }));
      return { value: p, detail, data: { provider: p.name, recognised_from: p.recognisedFrom ?? null, quirks } };
    });
    if (profile && !ctx.json) for (const q of profile.quirks) ctx.out(`    · ${q.id}: ${q.summary}`);
  }

  const [credential] = await credentialsInUse(store, server);
  const now = Date.now();
  if (!credential) {
    steps.push({ step: 'stored credential', ok: false, detail: 'not signed in', hint: loginCommand(server.name) });
    firstFailure ??= new McpOAuthError('signin_required', `Not signed in to ${server.name}.`, { hint: loginCommand(server.name) });
    if (!ctx.json) ctx.out(stepLine(false, 'stored credential', 'not signed in') + `\n    → ${loginCommand(server.name)}`);
  } else {
    const resourceOk = credential.key.resource === canonicalResourceUri(server.oauthResource ?? server.url);
    const issuerOk = !asMeta || sameIssuer(credential.key.issuer, asMeta.issuer);
    const moved = (credential.migratedFrom ? `; moved from the authorization server ${credential.migratedFrom.issuer} ${relativeTime(credential.migratedFrom.at, now)}` : '') +
      (credential.grant && credential.grant !== 'authorization_code' ? `; grant ${credential.grant}` : '') +
      (credential.dpop ? `; DPoP key ${credential.dpop.thumbprint}${credential.tokenType.toLowerCase() === 'dpop' ? ' (tokens bound to it)' : ' (tokens not bound)'}` : '');
    await record('stored credential', async () => ({
      value: true,
      ok: !credential.needsSignIn && issuerOk && resourceOk,
      detail: `${store.kind} store, access token ${fingerprint(credential.accessToken)} expires ${relativeTime(credential.expiresAt, now)}, refresh token ${credential.refreshToken ? fingerprint(credential.refreshToken) : 'none'}${credential.refreshToken && credential.refreshTokenExpiresAt !== undefined ? ` (expires ${relativeTime(credential.refreshTokenExpiresAt, now)})` : ''}${credential.provider ? `, signed in with the ${credential.provider} quirks: ${(credential.quirksApplied ?? []).join(', ') || 'none'}` : ''}${moved}${credential.needsSignIn ? `; sign-in required: ${credential.needsSignIn.reason}` : ''}${issuerOk ? '' : `; issued by ${credential.key.issuer}, but the server now uses ${asMeta?.issuer}`}`,
      hint: credential.needsSignIn || !issuerOk ? loginCommand(server.name) : credential.refreshToken ? refreshTokenExpiryWarning(credential, server.name, now) : credential.refreshTokenMissingReason,
      data: {
        issuer: credential.key.issuer, expires_at: credential.expiresAt ?? null, has_refresh_token: Boolean(credential.refreshToken), refresh_token_missing_reason: credential.refreshTokenMissingReason,
        refresh_token_expires_at: credential.refreshTokenExpiresAt ?? null, provider: credential.provider ?? null, quirks_applied: credential.quirksApplied ?? [],
        migrated_from: credential.migratedFrom ? { issuer: credential.migratedFrom.issuer, at: new Date(credential.migratedFrom.at).toISOString() } : null,
        grant: credential.grant ?? 'authorization_code',
        dpop_key_thumbprint: credential.dpop?.thumbprint ?? null,
        dpop_bound: Boolean(credential.dpop) && credential.tokenType.toLowerCase() === 'dpop',
      },
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
    // The step's name says what the era does: server/discover (2026-07-28) or initialize (2025).
    const conn = await record('connect (server/discover or initialize)', async () => {
      const c = await connectMcp({ url: server.url, fetch: session.fetch });
      const era = c.era === 'modern' ? 'stateless era: per-request _meta, no session' : 'initialize era: session';
      return {
        value: c,
        detail: `${c.serverInfo?.name ?? 'server'} ${c.serverInfo?.version ?? ''}, protocol ${c.protocolVersion ?? 'unknown'} (${era})`,
        data: { protocol_version: c.protocolVersion ?? null, era: c.era },
      };
    });
    if (conn) {
      await record('tools/list', async () => {
        const { tools } = await conn.client.listTools(undefined, conn.requestOptions);
        // SEP-2243: what a gateway in between sees of this request (never the Authorization header).
        const headers = conn.lastRequestHeaders();
        const shown = Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join(', ');
        return {
          value: tools.length,
          detail: `${tools.length} tools (${tools.slice(0, 5).map((t) => t.name).join(', ')}${tools.length > 5 ? ', …' : ''}); headers sent: ${shown || '(none)'}`,
          data: { tools: tools.length, headers_sent: headers },
        };
      });
      await conn.close();
    } else skip('tools/list', 'connecting failed');
  } else {
    skip('connect (server/discover or initialize)', 'needs a sign-in first');
    skip('tools/list', 'needs a sign-in first');
  }

  const ok = steps.every((s) => s.ok !== false);
  if (ctx.json) printJson(ctx, { server: server.name, url: server.url, ok, steps });
  else ctx.out(ok ? '\nAll checks passed.' : `\nNext: ${firstFailure?.hint ?? steps.find((s) => s.ok === false)?.hint ?? loginCommand(server.name)}`);
  return ok ? 0 : firstFailure?.exitCode ?? 1;
}
