/**
 * A private Secret Service for tests: a D-Bus session bus of our own (no service activation, so
 * nothing but our daemon can own org.freedesktop.secrets) plus gnome-keyring-daemon with a fresh,
 * unlocked login keyring in a temp dir. Nothing of the user's keyring or session bus is touched.
 *
 * Needs dbus-daemon, gnome-keyring-daemon and secret-tool (Debian/Ubuntu:
 * apt-get install -y dbus gnome-keyring libsecret-tools). Linux only.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export const KEYRING_BINARIES = ['dbus-daemon', 'gnome-keyring-daemon', 'secret-tool'];

/**
 * Why a Secret Service test cannot run here, or undefined when it can. Under CI on Linux a missing
 * binary throws instead, so the coverage cannot silently disappear from the pipeline.
 */
export function keyringUnsupported(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (process.platform !== 'linux') return 'the Secret Service tests run on Linux only';
  const missing = KEYRING_BINARIES.filter((bin) => !onPath(bin, env));
  if (missing.length === 0) return undefined;
  const reason = `missing ${missing.join(', ')} (apt-get install -y dbus gnome-keyring libsecret-tools)`;
  if (env.CI) throw new Error(`the Secret Service tests cannot run under CI: ${reason}`);
  return reason;
}

export function onPath(bin: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, bin)));
}

export interface PrivateKeyring {
  /** Temp dir holding the bus sockets, the keyring files and the daemons' HOME. */
  dir: string;
  /** Address of the session bus that gnome-keyring-daemon serves the Secret Service on. */
  busAddress: string;
  /** A minimal environment on that bus (PATH, HOME, XDG dirs, DBUS_SESSION_BUS_ADDRESS). */
  env: NodeJS.ProcessEnv;
  /** Another private bus with no Secret Service on it (for "bus but no keyring" cases). */
  startEmptyBus(name?: string): Promise<string>;
  /** Runs secret-tool against this keyring (stdin = `input`). */
  secretTool(args: string[], input?: string): SpawnSyncReturns<string>;
  /** Stops every daemon (SIGTERM, then SIGKILL after 3 s) and removes the temp dir. */
  stop(): Promise<void>;
}

export async function startPrivateKeyring(): Promise<PrivateKeyring> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-oauth-keyring-'));
  const daemons: ChildProcess[] = [];
  const stop = async () => {
    for (const d of daemons.reverse()) await stopDaemon(d);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const sub of ['home', 'data', 'runtime']) await mkdir(join(dir, sub), { mode: 0o700 });
    const busAddress = await startBus(dir, 'bus', daemons);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: join(dir, 'home'),
      XDG_DATA_HOME: join(dir, 'data'),
      XDG_RUNTIME_DIR: join(dir, 'runtime'),
      DBUS_SESSION_BUS_ADDRESS: busAddress,
    };
    const secretTool = (args: string[], input?: string) =>
      spawnSync('secret-tool', args, { env, input, encoding: 'utf8', timeout: 20_000 });

    // --unlock reads the login keyring password from stdin and creates the keyring when it does
    // not exist yet. It must be non-empty: with an empty one no login collection is created.
    const keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
      env,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    daemons.push(keyring);
    keyring.stdin!.end('test-password');
    // Ready when the login collection accepts an item (the daemon owns the name and unlocked it).
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = secretTool(['store', '--label=ready', 'service', 'mcp-oauth-test', 'username', 'ready'], 'x');
      if (r.status === 0) break;
      if (Date.now() > deadline) throw new Error(`gnome-keyring-daemon did not become ready: ${r.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return {
      dir,
      busAddress,
      env,
      startEmptyBus: (name = `empty-${daemons.length}`) => startBus(dir, name, daemons),
      secretTool,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function startBus(dir: string, name: string, daemons: ChildProcess[]): Promise<string> {
  const socket = join(dir, `${name}.sock`);
  const config = join(dir, `${name}.conf`);
  await writeFile(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`,
  );
  const bus = spawn('dbus-daemon', [`--config-file=${config}`, '--nofork', '--print-address=1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  daemons.push(bus);
  return new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('dbus-daemon did not start')), 10_000);
    bus.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.split('\n')[0].trim());
      }
    });
    bus.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    bus.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dbus-daemon exited ${code}`));
    });
  });
}

async function stopDaemon(d: ChildProcess): Promise<void> {
  if (d.pid === undefined || d.exitCode !== null || d.signalCode !== null) return;
  const exited = new Promise((resolve) => d.once('exit', resolve));
  d.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 3_000)))]);
  clearTimeout(timer);
  if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
}
