/**
 * `npm run bench`: the stdio proxy against no proxy (the floor) and mcp-remote, side by side in one
 * run, against a local bearer-protected Streamable HTTP MCP server. Prints one table, writes
 * bench/results/latest.json (+ .md). Always exits 0 unless the harness itself breaks: a missed
 * target is a figure, not a failure.
 *
 *   node bench/run.ts [cold-start] [memory] [latency] [throughput] [big]   (default: all)
 *
 * Environment: BENCH_COLD_RUNS (10), BENCH_CALLS (2000), BENCH_THROUGHPUT_CALLS (3000),
 * BENCH_CONCURRENCY (32), BENCH_BIG_RUNS (50), BENCH_BIG_KB (256), BENCH_IDLE_MS (2000),
 * BENCH_WARMUP (200), BENCH_ROUNDS (8), BENCH_OUT (bench/results/latest.json),
 * MCP_OAUTH_BENCH_CLI (the mcp-oauth JS entry; default bin/mcp-oauth.js).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { measureBigResult, type BigResult } from './big-result.ts';
import { callEcho, type ByTarget } from './calls.ts';
import { measureColdStart, type ColdStartSummary } from './cold-start.ts';
import { measureLatency, type LatencyResult } from './latency.ts';
import { measureIdleRss } from './memory.ts';
import { evaluateTargets, markdownTable, rows, textTable, type TargetFigures } from './report.ts';
import { startBenchServerProcess } from './server.ts';
import { envCount } from './stats.ts';
import { measureThroughput, type ThroughputResult } from './throughput.ts';
import { connect, prepareSetup, repoRoot, spawnFloorChild, TARGETS, type Connection, type TargetId } from './targets.ts';

const FIGURE_SETS = ['cold-start', 'memory', 'latency', 'throughput', 'big'] as const;
type FigureSet = (typeof FIGURE_SETS)[number];
const DRIVER = 'SDK 1.x Client for all three (StdioClientTransport for the proxies, StreamableHTTPClientTransport in-process for the floor)';

export interface BenchConfig {
  coldRuns: number;
  calls: number;
  throughputCalls: number;
  concurrency: number;
  bigRuns: number;
  bigKb: number;
  idleMs: number;
  warmup: number;
  rounds: number;
  out: string;
  cli: string;
  sets: FigureSet[];
}

export function configFrom(env: NodeJS.ProcessEnv, argv: string[]): BenchConfig {
  const unknown = argv.filter((a) => !(FIGURE_SETS as readonly string[]).includes(a));
  if (unknown.length) throw new Error(`unknown figure set ${unknown.join(', ')}; choose from ${FIGURE_SETS.join(', ')}`);
  return {
    coldRuns: envCount(env, 'BENCH_COLD_RUNS', 10),
    calls: envCount(env, 'BENCH_CALLS', 2000),
    throughputCalls: envCount(env, 'BENCH_THROUGHPUT_CALLS', 3000),
    concurrency: envCount(env, 'BENCH_CONCURRENCY', 32),
    bigRuns: envCount(env, 'BENCH_BIG_RUNS', 50),
    bigKb: envCount(env, 'BENCH_BIG_KB', 256),
    idleMs: envCount(env, 'BENCH_IDLE_MS', 2000),
    warmup: envCount(env, 'BENCH_WARMUP', 200),
    rounds: Math.max(1, envCount(env, 'BENCH_ROUNDS', 8)),
    out: resolve(env.BENCH_OUT || join(repoRoot, 'bench', 'results', 'latest.json')),
    cli: resolve(env.MCP_OAUTH_BENCH_CLI || join(repoRoot, 'bin', 'mcp-oauth.js')),
    sets: argv.length ? (argv as FigureSet[]) : [...FIGURE_SETS],
  };
}

async function packageVersion(name: string): Promise<string | undefined> {
  try {
    return JSON.parse(await readFile(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

interface Measured {
  cold?: Record<TargetId, ColdStartSummary>;
  idle?: ByTarget<number | null>;
  latency?: ByTarget<LatencyResult>;
  throughput?: ByTarget<ThroughputResult>;
  big?: ByTarget<BigResult>;
}

async function measureWarm(config: BenchConfig, setup: Awaited<ReturnType<typeof prepareSetup>>, serverPid: number | undefined, measured: Measured, log: (l: string) => void): Promise<void> {
  const conns: Connection[] = [];
  try {
    for (const target of TARGETS) conns.push(await connect(target, setup));
    for (const conn of conns) await conn.client.listTools();
    const has = (s: FigureSet) => config.sets.includes(s);
    if (has('memory')) {
      log(`memory: ${config.idleMs} ms idle`);
      const floorChild = await spawnFloorChild(setup);
      try {
        const pids: ByTarget<number | undefined> = { floor: floorChild.pid };
        for (const conn of conns) if (conn.pid) pids[conn.target] = conn.pid;
        measured.idle = await measureIdleRss(pids, config.idleMs);
      } finally {
        await floorChild.close();
      }
    }
    if (has('latency')) {
      log(`latency: ${config.calls} sequential calls each (+${config.warmup} warm-up)`);
      measured.latency = await measureLatency(conns, config.calls, config.rounds, config.warmup, serverPid);
    }
    if (has('throughput')) {
      log(`throughput: ${config.throughputCalls} calls each, ${config.concurrency} in flight`);
      measured.throughput = await measureThroughput(conns, config.throughputCalls, config.concurrency, config.rounds, config.warmup, serverPid);
    }
    if (has('big')) {
      log(`big result: ${config.bigRuns} × ${config.bigKb} KB each`);
      measured.big = await measureBigResult(conns, config.bigRuns, config.bigKb, config.rounds);
    }
  } catch (err) {
    for (const conn of conns) if (conn.stderr()) log(`--- ${conn.target} stderr (tail) ---\n${conn.stderr()}`);
    throw err;
  } finally {
    for (const conn of conns) await conn.close().catch(() => {});
  }
}

/** The server's own first requests are slow (JIT, lazy imports): no target should pay for them. */
async function warmUpServer(setup: Awaited<ReturnType<typeof prepareSetup>>, calls: number): Promise<void> {
  for (let session = 0; session < 2; session++) {
    const conn = await connect('floor', setup);
    try {
      await conn.client.listTools();
      for (let i = 0; i < calls; i++) await callEcho(conn.client);
    } finally {
      await conn.close();
    }
  }
}

function figuresOf(m: Measured): Record<TargetId, TargetFigures> {
  const floorP50 = m.latency?.floor?.p50Ms ?? null;
  const one = (t: TargetId): TargetFigures => {
    const p50 = m.latency?.[t]?.p50Ms ?? null;
    return {
      coldInitializeMs: m.cold?.[t].initializeMs ?? null,
      coldToolsListMs: m.cold?.[t].toolsListMs ?? null,
      latencyP50Ms: p50,
      latencyP99Ms: m.latency?.[t]?.p99Ms ?? null,
      addedLatencyP50Ms: t === 'floor' || p50 === null || floorP50 === null ? null : p50 - floorP50,
      throughputCallsPerSecond: m.throughput?.[t]?.callsPerSecond ?? null,
      bigResultMs: m.big?.[t]?.medianMs ?? null,
      cpuMsPerCall: m.latency?.[t]?.cpuMsPerCall ?? null,
      driverCpuMsPerCall: m.latency?.[t]?.driverCpuMsPerCall ?? null,
      serverCpuMsPerCall: m.latency?.[t]?.serverCpuMsPerCall ?? null,
      cpuMsPerCallUnderLoad: m.throughput?.[t]?.cpuMsPerCall ?? null,
      idleRssMiB: m.idle?.[t] ?? null,
      peakRssMiB: m.throughput?.[t]?.peakRssMiB ?? null,
      sessionsPerStart: m.cold?.[t].sessionsPerStart ?? null,
      deletesPerExit: m.cold?.[t].deletesPerExit ?? null,
      extraRequestsPerStart: m.cold?.[t].otherRequestsPerStart ?? null,
      connectionsPerStart: m.cold?.[t].connectionsPerStart ?? null,
      exitMs: m.cold?.[t].exitMs ?? null,
    };
  };
  return { floor: one('floor'), 'mcp-oauth': one('mcp-oauth'), 'mcp-remote': one('mcp-remote') };
}

export async function runBench(config: BenchConfig, log: (line: string) => void = (l) => process.stderr.write(`bench: ${l}\n`)): Promise<{ table: string; json: Record<string, unknown> }> {
  const startedAt = new Date();
  const loadAverageAtStart = os.loadavg();
  const token = randomBytes(32).toString('base64url');
  const server = await startBenchServerProcess({ token });
  const setup = await prepareSetup({ url: server.url, token, cli: config.cli });
  const measured: Measured = {};
  try {
    log(`server ${server.url}; mcp-oauth CLI ${config.cli}`);
    await warmUpServer(setup, config.warmup);
    if (config.sets.includes('cold-start')) measured.cold = await measureColdStart(setup, server, config.coldRuns, log);
    if (config.sets.some((s) => s !== 'cold-start')) await measureWarm(config, setup, server.pid, measured, log);
  } finally {
    await setup.cleanup();
    await server.close();
  }
  const figures = figuresOf(measured);
  const checks = evaluateTargets(figures);
  const table = rows({ calls: config.calls, concurrency: config.concurrency, bigKb: config.bigKb, coldRuns: config.coldRuns });
  const cpus = os.cpus();
  const machine = {
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    totalMemMiB: Math.round(os.totalmem() / 2 ** 20),
    loadAverageAtStart,
    loadAverageAtEnd: os.loadavg(),
  };
  const versions = { mcpRemote: await packageVersion('mcp-remote'), sdk: await packageVersion('@modelcontextprotocol/sdk') };
  const header = [
    `mcp-oauth proxy vs mcp-remote vs no proxy — ${startedAt.toISOString()}`,
    `node ${machine.node}, ${machine.cpus} × ${machine.cpuModel ?? 'cpu'}, load average at start ${loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}`,
    `driver: ${DRIVER}; mcp-remote ${versions.mcpRemote ?? '?'}, SDK ${versions.sdk ?? '?'}`,
  ].join('\n');
  const text = `${header}\n\n${textTable(figures, table, checks)}\n`;
  const json = {
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    machine,
    versions,
    driver: DRIVER,
    config: { ...config, out: undefined },
    figures,
    targets: checks,
    raw: measured,
  };
  await mkdir(dirname(config.out), { recursive: true });
  await writeFile(config.out, JSON.stringify(json, null, 2) + '\n');
  await writeFile(config.out.replace(/\.json$/, '') + '.md', `${header.split('\n').map((l) => `${l}  `).join('\n')}\n\n${markdownTable(figures, table, checks)}\n`);
  return { table: text, json };
}

if (import.meta.main) {
  const config = configFrom(process.env, process.argv.slice(2));
  const { table } = await runBench(config);
  process.stdout.write(table);
  process.stderr.write(`bench: wrote ${config.out}\n`);
}
