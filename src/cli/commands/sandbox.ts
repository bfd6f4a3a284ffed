import { createInterface } from 'node:readline';
import { parse, type CliContext } from '../context.ts';
import { McpOAuthError } from '../../errors.ts';
import { printJson } from '../output.ts';

const USAGE =
  'mcp-oauth sandbox [--access-ttl SECONDS] [--refresh-ttl SECONDS] [--no-rotate] [--google [--google-client-secret-env VAR]] [--login-pages] [--port N] [--mcp-port N] [--json]';

function seconds(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new McpOAuthError('usage', `${flag} takes a whole number of seconds, got "${value}"`, { hint: `usage: ${USAGE}` });
  return n;
}

/** Runs until Ctrl-C. On stdin: `revoke` revokes every grant, `counters` prints the counters,
 * `drop-sessions` makes the MCP server forget its sessions. */
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
      'login-pages': { type: 'boolean' },
      port: { type: 'string' },
      'mcp-port': { type: 'string' },
    },
    USAGE,
  );
  if (!args) return 0;
  const v = args.values as Record<string, string | boolean | undefined>;
  const secretEnv = v['google-client-secret-env'] as string | undefined;
  if (secretEnv && !ctx.env[secretEnv]) {
    throw new McpOAuthError('usage', `--google-client-secret-env names $${secretEnv}, which is not set`, { hint: `export ${secretEnv}=some-secret` });
  }
  const { startSandbox } = await import('../../sandbox/index.ts');
  const sandbox = await startSandbox({
    accessTokenTtlSeconds: seconds(v['access-ttl'], '--access-ttl'),
    refreshTokenTtlSeconds: seconds(v['refresh-ttl'], '--refresh-ttl'),
    rotateRefreshTokens: !v['no-rotate'],
    googleMode: Boolean(v.google),
    googleClientSecret: secretEnv ? ctx.env[secretEnv] : undefined,
    autoApprove: !v['login-pages'],
    port: v.port === undefined ? undefined : Number(v.port),
    mcpPort: v['mcp-port'] === undefined ? undefined : Number(v['mcp-port']),
  });
  if (ctx.json) {
    printJson(ctx, { issuer: sandbox.issuer, mcp_url: sandbox.mcpUrl, google_client_id: sandbox.googleClient?.clientId });
  } else {
    ctx.out(`Sandbox running on 127.0.0.1:`);
    ctx.out(`  authorization server  ${sandbox.issuer}`);
    ctx.out(`  MCP server            ${sandbox.mcpUrl}`);
    if (sandbox.googleClient) {
      ctx.out(`  Google mode: pre-registered client_id ${sandbox.googleClient.clientId}`);
      ctx.out(
        secretEnv
          ? `  Its secret is $${secretEnv}: mcp-oauth add gsandbox ${sandbox.mcpUrl} --client-id ${sandbox.googleClient.clientId} --client-secret-env ${secretEnv} --provider google`
          : '  Its secret is random and printed nowhere; pass --google-client-secret-env VAR to choose it.',
      );
    }
    ctx.out(`Type "revoke", "counters" or "drop-sessions" here; Ctrl-C to stop.`);
    ctx.out(`Next, in another terminal: mcp-oauth login ${sandbox.mcpUrl}`);
  }
  const rl = createInterface({ input: ctx.stdin });
  rl.on('line', async (line) => {
    const cmd = line.trim();
    if (cmd === 'revoke') {
      await sandbox.revokeAllGrants();
      ctx.note('every grant revoked');
    } else if (cmd === 'counters') ctx.out(JSON.stringify(sandbox.counters));
    else if (cmd === 'drop-sessions') {
      (sandbox as { dropSessions?: () => void }).dropSessions?.();
      ctx.note('sessions dropped');
    } else if (cmd) ctx.note(`unknown: ${cmd} (revoke | counters | drop-sessions)`);
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  rl.close();
  await sandbox.close();
  return 0;
}
