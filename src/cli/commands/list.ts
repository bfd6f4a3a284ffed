import { parse, type CliContext } from '../context.ts';
import { printJson, relativeTime } from '../output.ts';
import { credentialsFor } from '../credentials-for.ts';
import { describeServer, type ServerState } from '../describe.ts';

const USAGE = 'mcp-oauth list [--json]';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, {}, USAGE);
  if (!args) return 0;
  const { listServers, listStdioServers } = await import('../../config/config.ts');
  const servers = await listServers({ env: ctx.env });
  const stdio = await listStdioServers({ env: ctx.env });
  const store = await ctx.store();
  const now = Date.now();
  const states: ServerState[] = [];
  for (const server of servers) {
    const [credential] = server.bearerTokenEnvVar ? [] : await credentialsFor(store, server);
    states.push(describeServer(server, credential, now));
  }
  // Codex's stdio entries (a local `command`) have no OAuth for us to manage, as in `codex mcp list`.
  for (const entry of stdio) {
    states.push({ server: entry.name, url: `(stdio: ${entry.command})`, source: entry.source, auth_status: 'unsupported', needs_sign_in: false });
  }
  if (ctx.json) {
    printJson(ctx, { servers: states });
    return 0;
  }
  if (states.length === 0) {
    ctx.out('No servers configured.');
    ctx.out('Next: mcp-oauth add NAME URL');
    return 0;
  }
  const width = Math.max(...states.map((s) => s.server.length), 4);
  ctx.out(`${'NAME'.padEnd(width)}  ${'STATUS'.padEnd(14)}  EXPIRES         REFRESH  URL`);
  for (const s of states) {
    const status = s.needs_sign_in && s.auth_status === 'oauth' ? 'needs sign-in' : s.auth_status.replace(/_/g, ' ');
    const expires = s.auth_status === 'oauth' ? relativeTime(s.expires_at ? Date.parse(s.expires_at) : undefined, now) : '-';
    const refresh = s.auth_status === 'oauth' ? (s.has_refresh_token ? 'yes' : 'no') : '-';
    ctx.out(`${s.server.padEnd(width)}  ${status.padEnd(14)}  ${expires.padEnd(14)}  ${refresh.padEnd(7)}  ${s.url}`);
  }
  const pending = states.filter((s) => s.needs_sign_in && s.auth_status !== 'unsupported');
  if (pending.length > 0) ctx.out(`\nNext: mcp-oauth login ${pending[0].server}`);
  return 0;
}
