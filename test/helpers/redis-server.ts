/**
 * A real `redis-server` (Debian package redis-server) for the Redis store tests, on 127.0.0.1 and
 * a free port, in a temporary directory. `stop({ save: true })` shuts down with SHUTDOWN SAVE and
 * `start()` again loads that dump, so a test can take Redis away and bring it back with its data.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, createConnection } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Why the Redis tests cannot run here, or undefined. Under CI the absence is a failure, not a skip. */
export function redisSkipReason(): string | undefined {
  if (redisServerAvailable()) return undefined;
  if (process.env.CI === 'true') throw new Error('redis-server is not installed, and CI=true: .ci/run installs the Debian package redis-server');
  return 'redis-server is not installed (Debian: apt-get install redis-server); skipping the Redis store tests';
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
  port: number;
  url: string;
  start(): Promise<void>;
  stop(opts?: { save?: boolean }): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

export async function startRedisServer(): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-oauth-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', 'dump.rdb'], {
        stdio: 'ignore',
      });
      const deadline = Date.now() + 10_000;
      for (;;) {
        const reply = await command(port, 'PING').catch(() => '');
        if (reply === '+PONG') return;
        if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}`);
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
