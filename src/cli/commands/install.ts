import { homedir } from 'node:os';
import { parse, requirePositional, type CliContext } from '../context.ts';
import { printJson } from '../output.ts';
import { loginCommand } from '../../errors.ts';
import { installForCommand, type InstallResult } from '../../install/install.ts';

const USAGE =
  'mcp-oauth install codex|claude-code|claude-desktop|cursor|vscode NAME|URL [--as ENTRY] [--config-file PATH] [--print] [--force] [--json]';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(
    ctx,
    argv,
    {
      as: { type: 'string' },
      'config-file': { type: 'string' },
      print: { type: 'boolean' },
      force: { type: 'boolean' },
    },
    USAGE,
  );
  if (!args) return 0;
  const v = args.values as { as?: string; 'config-file'?: string; print?: boolean; force?: boolean };
  const result = await installForCommand({
    clientName: requirePositional(args.positionals, 0, 'CLIENT', USAGE),
    target: requirePositional(args.positionals, 1, 'server NAME or URL', USAGE),
    as: v.as,
    configFile: v['config-file'],
    force: Boolean(v.force),
    print: Boolean(v.print),
    env: ctx.env,
    home: ctx.home,
    platform: process.platform,
    homedir: homedir(),
    resolveServer: (nameOrUrl) => ctx.server(nameOrUrl),
    storeSetting: (await ctx.settings()).store,
  });
  const server = result.server;
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
      command: result.launch.command,
      args: result.launch.args,
      ...(result.launch.env ? { env: result.launch.env } : {}),
      ...(result.launch.forwardEnv ? { forward_env: result.launch.forwardEnv } : {}),
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
    process.stdout.write(result.entryText);
    return 0;
  }
  printHuman(ctx, result, server.name);
  return 0;
}

const WOULD = {
  created: 'add it',
  replaced: 'replace the existing entry of that name (--force)',
  unchanged: 'change nothing: the entry is already there',
} as const;

function printHuman(ctx: CliContext, r: InstallResult, serverName: string): void {
  if (r.status === 'unchanged') {
    ctx.out(`✓ ${r.title} already starts the proxy as "${r.entryName}" (${r.file}); nothing to change.`);
  } else {
    ctx.out(`✓ ${r.status === 'created' ? 'Added' : 'Replaced'} "${r.entryName}" in ${r.file} (${r.title}): it starts the proxy:`);
    ctx.out(`  ${[r.launch.command, ...r.launch.args].map(shellWord).join(' ')}`);
    if (r.launch.env) ctx.out(`  with ${Object.entries(r.launch.env).map(([k, val]) => `${k}=${shellWord(val)}`).join(' ')}`);
    if (r.launch.forwardEnv) ctx.out(`  passing on ${r.launch.forwardEnv.join(', ')} from ${r.title}'s own environment`);
    if (r.backup) ctx.out(`  Backup of the previous file: ${r.backup}`);
    if (r.commentsDropped) ctx.out(`  ! Comments/formatting of the old file were not kept; they are in the backup.`);
  }
  ctx.out(`Next: restart ${r.title} (quit and reopen) so it starts the proxy. Not signed in yet? ${loginCommand(serverName)}`);
}

function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
