import { parse, requirePositional, type CliContext } from '../context.ts';
import { printJson, relativeTime } from '../output.ts';
import { credentialsInUse } from '../credentials-for.ts';
import { describeGatewayFor, describeServer } from '../describe.ts';
import { loginCommand } from '../../errors.ts';

const USAGE = 'mcp-oauth status NAME|URL [--json]';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, {}, USAGE);
  if (!args) return 0;
  const server = await ctx.server(requirePositional(args.positionals, 0, 'server NAME or URL', USAGE));
  const { gatewayStatus } = await import('../../gateway/state.ts');
  const [store, status] = await Promise.all([ctx.store(), gatewayStatus(ctx.home)]);
  const [credential] = await credentialsInUse(store, server);
  const now = Date.now();
  const state = describeServer(server, credential, now);
  const gateway = describeGatewayFor(status, server);
  if (ctx.json) {
    printJson(ctx, { ...state, store: store.kind, gateway });
    return 0;
  }
  ctx.out(`${server.name}  ${server.url}`);
  ctx.out(`  Gateway:        ${gateway.running ? gateway.detail : `${gateway.detail}; only clients installed with --gateway need it`}`);
  if (state.auth_status === 'bearer_token') {
    ctx.out(`  Authentication: static bearer token from $${server.bearerTokenEnvVar} (no OAuth).`);
    return 0;
  }
  if (!credential) {
    ctx.out('  Not signed in.');
    ctx.out(`Next: ${loginCommand(server.name)}`);
    return 0;
  }
  ctx.out(`  Issuer:         ${credential.key.issuer}`);
  if (credential.migratedFrom) {
    ctx.out(`  Moved:          from the authorization server ${credential.migratedFrom.issuer} ${relativeTime(credential.migratedFrom.at, now)}; signed in again at the new one`);
  }
  if (credential.grant && credential.grant !== 'authorization_code') ctx.out(`  Grant:          ${credential.grant} (renewed without a browser before it expires)`);
  if (credential.dpop) ctx.out(`  DPoP key:       ${credential.dpop.thumbprint}; tokens ${state.dpop_bound ? 'bound to it (RFC 9449)' : 'not bound (the server issued bearer tokens)'}`);
  if (credential.resourceIndicator) ctx.out(`  Resource:       ${credential.resourceIndicator} (the server's metadata covers its URL with this prefix)`);
  ctx.out(`  Client id:      ${credential.clientId}`);
  ctx.out(`  Scopes:         ${credential.scopes.join(' ') || '(none)'}`);
  ctx.out(`  Access token:   ${state.access_token_fingerprint}, expires ${relativeTime(credential.expiresAt, now)}`);
  const refreshExpiry = credential.refreshToken && credential.refreshTokenExpiresAt !== undefined ? `, itself expires ${relativeTime(credential.refreshTokenExpiresAt, now)}` : '';
  ctx.out(`  Refresh token:  ${credential.refreshToken ? `${state.refresh_token_fingerprint} (refreshed automatically${refreshExpiry})` : 'none'}`);
  if (state.refresh_token_expiry_warning) ctx.out(`  ⚠ ${state.refresh_token_expiry_warning}`);
  if (credential.provider) {
    // The identity provider's differences applied at sign-in (src/oauth/quirks.ts).
    ctx.out(`  Provider:       ${credential.provider}; quirks applied: ${(credential.quirksApplied ?? []).join(', ') || 'none'}`);
  }
  if (credential.refreshTokenMissingReason) ctx.out(`  Why no refresh token: ${credential.refreshTokenMissingReason}`);
  ctx.out(`  Stored in:      ${store.kind === 'keychain' ? 'the OS keychain' : store.kind === 'file' ? 'a 0600 file under ' + ctx.home : store.kind === 'redis' ? 'Redis, encrypted (' + ((store as { where?: string }).where ?? 'redis') + ')' : 'memory'}`);
  if (credential.needsSignIn) {
    ctx.out(`  ✗ Sign-in required: ${credential.needsSignIn.reason}`);
    ctx.out(`Next: ${loginCommand(server.name)}`);
  } else if (state.needs_sign_in) {
    ctx.out(credential.refreshToken ? '  ✗ The access token and the refresh token have expired.' : '  ✗ The access token has expired and there is no refresh token.');
    ctx.out(`Next: ${loginCommand(server.name)}`);
  } else {
    ctx.out(`Next: mcp-oauth tools ${server.name}`);
  }
  return 0;
}
