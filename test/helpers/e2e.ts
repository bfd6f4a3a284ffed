/**
 * Shared helpers for end-to-end tests: run the real `mcp-oauth` CLI in a child process against
 * the sandbox, each test in its own MCP_OAUTH_HOME, with $BROWSER set to a script that follows the
 * authorize URL (auto-approve) and logs each launch.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cliPath = join(repoRoot, 'bin', 'mcp-oauth.js');
export const followBrowser = join(repoRoot, 'test', 'fixtures', 'browser-follow.ts');

export interface TestHome {
  home: string;
  /** Environment for CLI child processes: file store, empty Codex home, headless $BROWSER. */
  env: NodeJS.ProcessEnv;
  browserLog: string;
  cleanup(): Promise<void>;
}

export async function makeHome(extraEnv: NodeJS.ProcessEnv = {}): Promise<TestHome> {
  const root = await mkdtemp(join(tmpdir(), 'mcp-oauth-e2e-'));
  const home = join(root, 'home');
  const codex = join(root, 'codex');
  await mkdir(codex, { recursive: true });
  const browserLog = join(root, 'browser.log');
  const env: NodeJS.ProcessEnv = {
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
    HOME: root,
    MCP_OAUTH_HOME: home,
    MCP_OAUTH_STORE: 'file',
    CODEX_HOME: codex,
    BROWSER: `${process.execPath} ${followBrowser}`,
    BROWSER_LOG: browserLog,
    NO_COLOR: '1',
    ...extraEnv,
  };
  // Retries: a detached $BROWSER script may still be writing its log when the CLI has exited.
  return { home, env, browserLog, cleanup: () => rm(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }) };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env: NodeJS.ProcessEnv; input?: string; timeoutMs?: number }): Promise<CliResult> {
  return runNodeScript(cliPath, args, { ...opts, what: `mcp-oauth ${args.join(' ')}` });
}

/** Runs `node SCRIPT ARGS` to its end, with a deadline (the child is killed and the promise rejects). */
export function runNodeScript(script: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number; what?: string }): Promise<CliResult> {
  return runProcess(process.execPath, [script, ...args], { ...opts, input: opts.input ?? '', what: opts.what ?? script });
}

/**
 * Runs COMMAND ARGS to its end, with a deadline (the child is killed and the promise rejects).
 * `input` is written to stdin and closed; without it, stdin is /dev/null.
 */
export function runProcess(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number; what?: string }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.what ?? command} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

export async function writeConfig(home: string, toml: string): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  await writeFile(join(home, 'config.toml'), toml, { mode: 0o600 });
}

/** The file store's contents (credentials keyed by id, registrations by issuer). */
export async function readStore(home: string): Promise<{ credentials: Record<string, any>; registrations: Record<string, any> }> {
  try {
    return JSON.parse(await readFile(join(home, 'credentials.json'), 'utf8'));
  } catch {
    return { credentials: {}, registrations: {} };
  }
}

/** Every secret held in the store must be absent from what the CLI printed. */
export async function assertNoSecretsPrinted(home: string, ...outputs: string[]): Promise<void> {
  const { credentials, registrations } = await readStore(home);
  const secrets: string[] = [];
  for (const c of Object.values(credentials)) secrets.push(c.accessToken, c.refreshToken);
  for (const r of Object.values(registrations ?? {})) secrets.push(r.clientSecret);
  for (const s of secrets.filter((x): x is string => typeof x === 'string' && x.length >= 8)) {
    for (const out of outputs) assert.ok(!out.includes(s), 'a secret from the store appeared in CLI output');
  }
}

export async function browserLaunches(log: string): Promise<number> {
  try {
    return (await readFile(log, 'utf8')).split('\n').filter((l) => /^\d+ /.test(l)).length;
  } catch {
    return 0;
  }
}

/**
 * Waits until `file` exists and returns its contents (a detached $BROWSER reports through files:
 * its stdout goes nowhere). Rejects after `timeoutMs`.
 */
export async function waitForFile(file: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await readFile(file, 'utf8');
    } catch {
      if (Date.now() > deadline) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Asserts the CLI exited 0, showing its output when it did not. */
export function ok(r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** The one credential in the file store (it keeps them by id). */
export async function onlyCredential(home: string): Promise<Record<string, any>> {
  const all = Object.values((await readStore(home)).credentials);
  assert.equal(all.length, 1, `expected one stored credential, found ${all.length}`);
  return all[0];
}

/** The HTTP status the MCP server gives an `initialize` carrying this bearer token. */
export async function mcpStatusWith(mcpUrl: string, token: string): Promise<number> {
  const res = await fetch(mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'e2e', version: '0' } } }),
  });
  await res.body?.cancel();
  return res.status;
}
