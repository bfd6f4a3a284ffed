/**
 * A fleet of MCP clients, each calling the sandbox's `echo` tool in a loop at a steady pace: either
 * through its own `mcp-oauth proxy` child over stdio (like Codex or Claude Code start it), or over
 * Streamable HTTP to the gateway. Members can be killed (SIGKILL) and started again; calls in flight
 * at a kill are counted as cut, not failed.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallStats } from './counters.ts';

const STDERR_KEEP = 4096;
const clientInfo = { name: 'mcp-oauth-soak', version: '0.1.0' };

/** A connected client, and what to kill and close. */
export interface Dialed {
  client: Client;
  /** The proxy child's pid (stdio members). */
  pid?: number;
  stderr(): string;
  close(): Promise<void>;
}

export type Dialer = () => Promise<Dialed>;

export interface Member {
  id: number;
  /** Which simulated host it runs on (its MCP_OAUTH_HOME). */
  host: number;
  dial: Dialer;
  dialed?: Dialed;
  alive: boolean;
  /** Bumped by every kill: a call that started before it was cut by it. */
  generation: number;
  /** The transport closed while the soak did not kill it. */
  crashed: boolean;
}

/** `mcp-oauth proxy NAME` as a child, driven over stdio by the SDK 1.x client (initialize + session). */
export function stdioDialer(opts: { cli: string; serverName: string; env: Record<string, string>; signinTimeoutSeconds: number; onCrash?: () => void }): Dialer {
  return async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [opts.cli, 'proxy', opts.serverName, '--signin-timeout', String(opts.signinTimeoutSeconds)],
      env: opts.env,
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (d) => {
      stderr = (stderr + String(d)).slice(-STDERR_KEEP);
    });
    const client = new Client(clientInfo);
    await client.connect(transport);
    return { client, pid: transport.pid ?? undefined, stderr: () => stderr, close: () => client.close() };
  };
}

/** A Streamable HTTP client of the gateway, presenting the gateway secret. */
export function httpDialer(opts: { url: string; headers: Record<string, string> }): Dialer {
  return async () => {
    const transport = new StreamableHTTPClientTransport(new URL(opts.url), { requestInit: { headers: opts.headers } });
    const client = new Client(clientInfo);
    await client.connect(transport);
    return { client, stderr: () => '', close: () => client.close() };
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function textOf(result: unknown): string | undefined {
  const content = (result as { content?: Array<{ type?: string; text?: string }> }).content;
  return content?.[0]?.type === 'text' ? content[0].text : undefined;
}

export class Fleet {
  readonly members: Member[] = [];
  readonly stats: CallStats;
  readonly #intervalMs: number;
  readonly #callTimeoutMs: number;
  #running = false;
  #loops: Promise<void>[] = [];
  connectFailures: string[] = [];
  /** Restarts after a kill that failed to connect (and were tried again). */
  restartFailures: string[] = [];

  constructor(opts: { stats: CallStats; intervalMs: number; callTimeoutMs?: number }) {
    this.stats = opts.stats;
    this.#intervalMs = opts.intervalMs;
    this.#callTimeoutMs = opts.callTimeoutMs ?? 60_000;
  }

  add(dial: Dialer, host = 0): Member {
    const m: Member = { id: this.members.length, host, dial, alive: false, generation: 0, crashed: false };
    this.members.push(m);
    return m;
  }

  /** Connects every member, `concurrency` at a time (process starts are CPU-bound on 2 cores);
   * throws when none could connect (a run without clients would measure nothing). */
  async up(concurrency = 8): Promise<void> {
    const queue = [...this.members];
    await Promise.all(
      Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
        for (let m = queue.shift(); m; m = queue.shift()) await this.#connect(m);
      }),
    );
    if (this.members.length && !this.members.some((m) => m.alive)) {
      const stderr = this.members[0]?.dialed?.stderr() ?? '';
      throw new Error(`no client could connect: ${this.connectFailures[0] ?? 'unknown'}${stderr ? `; stderr: ${stderr.slice(-400)}` : ''}`);
    }
  }

  async #connect(m: Member, record = true): Promise<boolean> {
    try {
      const dialed = await m.dial();
      m.dialed = dialed;
      m.alive = true;
      const gen = m.generation;
      dialed.client.onclose = () => {
        if (m.generation === gen && this.#running && m.alive) {
          m.crashed = true;
          m.alive = false;
        }
      };
      return true;
    } catch (err) {
      if (record) this.connectFailures.push(`member ${m.id}: ${(err as Error).message.slice(0, 200)}`);
      else this.restartFailures.push(`member ${m.id}: ${(err as Error).message.slice(0, 200)}`);
      return false;
    }
  }

  /** Starts every member's call loop. */
  start(): void {
    this.#running = true;
    this.#loops = this.members.map((m) => this.#loop(m));
  }

  async #loop(m: Member): Promise<void> {
    await sleep(Math.random() * this.#intervalMs);
    for (let n = 0; this.#running; n++) {
      const dialed = m.dialed;
      if (!dialed || !m.alive) {
        await sleep(50);
        continue;
      }
      const gen = m.generation;
      const text = `m${m.id}-${n}`;
      const started = performance.now();
      try {
        const result = await dialed.client.callTool({ name: 'echo', arguments: { text } }, undefined, { timeout: this.#callTimeoutMs });
        const got = textOf(result);
        if ((result as { isError?: boolean }).isError || got !== text) throw new Error(`the tool answered ${JSON.stringify(got ?? result).slice(0, 200)}`);
        this.stats.ok(m.id, performance.now() - started, Date.now());
      } catch (err) {
        if (m.generation !== gen) this.stats.cutByKill();
        else if (this.#running) this.stats.failed(m.id, (err as Error).message ?? String(err), Date.now());
      }
      const wait = this.#intervalMs - (performance.now() - started);
      if (wait > 0) await sleep(wait);
    }
  }

  pids(): number[] {
    return this.members.filter((m) => m.alive && m.dialed?.pid).map((m) => m.dialed!.pid!);
  }

  byPid(pid: number): Member | undefined {
    return this.members.find((m) => m.alive && m.dialed?.pid === pid);
  }

  /** kill -9 of the member's proxy; its calls in flight count as cut. */
  async kill(m: Member): Promise<void> {
    const pid = m.dialed?.pid;
    m.generation += 1;
    m.alive = false;
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const dialed = m.dialed;
    m.dialed = undefined;
    await dialed?.close().catch(() => {});
  }

  /** Starts the member's proxy again (a client restarting its server), retrying for up to `forMs`. */
  async respawn(m: Member, forMs = 60_000): Promise<void> {
    const deadline = Date.now() + forMs;
    while (!(await this.#connect(m, false)) && Date.now() < deadline && this.#running) await sleep(500);
  }

  crashes(): Array<{ member: number; stderr: string }> {
    return this.members.filter((m) => m.crashed).map((m) => ({ member: m.id, stderr: m.dialed?.stderr().slice(-600) ?? '' }));
  }

  /** Stops the loops and closes every client (proxies exit on stdin EOF); calls still in flight are not counted. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.members.map((m) => m.dialed?.close().catch(() => {})));
    await Promise.all(this.#loops);
  }
}
