/**
 * `mcp-oauth` command line. One verb per user intent (like `gh auth`): every read command takes
 * `--json`, human output names the next step, and exit codes are stable (src/errors.ts).
 * Command modules are imported lazily so that `proxy` starts fast.
 */
import { McpOAuthError } from '../errors.ts';
import { createCliContext, type CliContext } from './context.ts';
import { printError } from './output.ts';

export type CommandModule = { run(ctx: CliContext, argv: string[]): Promise<number> };

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  login: { summary: 'Sign in to a server (opens the browser once)', load: () => import('./commands/login.ts') },
  logout: { summary: 'Revoke and delete the stored credential', load: () => import('./commands/logout.ts') },
  list: { summary: 'Every configured server with its sign-in status', load: () => import('./commands/list.ts') },
  status: { summary: 'What is stored for a server (no network)', load: () => import('./commands/status.ts') },
  doctor: { summary: 'Live check: metadata, token endpoint, refresh, initialize, tools/list', load: () => import('./commands/doctor.ts') },
  token: { summary: 'Print a valid access token (refreshing if needed), for scripts', load: () => import('./commands/token.ts') },
  tools: { summary: "List a server's tools", load: () => import('./commands/tools.ts') },
  call: { summary: 'Call a tool: call NAME TOOL [JSON-ARGS]', load: () => import('./commands/call.ts') },
  add: { summary: 'Add a server to the config: add NAME URL [options]', load: () => import('./commands/add.ts') },
  remove: { summary: 'Remove a server from the config', load: () => import('./commands/remove.ts') },
  install: { summary: 'Wire a server into an MCP client (stdio proxy, or --gateway): install CLIENT NAME', load: () => import('./commands/install.ts') },
  'store-key': { summary: "The Redis store's encryption key: store-key create|import|export|status", load: () => import('./commands/store-key.ts') },
  sandbox: { summary: 'Run a local authorization server + MCP server on 127.0.0.1', load: () => import('./commands/sandbox.ts') },
  serve: { summary: 'Run one local Streamable HTTP gateway for every configured server', load: () => import('./commands/serve.ts') },
  proxy: { summary: 'Run a stdio MCP server that forwards to NAME|URL, always signed in', load: () => import('./commands/proxy.ts') },
  demo: { summary: 'Sign in to the sandbox and call tools across several token expiries', load: () => import('./commands/demo.ts') },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: mcp-oauth <command> [NAME|URL] [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Global options: --json (machine-readable output), --debug (verbose log on stderr), --help',
    'Config: $MCP_OAUTH_HOME/config.toml (default ~/.config/mcp-oauth); Codex servers in $CODEX_HOME/config.toml work too.',
  ].join('\n');
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage() + '\n');
    return command ? 0 : 2;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write('mcp-oauth 0.1.0\n');
    return 0;
  }
  const entry = COMMANDS[command];
  if (!entry) {
    process.stderr.write(`mcp-oauth: unknown command "${command}"\n\n${usage()}\n`);
    return 2;
  }
  const ctx = createCliContext({ env, argv: rest });
  try {
    const mod = await entry.load();
    return await mod.run(ctx, rest);
  } catch (e) {
    printError(ctx, e);
    return e instanceof McpOAuthError ? e.exitCode : 1;
  } finally {
    await ctx.close();
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`mcp-oauth: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
