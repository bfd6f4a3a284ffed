import { homedir } from 'node:os';
import { parse, requirePositional, type CliContext } from '../context.ts';
import { printJson } from '../output.ts';
import { loginCommand } from '../../errors.ts';
import { installForCommand, type InstallResult } from '../../install/install.ts';
import type { GatewayStatus } from '../../gateway/state.ts';

const USAGE =
  'mcp-oauth install codex|claude-code|claude-desktop|cursor|vscode NAME|URL [--gateway] [--as ENTRY] [--config-file PATH] [--print] [--force] [--json]';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(
    ctx,
    argv,
    {
      as: { type: 'string' },
      'config-file': { type: 'string' },
      print: { type: 'boolean' },
      force: { type: 'boolean' },
      gateway: { type: 'boolean' },
    },
    USAGE,
  );
  if (!args) return 0;
  const v = args.values as { as?: string; 'config-file'?: string; print?: boolean; force?: boolean; gateway?: boolean };
  const print = Boolean(v.print);
  const gateway = v.gateway ? await gatewayOptions(ctx, print) : undefined;
  const result = await installForCommand({
    clientName: requirePositional(args.positionals, 0, 'CLIENT', USAGE),
    target: requirePositional(args.positionals, 1, 'server NAME or URL', USAGE),
    as: v.as,
    configFile: v['config-file'],
    force: Boolean(v.force),
    print,
    env: ctx.env,
    home: ctx.home,
    platform: process.platform,
    homedir: homedir(),
    resolveServer: (nameOrUrl) => ctx.server(nameOrUrl),
    storeSetting: (await ctx.settings()).store,
    ...(gateway ? { gateway: gateway.install } : {}),
  });
  const server = result.server;
  const status = gateway ? await gateway.status() : undefined;
  if (gateway && status) result.warnings.push(...gateway.warnings(status));
  for (const w of result.warnings) ctx.note(`! ${w}`);
  if (ctx.json) {
    printJson(ctx, {
      client: result.client,
      file: result.file,
      entry: result.entryName,
      server: server.name,
      url: server.url,
      status: result.status,
      written: result.status === 'created' || result.status === 'replaced',
      transport: result.transport,
      ...(result.launch
        ? {
            command: result.launch.command,
            args: result.launch.args,
            ...(result.launch.env ? { env: result.launch.env } : {}),
            ...(result.launch.forwardEnv ? { forward_env: result.launch.forwardEnv } : {}),
          }
        : {}),
      ...(result.http
        ? {
            endpoint: result.http.url,
            headers: result.http.headerNames,
            secret_fingerprint: result.http.secretFingerprint,
            gateway: { base: gateway!.base, running: status!.running, url: status!.state?.url ?? null, pid: status!.running ? status!.state?.pid ?? null : null },
          }
        : {}),
      ...(result.wouldBe ? { would_be: result.wouldBe } : {}),
      text: result.entryText,
      backup: result.backup ?? null,
      comments_dropped: result.commentsDropped,
      warnings: result.warnings,
    });
    return 0;
  }
  if (result.status === 'printed') {
    // stdout carries exactly the entry text, so it can be piped or pasted; the rest goes to stderr.
    ctx.note(`# ${result.title} entry for ${result.file} (nothing written; install would ${WOULD[result.wouldBe ?? 'created']}):`);
    if (result.http) ctx.note(`# ${SECRET_NOTE}${result.http.secretFingerprint ? '' : ' (there is none yet: install creates it)'}`);
    process.stdout.write(result.entryText);
    return 0;
  }
  if (result.http) printGatewayHuman(ctx, result, status!, server.name);
  else printHuman(ctx, result, server.name);
  return 0;
}

const WOULD = {
  created: 'add it',
  replaced: 'replace the existing entry of that name (--force)',
  unchanged: 'change nothing: the entry is already there',
} as const;

const SECRET_NOTE = '"<gateway secret>" stands for the gateway secret: install writes the real one into the file, and it is never printed';

/**
 * `--gateway`: where the gateway is (the configured [gateway] address: the entry must stay valid
 * across restarts, so never a port a `serve --port 0` happened to get), its secret (created on
 * first use, but not by --print, which writes nothing), and whether it runs now.
 */
async function gatewayOptions(ctx: CliContext, print: boolean) {
  const [{ loadConfig }, { gatewayBaseUrl }, { gatewaySecret }, { gatewayStatus }] = await Promise.all([
    import('../../config/config.ts'),
    import('../../gateway/address.ts'),
    import('../../gateway/secret.ts'),
    import('../../gateway/state.ts'),
  ]);
  const base = gatewayBaseUrl((await loadConfig({ env: ctx.env })).gateway);
  return {
    base,
    install: { base, secret: async () => gatewaySecret(await ctx.store(), { create: !print }) },
    status: () => gatewayStatus(ctx.home),
    warnings: (s: GatewayStatus): string[] =>
      s.running && s.state && s.state.url !== base
        ? [`the running gateway listens on ${s.state.url}, but client entries use the configured address ${base}: restart it as \`mcp-oauth serve\` (no --port / --host), or set [gateway] in config.toml`]
        : [],
  };
}

function printGatewayHuman(ctx: CliContext, r: InstallResult, status: GatewayStatus, serverName: string): void {
  const http = r.http!;
  if (r.status === 'unchanged') {
    ctx.out(`✓ ${r.title} already reaches the gateway as "${r.entryName}" (${r.file}); nothing to change.`);
  } else {
    ctx.out(`✓ ${r.status === 'created' ? 'Added' : 'Replaced'} "${r.entryName}" in ${r.file} (${r.title}): it reaches the gateway over Streamable HTTP:`);
    ctx.out(`  ${http.url}`);
    ctx.out(`  with the header ${http.headerNames.join(', ')}: Bearer <gateway secret ${http.secretFingerprint}> (the file holds the secret; keep it private)`);
    if (r.backup) ctx.out(`  Backup of the previous file: ${r.backup}`);
    if (r.commentsDropped) ctx.out(`  ! Comments/formatting of the old file were not kept; they are in the backup.`);
  }
  if (status.running) {
    ctx.out(`The gateway is running at ${status.state!.url} (pid ${status.state!.pid}).`);
    ctx.out(`Next: restart ${r.title} (quit and reopen) so it connects. Not signed in yet? ${loginCommand(serverName)} (or the gateway opens the sign-in on the first request)`);
  } else {
    ctx.out(`The gateway is not running.`);
    ctx.out(`Next: start it: mcp-oauth serve (or keep it running as a user service: mcp-oauth serve --service), then restart ${r.title}.`);
  }
}

function printHuman(ctx: CliContext, r: InstallResult, serverName: string): void {
  const launch = r.launch!;
  if (r.status === 'unchanged') {
    ctx.out(`✓ ${r.title} already starts the proxy as "${r.entryName}" (${r.file}); nothing to change.`);
  } else {
    ctx.out(`✓ ${r.status === 'created' ? 'Added' : 'Replaced'} "${r.entryName}" in ${r.file} (${r.title}): it starts the proxy:`);
    ctx.out(`  ${[launch.command, ...launch.args].map(shellWord).join(' ')}`);
    if (launch.env) ctx.out(`  with ${Object.entries(launch.env).map(([k, val]) => `${k}=${shellWord(val)}`).join(' ')}`);
    if (launch.forwardEnv) ctx.out(`  passing on ${launch.forwardEnv.join(', ')} from ${r.title}'s own environment`);
    if (r.backup) ctx.out(`  Backup of the previous file: ${r.backup}`);
    if (r.commentsDropped) ctx.out(`  ! Comments/formatting of the old file were not kept; they are in the backup.`);
  }
  ctx.out(`Next: restart ${r.title} (quit and reopen) so it starts the proxy. Not signed in yet? ${loginCommand(serverName)}`);
}

function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
