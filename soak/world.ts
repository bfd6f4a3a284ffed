/**
 * One run's world: the sandbox (oidc-provider with refresh-token rotation and reuse detection,
 * short access tokens; the MCP server) with the fault layer in front of its token endpoint, the
 * simulated hosts (an MCP_OAUTH_HOME each, with its config), one headless sign-in, and a view of
 * the shared credential (file store of host 0, or Redis).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { FileCredentialStore } from '../src/store/file-store.ts';
import type { Credential, CredentialStore } from '../src/types.ts';
import { startFaultServer, type FaultServer } from './fault-server.ts';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SERVER_NAME = 'soak';
const BROWSER_SCRIPT = join(repoRoot, 'soak', 'browser.ts');

export interface WorldOptions {
  ttlSeconds: number;
  hosts: number;
  store: 'file' | 'redis';
  /** store 'redis': URL and base64 key (every host gets them through the environment). */
  redis?: { url: string; keyB64: string };
  /** More environment for every host (MCP_OAUTH_HTTP_TIMEOUT_MS, MCP_OAUTH_REDIS_LEASE_MS). */
  extraEnv?: Record<string, string>;
  cli: string;
}

export interface CounterSnapshot {
  refreshes: number;
  reuseDetections: number;
  codeExchanges: number;
  maxConcurrentTokenRequests: number;
}

export interface World {
  sandbox: Sandbox;
  fault: FaultServer;
  homes: string[];
  envs: Record<string, string>[];
  ttlMs: number;
  /** Headless `mcp-oauth login soak` on a host; throws with its output when it fails. */
  login(host?: number): Promise<void>;
  /** The shared credential as stored (host 0's store), or undefined (none, or the store is down). */
  credential(): Promise<Credential | undefined>;
  /** Browser launches by the fleet (each one a sign-in the fleet needed). */
  browserLaunches(): Promise<number>;
  counters(): CounterSnapshot;
  close(): Promise<void>;
}

function runCli(cli: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

export async function createWorld(opts: WorldOptions): Promise<World> {
  const fault = await startFaultServer();
  let sandbox: Sandbox | undefined;
  const root = await mkdtemp(join(tmpdir(), 'mcp-oauth-soak-'));
  let redisStore: (CredentialStore & { close(): Promise<void> }) | undefined;
  try {
    sandbox = await startSandbox({ accessTokenTtlSeconds: opts.ttlSeconds, tokenEndpointUrl: fault.tokenUrl, dpop: 'off', deviceFlow: false });
    fault.setTarget(`${sandbox.issuer}/token`);
    const browserLog = join(root, 'browser.log');
    const codex = join(root, 'codex');
    await mkdir(codex, { recursive: true });
    const homes: string[] = [];
    const envs: Record<string, string>[] = [];
    for (let h = 0; h < opts.hosts; h++) {
      const home = join(root, `host${h}`, 'mcp-oauth');
      await mkdir(home, { recursive: true, mode: 0o700 });
      await writeFile(join(home, 'config.toml'), `[mcp_servers.${SERVER_NAME}]\nurl = ${JSON.stringify(sandbox.mcpUrl)}\n`, { mode: 0o600 });
      homes.push(home);
      envs.push({
        PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
        HOME: join(root, `host${h}`),
        MCP_OAUTH_HOME: home,
        MCP_OAUTH_STORE: opts.store,
        CODEX_HOME: codex,
        NO_COLOR: '1',
        BROWSER: `${process.execPath} ${BROWSER_SCRIPT}`,
        SOAK_BROWSER_MODE: 'refuse',
        SOAK_BROWSER_LOG: browserLog,
        ...(opts.redis ? { MCP_OAUTH_REDIS_URL: opts.redis.url, MCP_OAUTH_REDIS_KEY: opts.redis.keyB64 } : {}),
        ...opts.extraEnv,
      });
    }
    if (opts.redis) {
      const [{ openRedisStore }, { parseRedisKey }] = await Promise.all([import('../src/store/redis-store.ts'), import('../src/store/redis-key.ts')]);
      redisStore = await openRedisStore({ url: opts.redis.url, key: parseRedisKey(opts.redis.keyB64, 'the soak') });
    }
    const store: CredentialStore = redisStore ?? new FileCredentialStore(homes[0]!);
    const sb = sandbox;
    return {
      sandbox: sb,
      fault,
      homes,
      envs,
      ttlMs: opts.ttlSeconds * 1000,
      async login(host = 0) {
        const r = await runCli(opts.cli, ['login', SERVER_NAME], { ...envs[host]!, SOAK_BROWSER_MODE: 'follow', SOAK_BROWSER_LOG: join(root, 'login-browser.log') });
        if (r.code !== 0) throw new Error(`mcp-oauth login ${SERVER_NAME} exited ${r.code}: ${r.out.slice(-800)}`);
      },
      async credential() {
        try {
          return (await store.list()).find((c) => c.key.serverName === SERVER_NAME);
        } catch {
          return undefined;
        }
      },
      async browserLaunches() {
        const text = await readFile(browserLog, 'utf8').catch(() => '');
        return text.split('\n').filter(Boolean).length;
      },
      counters() {
        const c = sb.counters;
        return {
          refreshes: c.tokenRequests.refresh_token ?? 0,
          reuseDetections: c.refreshReuseDetected,
          codeExchanges: c.tokenRequests.authorization_code ?? 0,
          maxConcurrentTokenRequests: c.tokenRequestLog.reduce((m, e) => Math.max(m, e.concurrent), 0),
        };
      },
      async close() {
        await redisStore?.close().catch(() => {});
        await fault.close();
        await sb.close();
        await rm(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      },
    };
  } catch (err) {
    await redisStore?.close().catch(() => {});
    await fault.close();
    await sandbox?.close();
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}
