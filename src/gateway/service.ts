/**
 * `mcp-oauth serve --service [--print]`: installs the gateway as a user service (a systemd user
 * unit on Linux, a launchd agent on macOS) and starts it. What is written and run is planned by
 * service-unit.ts (pure); this module writes the files, runs the commands and reports.
 *
 * Where the service manager is missing or refuses (a container has no user systemd; a session
 * without a bus), the unit is still written: it is right, and starts once there is a manager to
 * load it. The command then fails with the way to start the gateway by hand.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { McpOAuthError } from '../errors.ts';
import { fsPromises, os } from '../builtins.ts';
import type { CliContext } from '../cli/context.ts';
import { printJson } from '../cli/output.ts';
import { writeFileAtomic } from '../store/atomic-write.ts';
import { writeFileKeepingMode } from '../install/file-write.ts';
import { CLI_SCRIPT_PATH, launchWarnings } from '../install/launch.ts';
import { servicePlan, type ServiceCommand, type ServicePlan } from './service-unit.ts';
import { gatewayStatus, type GatewayStatus } from './state.ts';

/** How long to wait for the started gateway to answer its health check before reporting. */
const START_WAIT_MS = 5000;
const COMMAND_TIMEOUT_MS = 30_000;

export async function runServiceInstall(ctx: CliContext, opts: { print: boolean }): Promise<number> {
  const plan = servicePlan({
    platform: process.platform,
    env: ctx.env,
    home: ctx.home,
    userHome: ctx.env.HOME || os().homedir(),
    execPath: process.execPath,
    cliPath: CLI_SCRIPT_PATH,
    uid: process.getuid?.() ?? 0,
  });
  const warnings = launchWarnings({ command: process.execPath, args: [CLI_SCRIPT_PATH] }).map((w) => w.replace('run install again', 'run serve --service again'));
  const previous = await readText(plan.file);
  const commands = previous === undefined ? plan.commands : [...plan.commands, ...plan.restart];
  if (opts.print) return printPlan(ctx, plan, commands, warnings, previous);

  const before = await gatewayStatus(ctx.home);
  if (before.running && previous === undefined) {
    warnings.push(`a gateway is already running (pid ${before.state!.pid}, ${before.state!.url}), not as this service: stop it, or the service cannot listen on the same port`);
  }
  for (const w of warnings) ctx.note(`! ${w}`);
  if (plan.envFile) await writeFileAtomic(plan.envFile.path, plan.envFile.text);
  // launchd opens StandardErrorPath itself and does not create its directory.
  if (plan.kind === 'launchd') await fsPromises().mkdir(join(ctx.home, 'logs'), { recursive: true, mode: 0o700 });
  await writeFileKeepingMode(plan.file, plan.text, 0o644);

  for (const command of commands) {
    const r = await runCommand(command.argv, ctx.env);
    if (r.ok || command.mayFail) continue;
    throw commandFailed(plan, command, r);
  }
  const after = await waitForGateway(ctx.home, before);
  // Only a gateway that was not there before is the service's (a foreground one would still answer).
  const started = after.running && after.state?.pid !== before.state?.pid;
  if (ctx.json) {
    printJson(ctx, { ...planJson(plan, commands), written: true, gateway: { running: started, url: started ? after.state?.url ?? null : null, pid: started ? after.state?.pid ?? null : null }, warnings });
    return 0;
  }
  ctx.out(`✓ Wrote ${plan.file}${plan.envFile ? ` and ${plan.envFile.path} (0600: ${plan.envFile.names.join(', ')})` : ''}`);
  ctx.out(`✓ Ran: ${commands.map((c) => c.argv.join(' ')).join('; ')}`);
  if (started) ctx.out(`✓ The gateway is running at ${after.state!.url} (pid ${after.state!.pid}).`);
  else ctx.out(`! The service is started, but its gateway does not answer yet; its output: ${plan.logs}`);
  ctx.out(plan.kind === 'systemd'
    ? 'It starts at every login. To keep it running while you are logged out: loginctl enable-linger'
    : 'It starts at every login (RunAtLoad) and again after a crash.');
  ctx.out('Next: mcp-oauth install CLIENT NAME --gateway');
  return 0;
}

function printPlan(ctx: CliContext, plan: ServicePlan, commands: ServiceCommand[], warnings: string[], previous: string | undefined): number {
  if (ctx.json) {
    printJson(ctx, { ...planJson(plan, commands), written: false, would_replace: previous !== undefined, unchanged: previous === plan.text, warnings });
    return 0;
  }
  for (const w of warnings) ctx.note(`! ${w}`);
  // stdout is exactly the unit / plist (it can be piped into a file); the rest goes to stderr.
  ctx.note(`# ${plan.file} (nothing written; serve --service would ${previous === undefined ? 'create it' : previous === plan.text ? 'keep it as it is' : 'replace it'}):`);
  process.stdout.write(plan.text);
  if (plan.envFile) ctx.note(`# and ${plan.envFile.path} (0600, never printed): ${plan.envFile.names.join(', ')}`);
  ctx.note('# then it would run:');
  for (const c of commands) ctx.note(`#   ${c.argv.join(' ')}${c.mayFail ? '   (may fail: not loaded yet)' : ''}`);
  return 0;
}

function planJson(plan: ServicePlan, commands: ServiceCommand[]) {
  return {
    kind: plan.kind,
    exec: plan.exec,
    environment: Object.fromEntries(plan.environment),
    file: plan.file,
    text: plan.text,
    env_file: plan.envFile ? { path: plan.envFile.path, variables: plan.envFile.names } : null,
    commands: commands.map((c) => c.argv),
    logs: plan.logs,
  };
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fsPromises().readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

interface CommandResult {
  ok: boolean;
  /** ENOENT: the program is not installed. */
  missing: boolean;
  code: number | null;
  stderr: string;
}

function runCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    // Not spawn's `timeout` option: its timer outlives a program that never started (ENOENT).
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
    const done = (r: CommandResult) => (clearTimeout(timer), resolve(r));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 4096)));
    child.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, missing: err.code === 'ENOENT', code: null, stderr: err.message }));
    child.on('close', (code) => done({ ok: code === 0, missing: false, code, stderr }));
  });
}

/**
 * `usage` (exit 2) when the service manager is not there at all (a container, a minimal system):
 * this machine cannot run the service as asked. `server_unavailable` (exit 6) when it is there but
 * refused (no user bus in this session, the unit failed to start): it may work in a real login
 * session. Either way the unit file is written, and the hint says how to start the gateway by hand.
 */
function commandFailed(plan: ServicePlan, command: ServiceCommand, r: CommandResult): McpOAuthError {
  const shown = command.argv.join(' ');
  const hint = `the ${plan.kind === 'systemd' ? 'unit' : 'agent'} is written (${plan.file}); ${plan.manualStart}`;
  if (r.missing) {
    return new McpOAuthError('usage', `${command.argv[0]} was not found, so the gateway service could not be started`, { hint, details: { file: plan.file, command: command.argv } });
  }
  const why = r.stderr.trim().split('\n')[0]?.slice(0, 300) || `exit code ${r.code}`;
  return new McpOAuthError('server_unavailable', `\`${shown}\` failed: ${why}`, { hint, details: { file: plan.file, command: command.argv, exit_code: r.code } });
}

/** Polls the health check until a gateway other than the one before (a new pid) answers, or time is up. */
async function waitForGateway(home: string, before: GatewayStatus): Promise<GatewayStatus> {
  const deadline = Date.now() + START_WAIT_MS;
  for (;;) {
    const status = await gatewayStatus(home);
    if (status.running && status.state?.pid !== before.state?.pid) return status;
    if (Date.now() > deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
