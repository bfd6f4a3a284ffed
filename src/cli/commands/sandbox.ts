import { createInterface } from 'node:readline';
import { parse, type CliContext } from '../context.ts';
import { McpOAuthError } from '../../errors.ts';
import { printJson } from '../output.ts';

const USAGE =
  'mcp-oauth sandbox [--access-ttl SECONDS] [--refresh-ttl SECONDS] [--no-rotate] [--provider NAME [--client-secret-env VAR]] [--google (= --provider google)] [--login-pages] [--port N] [--mcp-port N] [--discovery MODE] [--protocol dual|2026-07-28|2025-11-25] [--second-issuer] [--grant client_credentials|jwt_bearer|enterprise]... [--dpop off|optional|required] [--dpop-nonce] [--json]';

function seconds(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new McpOAuthError('usage', `${flag} takes a whole number of seconds, got "${value}"`, { hint: `usage: ${USAGE}` });
  return n;
}

/** Runs until Ctrl-C. On stdin: `revoke` revokes every grant, `counters` prints the counters,
 * `drop-sessions` makes the MCP server forget its sessions, `notify` sends tools/list_changed. */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(
    ctx,
    argv,
    {
      'access-ttl': { type: 'string' },
      'refresh-ttl': { type: 'string' },
      'no-rotate': { type: 'boolean' },
      google: { type: 'boolean' },
      'google-client-secret-env': { type: 'string' },
      provider: { type: 'string' },
      'client-secret-env': { type: 'string' },
      'login-pages': { type: 'boolean' },
      port: { type: 'string' },
      'mcp-port': { type: 'string' },
      discovery: { type: 'string' },
      protocol: { type: 'string' },
      'second-issuer': { type: 'boolean' },
      grant: { type: 'string', multiple: true },
      dpop: { type: 'string' },
      'dpop-nonce': { type: 'boolean' },
    },
    USAGE,
  );
  if (!args) return 0;
  const v = args.values as Record<string, string | boolean | undefined>;
  const secretFlag = v['client-secret-env'] !== undefined ? '--client-secret-env' : '--google-client-secret-env';
  const secretEnv = (v['client-secret-env'] ?? v['google-client-secret-env']) as string | undefined;
  if (secretEnv && !ctx.env[secretEnv]) {
    throw new McpOAuthError('usage', `${secretFlag} names $${secretEnv}, which is not set`, { hint: `export ${secretEnv}=some-secret` });
  }
  const {
    startSandbox, isDiscoveryMode, DISCOVERY_MODES, isSandboxProvider, SANDBOX_PROVIDERS, isSandboxProtocol, SANDBOX_PROTOCOLS, isSandboxGrant, SANDBOX_GRANTS, isSandboxDpop, SANDBOX_DPOP_MODES,
  } = await import('../../sandbox/index.ts');
  // --google is kept as an alias of --provider google.
  const provider = (v.provider as string | undefined) ?? (v.google ? 'google' : undefined);
  if (provider !== undefined && !isSandboxProvider(provider)) {
    throw new McpOAuthError('usage', `--provider takes one of ${SANDBOX_PROVIDERS.join(', ')}; got "${provider}"`, { hint: `usage: ${USAGE}` });
  }
  const discovery = v.discovery as string | undefined;
  if (discovery !== undefined && !isDiscoveryMode(discovery)) {
    throw new McpOAuthError('usage', `--discovery takes one of ${DISCOVERY_MODES.join(', ')}; got "${discovery}"`, { hint: `usage: ${USAGE}` });
  }
  // Which MCP era(s) the MCP server speaks (src/sandbox/eras.ts); default both.
  const protocol = v.protocol as string | undefined;
  if (protocol !== undefined && !isSandboxProtocol(protocol)) {
    throw new McpOAuthError('usage', `--protocol takes one of ${SANDBOX_PROTOCOLS.join(', ')}; got "${protocol}"`, { hint: `usage: ${USAGE}` });
  }
  // Sign-in without a person (src/sandbox/grant-modes.ts): `--grant a --grant b` or `--grant a,b`.
  const grants = ((args.values as { grant?: string[] }).grant ?? []).flatMap((g) => g.split(',')).map((g) => g.trim()).filter(Boolean);
  const badGrant = grants.find((g) => !isSandboxGrant(g));
  if (badGrant !== undefined) {
    throw new McpOAuthError('usage', `--grant takes ${SANDBOX_GRANTS.join(', ')}; got "${badGrant}"`, { hint: `usage: ${USAGE}` });
  }
  const dpop = v.dpop as string | undefined;
  if (dpop !== undefined && !isSandboxDpop(dpop)) {
    throw new McpOAuthError('usage', `--dpop takes one of ${SANDBOX_DPOP_MODES.join(', ')}; got "${dpop}"`, { hint: `usage: ${USAGE}` });
  }
  const sandbox = await startSandbox({
    accessTokenTtlSeconds: seconds(v['access-ttl'], '--access-ttl'),
    refreshTokenTtlSeconds: seconds(v['refresh-ttl'], '--refresh-ttl'),
    rotateRefreshTokens: !v['no-rotate'],
    provider,
    clientSecret: secretEnv ? ctx.env[secretEnv] : undefined,
    autoApprove: !v['login-pages'],
    port: v.port === undefined ? undefined : Number(v.port),
    mcpPort: v['mcp-port'] === undefined ? undefined : Number(v['mcp-port']),
    discovery,
    protocol,
    secondIssuer: Boolean(v['second-issuer']),
    grant: grants.filter(isSandboxGrant),
    dpop,
    dpopNonce: Boolean(v['dpop-nonce']),
  });
  const { grantCliOutput } = await import('../../sandbox/grant-cli.ts');
  const grantOutput = await grantCliOutput(sandbox, { secretEnv, dpopNonce: Boolean(v['dpop-nonce']) });
  if (ctx.json) {
    printJson(ctx, {
      issuer: sandbox.issuer, mcp_url: sandbox.mcpUrl, google_client_id: sandbox.googleClient?.clientId, discovery: sandbox.discovery, protocol: sandbox.protocol, second_issuer: sandbox.secondIssuer,
      provider: sandbox.provider, client_id: sandbox.preregisteredClient?.clientId,
      ...(sandbox.grants.length || dpop || v['dpop-nonce'] ? grantOutput.json : {}),
    });
  } else {
    ctx.out(`Sandbox running on 127.0.0.1:`);
    ctx.out(`  authorization server  ${sandbox.issuer}`);
    ctx.out(`  MCP server            ${sandbox.mcpUrl}`);
    if (sandbox.discovery !== 'standard') ctx.out(`  discovery mode        ${sandbox.discovery}`);
    if (sandbox.protocol !== 'dual') ctx.out(`  protocol              ${sandbox.protocol} only`);
    if (sandbox.secondIssuer) ctx.out(`  second authorization server ${sandbox.secondIssuer} ("switch-as" moves the MCP server to it)`);
    if (sandbox.googleClient) {
      ctx.out(`  Google mode: pre-registered client_id ${sandbox.googleClient.clientId}`);
      ctx.out(
        secretEnv
          ? `  Its secret is $${secretEnv}: mcp-oauth add gsandbox ${sandbox.mcpUrl} --client-id ${sandbox.googleClient.clientId} --client-secret-env ${secretEnv} --provider google`
          : '  Its secret is random and printed nowhere; pass --google-client-secret-env VAR to choose it.',
      );
    } else if (sandbox.provider) {
      ctx.out(`  Behaves like ${sandbox.provider} (src/sandbox/provider-modes.ts)`);
      const client = sandbox.preregisteredClient;
      if (client) {
        const secret = client.clientSecret ? (secretEnv ? ` --client-secret-env ${secretEnv}` : ' --client-secret-env VAR') : '';
        ctx.out(`  No dynamic registration: pre-registered client_id ${client.clientId}${client.clientSecret && !secretEnv ? ' (its secret is random and printed nowhere; pass --client-secret-env VAR to choose it)' : ''}`);
        ctx.out(`  mcp-oauth add ${sandbox.provider}-sandbox ${sandbox.mcpUrl} --client-id ${client.clientId}${secret} --provider ${sandbox.provider}`);
      } else {
        ctx.out(`  mcp-oauth add ${sandbox.provider}-sandbox ${sandbox.mcpUrl} --provider ${sandbox.provider}`);
      }
    }
    for (const line of grantOutput.lines) ctx.out(line);
    const commands = ['revoke', 'counters', 'drop-sessions', 'notify', ...(sandbox.idp ? ['deny-exchange', 'allow-exchange'] : []), ...(v['dpop-nonce'] ? ['rotate-nonces'] : [])];
    ctx.out(`Type ${commands.slice(0, -1).map((c) => `"${c}"`).join(', ')} or "${commands.at(-1)}" here; Ctrl-C to stop.`);
    ctx.out(`Next, in another terminal: mcp-oauth login ${sandbox.mcpUrl}`);
  }
  const rl = createInterface({ input: ctx.stdin });
  let grantNote: string | undefined;
  rl.on('line', async (line) => {
    const cmd = line.trim();
    if (cmd === 'revoke') {
      await sandbox.revokeAllGrants();
      ctx.note('every grant revoked');
    } else if (cmd === 'counters') ctx.out(JSON.stringify(sandbox.counters));
    else if (cmd === 'switch-as' && sandbox.secondIssuer) ctx.note(`the MCP server now uses ${sandbox.switchAuthorizationServer()}`);
    else if (cmd === 'notify') {
      sandbox.notifyToolsChanged();
      ctx.note('notifications/tools/list_changed sent to every listener');
    } else if (cmd === 'drop-sessions') {
      (sandbox as { dropSessions?: () => void }).dropSessions?.();
      ctx.note('sessions dropped');
    } else if (cmd && (grantNote = grantOutput.command(cmd)) !== undefined) ctx.note(grantNote);
    else if (cmd) ctx.note(`unknown: ${cmd} (revoke | counters | drop-sessions | notify | rotate-nonces | deny-exchange | allow-exchange)`);
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  rl.close();
  await grantOutput.close();
  await sandbox.close();
  return 0;
}
