/**
 * What `mcp-oauth serve --service` writes and runs, as pure functions of their inputs (platform,
 * environment, paths, uid): a systemd user unit on Linux, a launchd agent on macOS, and the
 * commands that load and start it. service.ts does the I/O.
 *
 * The service runs `serve` with ABSOLUTE paths (the Node binary running now, process.execPath,
 * and this installation's bin/mcp-oauth.js): a user service manager starts programs with a minimal
 * PATH. It does not inherit the shell's environment either, so the variables that decide where the
 * gateway finds its config and credentials go along:
 * - non-secret ones (MCP_OAUTH_HOME, MCP_OAUTH_STORE, CODEX_HOME, DBUS_SESSION_BUS_ADDRESS on
 *   Linux) as values in the unit (`Environment=`) or the plist (`EnvironmentVariables`);
 * - secret ones (MCP_OAUTH_REDIS_URL, which may hold the Redis password, and MCP_OAUTH_REDIS_KEY,
 *   the store's encryption key) NEVER in the unit or plist (unit files are world-readable, and
 *   `systemctl show` prints Environment= to any user): they go into HOME/gateway.env (0600, in the
 *   0700 home), which Node itself reads at start (`node --env-file=FILE`, Node ≥ 20.6). One
 *   mechanism and one file format on both platforms; launchd has no EnvironmentFile= of its own.
 */
import { posix } from 'node:path';
import { McpOAuthError } from '../errors.ts';

export const SYSTEMD_UNIT_NAME = 'mcp-oauth-gateway.service';
export const LAUNCHD_LABEL = 'dev.mcp-oauth.gateway';
export const SERVICE_ENV_FILE = 'gateway.env';

/** Variables whose values may be written into the unit / plist. */
const PLAIN_VARIABLES = ['MCP_OAUTH_HOME', 'MCP_OAUTH_STORE', 'CODEX_HOME', 'MCP_OAUTH_LOG_LEVEL'] as const;
/** Variables whose values are secrets: only ever in the 0600 env file. */
export const SECRET_VARIABLES = ['MCP_OAUTH_REDIS_URL', 'MCP_OAUTH_REDIS_KEY'] as const;

export interface ServiceInputs {
  platform: NodeJS.Platform;
  env: NodeJS.ProcessEnv;
  /** mcp-oauth's home as the CLI resolved it. */
  home: string;
  /** The user's home directory ($HOME, else os.homedir()). */
  userHome: string;
  execPath: string;
  cliPath: string;
  /** The user id (launchd's gui/UID domain). */
  uid: number;
}

export interface ServiceCommand {
  argv: string[];
  /** A failure is expected and harmless (launchctl bootout of an agent that is not loaded). */
  mayFail?: boolean;
}

export interface ServicePlan {
  kind: 'systemd' | 'launchd';
  /** What the service runs, and the (non-secret) variables it runs with. */
  exec: string[];
  environment: Array<[string, string]>;
  /** The unit / plist path, and its text (mode 0644: it holds no secret). */
  file: string;
  text: string;
  /** HOME/gateway.env with the secret variables (0600), when any is set. */
  envFile?: { path: string; text: string; names: string[] };
  /** What loads and starts it, in order. */
  commands: ServiceCommand[];
  /** Run as well when a unit was already there: the running gateway must pick up the new one. */
  restart: ServiceCommand[];
  /** Where its output goes, for the human output and the hint of a failure. */
  logs: string;
  /** How to start it by hand when the service manager is missing or failed. */
  manualStart: string;
}

/** The plan for this platform; `usage` for one without a supported user service manager. */
export function servicePlan(inputs: ServiceInputs): ServicePlan {
  if (inputs.platform !== 'linux' && inputs.platform !== 'darwin') {
    throw new McpOAuthError('usage', `serve --service installs a systemd user unit (Linux) or a launchd agent (macOS); ${inputs.platform} has neither`, {
      hint: 'run `mcp-oauth serve` at login with the system\'s own scheduler (e.g. a Task Scheduler task on Windows)',
    });
  }
  const environment = serviceEnvironment(inputs);
  const envFile = environment.secret.length
    ? { path: posix.join(inputs.home, SERVICE_ENV_FILE), text: envFileText(environment.secret), names: environment.secret.map(([k]) => k) }
    : undefined;
  // Node reads the env file before our code runs; a missing file stops it with an error (loud, not silent).
  const argv = [inputs.execPath, ...(envFile ? [`--env-file=${envFile.path}`] : []), inputs.cliPath, 'serve'];
  if (inputs.platform === 'linux') {
    const file = posix.join(xdgConfigHome(inputs), 'systemd', 'user', SYSTEMD_UNIT_NAME);
    const systemctl = (...args: string[]) => ({ argv: ['systemctl', '--user', ...args] });
    return {
      kind: 'systemd',
      exec: argv,
      environment: environment.plain,
      file,
      text: systemdUnit({ argv, environment: environment.plain, file }),
      ...(envFile ? { envFile } : {}),
      commands: [systemctl('daemon-reload'), systemctl('enable', '--now', SYSTEMD_UNIT_NAME)],
      restart: [systemctl('restart', SYSTEMD_UNIT_NAME)],
      logs: `journalctl --user -u ${SYSTEMD_UNIT_NAME} (and ${posix.join(inputs.home, 'logs', 'gateway.log')})`,
      manualStart: `run \`mcp-oauth serve\` yourself (a terminal, tmux, or the container's entrypoint); where a user systemd runs: systemctl --user daemon-reload && systemctl --user enable --now ${SYSTEMD_UNIT_NAME}`,
    };
  }
  const file = posix.join(inputs.userHome, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
  const domain = `gui/${inputs.uid}`;
  const logFile = posix.join(inputs.home, 'logs', 'gateway-service.log');
  return {
    kind: 'launchd',
    exec: argv,
    environment: environment.plain,
    file,
    text: launchdPlist({ argv, environment: environment.plain, logFile }),
    ...(envFile ? { envFile } : {}),
    // `bootout` first: bootstrap refuses a label that is already loaded (and a loaded agent keeps the old plist).
    commands: [{ argv: ['launchctl', 'bootout', `${domain}/${LAUNCHD_LABEL}`], mayFail: true }, { argv: ['launchctl', 'bootstrap', domain, file] }],
    restart: [],
    logs: `${logFile} (and ${posix.join(inputs.home, 'logs', 'gateway.log')})`,
    manualStart: `run \`mcp-oauth serve\` yourself, or: launchctl bootstrap ${domain} ${file}`,
  };
}

/** The variables the service gets: plain ones by value, secret ones for the env file. */
export function serviceEnvironment(inputs: Pick<ServiceInputs, 'env' | 'home' | 'platform'>): { plain: Array<[string, string]>; secret: Array<[string, string]> } {
  const { env } = inputs;
  const values: Record<string, string | undefined> = { ...Object.fromEntries(PLAIN_VARIABLES.map((k) => [k, env[k]])) };
  // As for the proxy's launch line (src/install/launch.ts): a home derived from XDG_CONFIG_HOME is
  // pinned, since the service manager's own environment rarely has the shell's XDG_CONFIG_HOME.
  if (env.MCP_OAUTH_HOME || env.XDG_CONFIG_HOME) values.MCP_OAUTH_HOME = inputs.home;
  // The keychain store on Linux needs the session bus (Secret Service). macOS's keychain does not.
  if (inputs.platform === 'linux') values.DBUS_SESSION_BUS_ADDRESS = env.DBUS_SESSION_BUS_ADDRESS;
  const plain = Object.entries(values).filter((e): e is [string, string] => Boolean(e[1]));
  const secret = SECRET_VARIABLES.map((k) => [k, env[k]] as [string, string | undefined]).filter((e): e is [string, string] => Boolean(e[1]));
  return { plain, secret };
}

function xdgConfigHome(inputs: Pick<ServiceInputs, 'env' | 'userHome'>): string {
  const xdg = inputs.env.XDG_CONFIG_HOME;
  // XDG Base Directory spec: a relative path is invalid and ignored (systemd does the same).
  return xdg && posix.isAbsolute(xdg) ? xdg : posix.join(inputs.userHome, '.config');
}

/**
 * systemd.unit(5) / systemd.service(5) / systemd.exec(5). Every ExecStart= word is double-quoted
 * (C escapes inside), `%` doubled (specifiers) and `$` doubled (variable expansion); an
 * Environment= assignment is one quoted word, where only `%` specifiers apply.
 */
export function systemdUnit(opts: { argv: string[]; environment: Array<[string, string]>; file: string }): string {
  const quoted = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/%/g, '%%')}"`;
  const exec = opts.argv.map((a) => quoted(a).replace(/\$/g, '$$$$')).join(' ');
  return [
    '# The mcp-oauth gateway: one local Streamable HTTP endpoint per configured MCP server.',
    '# Written by `mcp-oauth serve --service` (run it again to rewrite this file). To remove:',
    `#   systemctl --user disable --now ${SYSTEMD_UNIT_NAME} && rm ${opts.file}`,
    '[Unit]',
    'Description=mcp-oauth gateway (local MCP endpoints, always signed in)',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${exec}`,
    ...opts.environment.map(([k, v]) => `Environment=${quoted(`${k}=${v}`)}`),
    'Restart=on-failure',
    'RestartSec=5',
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

/**
 * launchd.plist(5): started at login (RunAtLoad) and started again when it exits with a failure
 * (KeepAlive SuccessfulExit=false, as systemd's Restart=on-failure); `launchctl bootout` stops it.
 */
export function launchdPlist(opts: { argv: string[]; environment: Array<[string, string]>; logFile: string }): string {
  const s = (v: string) => `<string>${xmlEscape(v)}</string>`;
  const env = opts.environment.length
    ? ['  <key>EnvironmentVariables</key>', '  <dict>', ...opts.environment.flatMap(([k, v]) => [`    <key>${xmlEscape(k)}</key>`, `    ${s(v)}`]), '  </dict>']
    : [];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<!-- The mcp-oauth gateway. Written by `mcp-oauth serve --service`; run it again to rewrite this file. -->',
    '<plist version="1.0">',
    '<dict>',
    '  <key>Label</key>',
    `  ${s(LAUNCHD_LABEL)}`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...opts.argv.map((a) => `    ${s(a)}`),
    '  </array>',
    ...env,
    '  <key>RunAtLoad</key>',
    '  <true/>',
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key>',
    '    <false/>',
    '  </dict>',
    '  <key>StandardOutPath</key>',
    `  ${s(opts.logFile)}`,
    '  <key>StandardErrorPath</key>',
    `  ${s(opts.logFile)}`,
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

function xmlEscape(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The env file as Node's `--env-file` parses it: single quotes take the value literally (no
 * escapes, `#` and `$` included); a value with a single quote goes in backticks, literal too. A
 * value with both (or a line break) cannot be written safely: refused.
 */
export function envFileText(entries: Array<[string, string]>): string {
  const lines = entries.map(([k, v]) => {
    if (/[\r\n]/.test(v) || (v.includes("'") && v.includes('`'))) {
      throw new McpOAuthError('usage', `${k} holds characters the service's environment file cannot carry (a line break, or both ' and \`)`, {
        hint: `set it without them, or start the gateway yourself: mcp-oauth serve`,
      });
    }
    return v.includes("'") ? `${k}=\`${v}\`` : `${k}='${v}'`;
  });
  return ['# Secret environment of the mcp-oauth gateway service (read by node --env-file). Keep it 0600.', ...lines, ''].join('\n');
}
