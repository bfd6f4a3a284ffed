/**
 * A real Redis-protocol server for the Redis store tests: Debian's `redis-server` or
 * `valkey-server` (bookworm-backports), on 127.0.0.1 and a free port, in a temporary directory.
 * `stop({ save: true })` shuts down with SHUTDOWN SAVE and `start()` again loads that dump, so a
 * test can take the server away and bring it back with its data.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, createConnection } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The server binaries the store is tested against; .ci/run installs both. */
export const REDIS_SERVER_BINARIES = ['redis-server', 'valkey-server'] as const;
export type RedisServerBinary = (typeof REDIS_SERVER_BINARIES)[number];

const PACKAGES: Record<RedisServerBinary, string> = {
  'redis-server': 'apt-get install redis-server',
  'valkey-server': 'apt-get install valkey-server (bookworm: -t bookworm-backports)',
};

/** `7.0.15` from `redis-server --version` ("Redis server v=7.0.15 …"), or undefined when the binary is missing. */
export function serverVersion(binary: RedisServerBinary): string | undefined {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return /\bv=(\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
}

export interface RedisServerKind {
  binary: RedisServerBinary;
  /** `redis-server 7.0.15`, for test names. */
  label: string;
  /** Why it cannot run here (for `describe(..., { skip })`), or undefined. */
  skip: string | undefined;
}

/**
 * Every server binary with its version, or the reason it is skipped. A missing binary is a skip
 * on a developer machine, but under CI=true (where .ci/run installs both) it throws: the coverage
 * cannot silently disappear from the pipeline.
 */
export function redisServerKinds(): RedisServerKind[] {
  return REDIS_SERVER_BINARIES.map((binary) => {
    const version = serverVersion(binary);
    if (version) return { binary, label: `${binary} ${version}`, skip: undefined };
    if (process.env.CI === 'true') throw new Error(`${binary} is not installed, and CI=true: .ci/run installs it (${PACKAGES[binary]})`);
    return { binary, label: binary, skip: `${binary} is not installed (Debian: ${PACKAGES[binary]}); skipping its Redis store tests` };
  });
}

/** The first server binary installed here (tests that need one server, not each). */
export function anyRedisServer(): { binary: RedisServerBinary; skip: undefined } | { binary: undefined; skip: string } {
  const kinds = redisServerKinds();
  const found = kinds.find((k) => !k.skip);
  return found ? { binary: found.binary, skip: undefined } : { binary: undefined, skip: kinds.map((k) => k.skip).join('; ') };
}

/** Why no Redis store test can run here (neither binary), or undefined. Throws under CI=true, as above. */
export function redisSkipReason(): string | undefined {
  return anyRedisServer().skip;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Sends one inline command and resolves with the first reply line (no client library needed). */
function command(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let data = '';
    sock.on('data', (d) => {
      data += d.toString();
      if (data.includes('\r\n')) {
        sock.end();
        resolve(data.split('\r\n')[0] ?? '');
      }
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(data));
    sock.write(`${line}\r\n`);
  });
}

export interface RedisServer {
  binary: RedisServerBinary;
  port: number;
  url: string;
  start(): Promise<void>;
  stop(opts?: { save?: boolean }): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

export async function startRedisServer(binary: RedisServerBinary = 'redis-server'): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-oauth-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    binary,
    port,
    url: `redis://127.0.0.1:${port}/0`,
    async start() {
      child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', 'dump.rdb'], {
        stdio: 'ignore',
      });
      const deadline = Date.now() + 10_000;
      for (;;) {
        const reply = await command(port, 'PING').catch(() => '');
        if (reply === '+PONG') return;
        if (Date.now() > deadline) throw new Error(`${binary} did not start on port ${port}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop(opts = {}) {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      if (opts.save) await command(port, 'SHUTDOWN SAVE').catch(() => '');
      else c.kill('SIGTERM');
      await exited;
      child = undefined;
    },
    async close() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
