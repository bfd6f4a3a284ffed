import { parse, type CliContext } from '../context.ts';
import { printJson, relativeTime } from '../output.ts';
import { bareUrlCredentials, selectCredentials } from '../credentials-for.ts';
import { describeGateway, describeServer, type GatewayView, type ServerState } from '../describe.ts';
import type { ServerConfig } from '../../types.ts';

const USAGE = 'mcp-oauth list [--json]';

/** A row of `list`: plus, when the credential is stored under another name (a bare URL), that name. */
type ListedServer = ServerState & { credential_of?: string };

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, {}, USAGE);
  if (!args) return 0;
  const { listServers, listStdioServers } = await import('../../config/config.ts');
  const servers = await listServers({ env: ctx.env });
  const stdio = await listStdioServers({ env: ctx.env });
  const { gatewayStatus } = await import('../../gateway/state.ts');
  const [store, status] = await Promise.all([ctx.store(), gatewayStatus(ctx.home)]);
  const gateway = describeGateway(status, servers.map((s) => s.name));
  const all = await store.list();
  const now = Date.now();
  const states: ListedServer[] = [];
  for (const server of servers) {
    // A named entry signed in through its bare URL (`mcp-oauth login https://…`) is signed in.
    const [credential] = server.bearerTokenEnvVar ? [] : selectCredentials(all, server);
    const state: ListedServer = describeServer(server, credential, now);
    if (credential && credential.key.serverName !== server.name) state.credential_of = credential.key.serverName;
    states.push(state);
  }
  // Sign-ins made with a bare URL have no config entry: without these rows they would be invisible.
  for (const [name, [credential]] of bareUrlCredentials(all)) {
    const server: ServerConfig = { name, url: name, source: 'url', httpHeaders: {}, envHttpHeaders: {}, oauth: { authorizeParams: {} } };
    states.push(describeServer(server, credential, now));
  }
  // Codex's stdio entries (a local `command`) have no OAuth for us to manage, as in `codex mcp list`.
  for (const entry of stdio) {
    states.push({ server: entry.name, url: `(stdio: ${entry.command})`, source: entry.source, auth_status: 'unsupported', needs_sign_in: false });
  }
  if (ctx.json) {
    printJson(ctx, { servers: states, gateway });
    return 0;
  }
  if (states.length === 0) {
    ctx.out('No servers configured.');
    printGateway(ctx, gateway);
    ctx.out('Next: mcp-oauth add NAME URL');
    return 0;
  }
  // A bare URL is its own name: shown once, in the URL column, with "(url)" as its name.
  const nameOf = (s: ListedServer) => (s.source === 'url' ? '(url)' : s.server);
  const width = Math.max(...states.map((s) => nameOf(s).length), 4);
  ctx.out(`${'NAME'.padEnd(width)}  ${'STATUS'.padEnd(14)}  EXPIRES         REFRESH  URL`);
  for (const s of states) {
    const status = s.needs_sign_in && s.auth_status === 'oauth' ? 'needs sign-in' : s.auth_status.replace(/_/g, ' ');
    const expires = s.auth_status === 'oauth' ? relativeTime(s.expires_at ? Date.parse(s.expires_at) : undefined, now) : '-';
    const refresh = s.auth_status === 'oauth' ? (s.has_refresh_token ? 'yes' : 'no') : '-';
    const name = nameOf(s);
    ctx.out(`${name.padEnd(width)}  ${status.padEnd(14)}  ${expires.padEnd(14)}  ${refresh.padEnd(7)}  ${s.url}`);
  }
  const shared = states.filter((s) => s.credential_of);
  if (shared.length > 0) {
    ctx.out('');
    for (const s of shared) ctx.out(`${s.server} uses the sign-in made with its URL (${s.credential_of}).`);
  }
  ctx.out('');
  printGateway(ctx, gateway);
  const pending = states.filter((s) => s.needs_sign_in && s.auth_status !== 'unsupported');
  if (pending.length > 0) ctx.out(`\nNext: mcp-oauth login ${pending[0].server}`);
  return 0;
}

/** One line for the gateway: running (where, and what it serves) or how to start it. */
function printGateway(ctx: CliContext, g: GatewayView): void {
  if (g.running) ctx.out(`Gateway: running at ${g.url} (pid ${g.pid}), serving ${g.servers.length ? g.servers.join(', ') : 'no servers yet'} at ${g.url}/servers/NAME/mcp`);
  else ctx.out(`Gateway: ${g.detail}`);
}
