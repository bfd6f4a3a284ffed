/**
 * The four ways to reach the bench server, side by side, in one protocol era at a time:
 * - `floor`: no proxy; the SDK 1.x Client talks Streamable HTTP itself (in a child process for
 *   cold start and memory, in the bench process for latency and throughput);
 * - `mcp-oauth`: `mcp-oauth proxy bench`, its credential in a throwaway file store (the real token
 *   path runs; nothing to sign in);
 * - `gateway`: `mcp-oauth serve` (started once per era, bench/gateway.ts), same home and store; the
 *   client talks Streamable HTTP to BASE/servers/bench/mcp with the gateway secret, in the bench
 *   process like the floor's (no process of its own to start: the gateway is already running);
 * - `mcp-remote`: `mcp-remote URL --header "Authorization: Bearer …"`.
 * Both proxies are driven over stdio like a real host: in the 2025-11-25 era by the SDK 1.x Client
 * (initialize + session), in the 2026-07-28 era by the SDK v2 Client pinned to 2026-07-28
 * (`server/discover`, then stateless requests with the per-request `_meta` envelope). The floor's
 * and the gateway's HTTP clients are the same SDK Client of the era.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernHttpTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport as ModernStdioTransport } from '@modelcontextprotocol/client/stdio';
import { FileCredentialStore } from '../src/store/file-store.ts';
import { canonicalResourceUri } from '../src/oauth/canonical.ts';
import type { BenchGateway } from './gateway.ts';

export type TargetId = 'floor' | 'mcp-oauth' | 'gateway' | 'mcp-remote';
/** The protocol era a run measures: the bench server speaks only it (bench/server.ts `protocol`). */
export type Era = '2025-11-25' | '2026-07-28';
export const ERAS: readonly Era[] = ['2025-11-25', '2026-07-28'];
export const MODERN_ERA: Era = '2026-07-28';
export const TARGETS: readonly TargetId[] = ['floor', 'mcp-oauth', 'gateway', 'mcp-remote'];
export const TARGET_LABELS: Record<TargetId, string> = { floor: 'floor', 'mcp-oauth': 'mcp-oauth proxy', gateway: 'mcp-oauth gateway', 'mcp-remote': 'mcp-remote' };

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const MCP_REMOTE = join(repoRoot, 'node_modules', 'mcp-remote', 'dist', 'proxy.js');
const SERVER_NAME = 'bench';
/** Any issuer will do: the proxy finds the credential by server name and resource. */
const ISSUER = 'http://127.0.0.1:1';
const STDERR_KEEP = 8192;

/** One configured MCP server: its name in mcp-oauth's config and its URL. */
export interface BenchRoute {
  name: string;
  url: string;
}

export interface BenchSetup {
  url: string;
  era: Era;
  /** What mcp-oauth's config lists; the first is the one a connection uses unless it names another. */
  servers: BenchRoute[];
  /** mcp-oauth's home (config.toml and the file store). */
  oauthHome: string;
  /** The running `mcp-oauth serve` of this home, once started (bench/gateway.ts). */
  gateway?: BenchGateway;
  token: string;
  /** JS entry of the mcp-oauth CLI ($MCP_OAUTH_BENCH_CLI, default bin/mcp-oauth.js). */
  cli: string;
  oauthEnv: Record<string, string>;
  remoteEnv: Record<string, string>;
  floorEnv: Record<string, string>;
  cleanup(): Promise<void>;
}

/**
 * Throwaway homes: mcp-oauth's config + file store with a valid credential per server (default: one
 * server, `bench`, at `url`); mcp-remote's config dir.
 */
export async function prepareSetup(opts: { url: string; token: string; cli: string; era: Era; servers?: BenchRoute[] }): Promise<BenchSetup> {
  const servers = opts.servers ?? [{ name: SERVER_NAME, url: opts.url }];
  const root = await mkdtemp(join(tmpdir(), 'mcp-oauth-bench-'));
  const oauthHome = join(root, 'mcp-oauth');
  const codexHome = join(root, 'codex');
  await mkdir(oauthHome, { recursive: true, mode: 0o700 });
  await mkdir(codexHome, { recursive: true });
  const config = servers.map((s) => `[mcp_servers.${s.name}]\nurl = ${JSON.stringify(s.url)}\n`).join('\n');
  await writeFile(join(oauthHome, 'config.toml'), config, { mode: 0o600 });
  const now = Date.now();
  const store = new FileCredentialStore(oauthHome);
  for (const server of servers) {
    await store.put({
      key: { serverName: server.name, resource: canonicalResourceUri(server.url), issuer: ISSUER },
      accessToken: opts.token,
      refreshToken: 'unused',
      tokenType: 'Bearer',
      expiresAt: now + 24 * 3600_000,
      scopes: [],
      clientId: 'bench',
      tokenEndpoint: `${ISSUER}/token`,
      tokenEndpointAuthMethod: 'none',
      obtainedAt: now,
    });
  }
  // The same minimal environment for every child; nothing points at the real home.
  const base = { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: root, NO_COLOR: '1' };
  return {
    url: opts.url,
    era: opts.era,
    servers,
    oauthHome,
    token: opts.token,
    cli: opts.cli,
    oauthEnv: { ...base, MCP_OAUTH_HOME: oauthHome, MCP_OAUTH_STORE: 'file', CODEX_HOME: codexHome },
    remoteEnv: { ...base, MCP_REMOTE_CONFIG_DIR: join(root, 'mcp-auth') },
    floorEnv: { ...base, BENCH_URL: opts.url, BENCH_TOKEN: opts.token },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

export function proxyCommand(target: 'mcp-oauth' | 'mcp-remote', setup: BenchSetup, route: BenchRoute = setup.servers[0]): { args: string[]; env: Record<string, string> } {
  if (target === 'mcp-oauth') return { args: [setup.cli, 'proxy', route.name], env: setup.oauthEnv };
  // mcp-remote's own flags: a static header instead of its OAuth flow (README "Custom Headers").
  return { args: [MCP_REMOTE, route.url, '--header', `Authorization: Bearer ${setup.token}`], env: setup.remoteEnv };
}

/** Where an in-process HTTP client goes, with which bearer: the server itself, or the gateway. */
function httpEndpoint(target: TargetId, setup: BenchSetup, route: BenchRoute): { url: string; bearer: string; pid: number | undefined } {
  if (target === 'floor') return { url: route.url, bearer: setup.token, pid: undefined };
  if (!setup.gateway) throw new Error('the gateway is not running (startBenchGateway first)');
  return { url: setup.gateway.endpoint(route.name), bearer: setup.gateway.secret, pid: setup.gateway.pid };
}

export interface CloseOutcome {
  /** ms from closing stdin to the process exiting (SDK close: SIGTERM after 2 s, SIGKILL after 4 s). */
  exitMs: number;
  /** It exited on its own when stdin closed (within the SDK's 2 s grace). */
  exitedOnStdinEnd: boolean;
}

/** What the figures call on a client, SDK 1.x or v2 alike. */
export interface BenchClient {
  listTools(): Promise<unknown>;
  callTool(params: { name: string; arguments: Record<string, unknown> }): Promise<unknown>;
}

/** A live MCP session through one target. `pid` is the process measured for CPU and memory. */
export interface Connection {
  target: TargetId;
  client: BenchClient;
  pid: number | undefined;
  stderr(): string;
  close(): Promise<CloseOutcome>;
}

const clientInfo = { name: 'mcp-oauth-bench', version: '0.1.0' };
/** A target that cannot connect at all in an era is reported, not waited on. */
const CONNECT_TIMEOUT_MS = 30_000;

/** A proxy child over stdio, either era: closing stdin ends it; how long that takes is measured. */
function proxyConnection(target: TargetId, client: BenchClient & { close(): Promise<void> }, pid: number | null | undefined, stderr: () => string): Connection {
  return {
    target,
    client,
    pid: pid ?? undefined,
    stderr,
    async close() {
      const started = performance.now();
      await client.close();
      const exitMs = performance.now() - started;
      return { exitMs, exitedOnStdinEnd: exitMs < 1900 };
    },
  };
}

/** A client in this process (the floor, the gateway's clients): no process of its own to end. */
function inProcessConnection(target: TargetId, client: BenchClient, pid: number | undefined, end: () => Promise<void>): Connection {
  return {
    target,
    client,
    pid,
    stderr: () => '',
    async close() {
      const started = performance.now();
      await end();
      return { exitMs: performance.now() - started, exitedOnStdinEnd: true };
    },
  };
}

/**
 * Connects (spawn + initialize + initialized; 2026-07-28: spawn + server/discover); the floor and
 * the gateway's client connect in this process. `route` picks a configured server (default: the first).
 */
export async function connect(target: TargetId, setup: BenchSetup, route: BenchRoute = setup.servers[0]): Promise<Connection> {
  if (setup.era === MODERN_ERA) return connectModern(target, setup, route);
  const client = new Client(clientInfo);
  if (target === 'floor' || target === 'gateway') {
    const { url, bearer, pid } = httpEndpoint(target, setup, route);
    const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${bearer}` } } });
    try {
      await client.connect(transport);
    } catch (err) {
      await transport.close().catch(() => {});
      throw new Error(`${TARGET_LABELS[target]} did not initialize: ${(err as Error).message}\n${target === 'gateway' ? (setup.gateway?.stderr() ?? '') : ''}`);
    }
    return inProcessConnection(target, client, pid, async () => {
      await transport.terminateSession().catch(() => {});
      await client.close();
    });
  }
  const { args, env } = proxyCommand(target, setup, route);
  const transport = new StdioClientTransport({ command: process.execPath, args, env, stderr: 'pipe', cwd: repoRoot });
  let stderr = '';
  // Always drain stderr: a full pipe would stall a chatty child.
  transport.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-STDERR_KEEP)));
  try {
    await client.connect(transport);
  } catch (err) {
    await transport.close().catch(() => {});
    throw new Error(`${TARGET_LABELS[target]} did not initialize: ${(err as Error).message}\n${stderr}`);
  }
  return proxyConnection(target, client, transport.pid, () => stderr);
}

/** The 2026-07-28 era: the SDK v2 Client pinned to that revision (no fallback to initialize). */
async function connectModern(target: TargetId, setup: BenchSetup, route: BenchRoute): Promise<Connection> {
  const client = new ModernClient(clientInfo, { versionNegotiation: { mode: { pin: MODERN_ERA } } });
  const withDeadline = async (connecting: Promise<void>, what: string, onFail: () => Promise<unknown>) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([connecting, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS)))]);
    } catch (err) {
      await onFail().catch(() => {});
      throw new Error(`${what}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  };
  if (target === 'floor' || target === 'gateway') {
    const { url, bearer, pid } = httpEndpoint(target, setup, route);
    const transport = new ModernHttpTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${bearer}` } } });
    await withDeadline(client.connect(transport), TARGET_LABELS[target], () => client.close());
    return inProcessConnection(target, client, pid, () => client.close());
  }
  const { args, env } = proxyCommand(target, setup, route);
  const transport = new ModernStdioTransport({ command: process.execPath, args, env, stderr: 'pipe', cwd: repoRoot });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-STDERR_KEEP)));
  await withDeadline(client.connect(transport), TARGET_LABELS[target], () => transport.close()).catch((err: Error) => {
    throw new Error(`${err.message}\n${stderr}`);
  });
  return proxyConnection(target, client, transport.pid, () => stderr);
}

/**
 * The floor's cold start: a fresh Node process that loads the SDK client, initializes over
 * Streamable HTTP and lists tools, reporting each step on stdout; on stdin end it DELETEs its
 * session (as a well-behaved client would) and exits. Plain JS via --eval: no TypeScript loading.
 */
const FLOOR_CHILD = `
const [{ Client }, { StreamableHTTPClientTransport }] = await Promise.all([
  import('@modelcontextprotocol/sdk/client/index.js'),
  import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
]);
const transport = new StreamableHTTPClientTransport(new URL(process.env.BENCH_URL), {
  requestInit: { headers: { Authorization: 'Bearer ' + process.env.BENCH_TOKEN } },
});
const client = new Client({ name: 'mcp-oauth-bench-floor', version: '0.1.0' });
await client.connect(transport);
process.stdout.write('initialized\\n');
await client.listTools();
process.stdout.write('listed\\n');
process.stdin.resume();
process.stdin.once('end', async () => {
  await transport.terminateSession().catch(() => {});
  await client.close();
  process.exit(0);
});
`;

export interface FloorChild {
  pid: number | undefined;
  /** ms from spawn to each step. */
  initializeMs: number;
  toolsListMs: number;
  close(): Promise<CloseOutcome>;
}

/** The same in the 2026-07-28 era: SDK v2, pinned; no session, so nothing to end on exit. */
const MODERN_FLOOR_CHILD = `
const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
const transport = new StreamableHTTPClientTransport(new URL(process.env.BENCH_URL), {
  requestInit: { headers: { Authorization: 'Bearer ' + process.env.BENCH_TOKEN } },
});
const client = new Client({ name: 'mcp-oauth-bench-floor', version: '0.1.0' }, { versionNegotiation: { mode: { pin: '${MODERN_ERA}' } } });
await client.connect(transport);
process.stdout.write('initialized\\n');
await client.listTools();
process.stdout.write('listed\\n');
process.stdin.resume();
process.stdin.once('end', async () => {
  await client.close();
  process.exit(0);
});
`;

export async function spawnFloorChild(setup: BenchSetup): Promise<FloorChild> {
  const started = performance.now();
  const script = setup.era === MODERN_ERA ? MODERN_FLOOR_CHILD : FLOOR_CHILD;
  const child = spawn(process.execPath, ['--input-type=module', '--eval', script], { env: setup.floorEnv, cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-STDERR_KEEP)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const marks: Record<string, number> = {};
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      marks[line] = performance.now() - started;
      if (line === 'listed') resolve();
    });
    void exited.then(() => reject(new Error(`the floor client exited early:\n${stderr}`)));
  });
  return {
    pid: child.pid,
    initializeMs: marks.initialized,
    toolsListMs: marks.listed,
    async close() {
      const closing = performance.now();
      child.stdin.end();
      const killer = setTimeout(() => child.kill('SIGKILL'), 4000);
      await exited;
      clearTimeout(killer);
      const exitMs = performance.now() - closing;
      return { exitMs, exitedOnStdinEnd: exitMs < 3900 };
    },
  };
}
