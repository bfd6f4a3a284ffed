/**
 * `npm run bench`: the stdio proxy and the gateway (`mcp-oauth serve`) against no proxy (the
 * floor) and mcp-remote, side by side in one run, against a local bearer-protected Streamable HTTP
 * MCP server, once per protocol era: a 2025-11-25-only server (initialize + sessions) and a strict
 * 2026-07-28-only server (stateless, SEP-2243 headers enforced). Prints per era one table of the
 * four targets and one of the fleet (many client connections: one gateway versus a proxy process
 * each, bench/fleet.ts), writes bench/results/latest.json (+ .md). Always exits 0 unless the
 * harness itself breaks: a missed target, or a target that cannot speak an era, is a figure, not a
 * failure.
 *
 *   node bench/run.ts [cold-start] [memory] [latency] [throughput] [big] [fleet]   (default: all)
 *
 * Environment: BENCH_ERAS (2025-11-25,2026-07-28), BENCH_COLD_RUNS (10), BENCH_CALLS (2000), BENCH_THROUGHPUT_CALLS (3000),
 * BENCH_CONCURRENCY (32), BENCH_BIG_RUNS (50), BENCH_BIG_KB (256), BENCH_IDLE_MS (2000),
 * BENCH_WARMUP (200), BENCH_ROUNDS (8), BENCH_FLEET_CLIENTS (3), BENCH_FLEET_SERVERS (10),
 * BENCH_FLEET_CALLS (3), BENCH_FLEET_REMOTE (1; 0 leaves mcp-remote out of the fleet),
 * BENCH_OUT (bench/results/latest.json), MCP_OAUTH_BENCH_CLI (the mcp-oauth JS entry; default bin/mcp-oauth.js).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { measureBigResult, type BigResult } from './big-result.ts';
import { callEcho, type ByTarget } from './calls.ts';
import { measureColdStart, type ColdStartSummary } from './cold-start.ts';
import { fleetHeading, fleetMarkdownTable, fleetTextTable, measureFleet, type FleetConfig, type FleetResult } from './fleet.ts';
import { startBenchGateway } from './gateway.ts';
import { measureLatency, type LatencyResult } from './latency.ts';
import { measureIdleRss } from './memory.ts';
import { evaluateTargets, markdownTable, rows, textTable, type TargetCheck, type TargetFigures } from './report.ts';
import { startBenchServerProcess, type BenchServer } from './server.ts';
import { envCount } from './stats.ts';
import { measureThroughput, type ThroughputResult } from './throughput.ts';
import { connect, ERAS, prepareSetup, repoRoot, spawnFloorChild, TARGETS, TARGET_LABELS, type Connection, type Era, type TargetId } from './targets.ts';

const FIGURE_SETS = ['cold-start', 'memory', 'latency', 'throughput', 'big', 'fleet'] as const;
type FigureSet = (typeof FIGURE_SETS)[number];
const DRIVERS: Record<Era, string> = {
  '2025-11-25': 'SDK 1.x Client for all four (StdioClientTransport for the proxies, StreamableHTTPClientTransport in-process for the floor and the gateway)',
  '2026-07-28': 'SDK v2 Client pinned to 2026-07-28 for all four (StdioClientTransport for the proxies, StreamableHTTPClientTransport in-process for the floor and the gateway)',
};
/** What the bench server speaks in each era's run: only that era (bench/server.ts). */
const SERVERS: Record<Era, string> = {
  '2025-11-25': 'SDK 1.x McpServer, stateful sessions, 2025-11-25 only',
  '2026-07-28': 'SDK v2 createMcpHandler, stateless, 2026-07-28 only (SEP-2243 headers enforced)',
};

export interface BenchConfig {
  eras: Era[];
  coldRuns: number;
  calls: number;
  throughputCalls: number;
  concurrency: number;
  bigRuns: number;
  bigKb: number;
  idleMs: number;
  warmup: number;
  rounds: number;
  fleet: FleetConfig;
  out: string;
  cli: string;
  sets: FigureSet[];
}

export function configFrom(env: NodeJS.ProcessEnv, argv: string[]): BenchConfig {
  const unknown = argv.filter((a) => !(FIGURE_SETS as readonly string[]).includes(a));
  if (unknown.length) throw new Error(`unknown figure set ${unknown.join(', ')}; choose from ${FIGURE_SETS.join(', ')}`);
  const eras = (env.BENCH_ERAS || ERAS.join(',')).split(',').map((e) => e.trim()).filter(Boolean);
  const unknownEras = eras.filter((e) => !(ERAS as readonly string[]).includes(e));
  if (unknownEras.length || !eras.length) throw new Error(`BENCH_ERAS takes a comma list of ${ERAS.join(', ')}; got "${env.BENCH_ERAS}"`);
  return {
    eras: eras as Era[],
    coldRuns: envCount(env, 'BENCH_COLD_RUNS', 10),
    calls: envCount(env, 'BENCH_CALLS', 2000),
    throughputCalls: envCount(env, 'BENCH_THROUGHPUT_CALLS', 3000),
    concurrency: envCount(env, 'BENCH_CONCURRENCY', 32),
    bigRuns: envCount(env, 'BENCH_BIG_RUNS', 50),
    bigKb: envCount(env, 'BENCH_BIG_KB', 256),
    idleMs: envCount(env, 'BENCH_IDLE_MS', 2000),
    warmup: envCount(env, 'BENCH_WARMUP', 200),
    rounds: Math.max(1, envCount(env, 'BENCH_ROUNDS', 8)),
    fleet: {
      clients: Math.max(1, envCount(env, 'BENCH_FLEET_CLIENTS', 3)),
      servers: Math.max(1, envCount(env, 'BENCH_FLEET_SERVERS', 10)),
      calls: envCount(env, 'BENCH_FLEET_CALLS', 3),
      idleMs: envCount(env, 'BENCH_IDLE_MS', 2000),
      remote: envCount(env, 'BENCH_FLEET_REMOTE', 1) > 0,
    },
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
  cold?: Partial<Record<TargetId, ColdStartSummary>>;
  idle?: ByTarget<number | null>;
  latency?: ByTarget<LatencyResult>;
  throughput?: ByTarget<ThroughputResult>;
  big?: ByTarget<BigResult>;
}

type Unavailable = Partial<Record<TargetId, string>>;

async function measureWarm(config: BenchConfig, setup: Awaited<ReturnType<typeof prepareSetup>>, serverPid: number | undefined, measured: Measured, unavailable: Unavailable, log: (l: string) => void): Promise<void> {
  const conns: Connection[] = [];
  try {
    for (const target of TARGETS) {
      if (unavailable[target]) continue;
      try {
        conns.push(await connect(target, setup));
      } catch (err) {
        unavailable[target] = (err as Error).message.split('\n')[0];
        log(`${target} unavailable in ${setup.era}: ${unavailable[target]}`);
      }
    }
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
    // The gateway's client is in this process and closing it ends no process.
    const exitMs = t === 'gateway' ? null : (m.cold?.[t]?.exitMs ?? null);
    const p50 = m.latency?.[t]?.p50Ms ?? null;
    return {
      coldInitializeMs: m.cold?.[t]?.initializeMs ?? null,
      coldToolsListMs: m.cold?.[t]?.toolsListMs ?? null,
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
      sessionsPerStart: m.cold?.[t]?.sessionsPerStart ?? null,
      deletesPerExit: m.cold?.[t]?.deletesPerExit ?? null,
      extraRequestsPerStart: m.cold?.[t]?.otherRequestsPerStart ?? null,
      rejectedPerStart: m.cold?.[t]?.rejectedPerStart ?? null,
      connectionsPerStart: m.cold?.[t]?.connectionsPerStart ?? null,
      exitMs,
    };
  };
  return Object.fromEntries(TARGETS.map((t) => [t, one(t)])) as Record<TargetId, TargetFigures>;
}

export interface EraRun {
  era: Era;
  server: string;
  driver: string;
  figures: Record<TargetId, TargetFigures>;
  targets: TargetCheck[];
  /** Targets that could not connect in this era, with why (their figures are n/a). */
  unavailable: Unavailable;
  raw: Measured;
  /** Many client connections: one gateway versus a process each (bench/fleet.ts). */
  fleet?: FleetResult;
}

async function runEra(config: BenchConfig, era: Era, log: (line: string) => void): Promise<EraRun> {
  const token = randomBytes(32).toString('base64url');
  const server: BenchServer = await startBenchServerProcess({ token, protocol: era });
  const setup = await prepareSetup({ url: server.url, token, cli: config.cli, era });
  const measured: Measured = {};
  const unavailable: Unavailable = {};
  let fleet: FleetResult | undefined;
  try {
    log(`${era}: server ${server.url}; mcp-oauth CLI ${config.cli}`);
    await warmUpServer(setup, config.warmup);
    const perTarget = config.sets.filter((s) => s !== 'fleet');
    // Already running before its first client, as a user's gateway is: no target pays for its start.
    if (perTarget.length) {
      try {
        setup.gateway = await startBenchGateway(setup);
      } catch (err) {
        unavailable.gateway = (err as Error).message.split('\n')[0];
        log(`${era}: gateway unavailable: ${unavailable.gateway}`);
      }
    }
    if (perTarget.includes('cold-start')) {
      const cold = await measureColdStart(setup, server, config.coldRuns, (l) => log(`${era}: ${l}`));
      measured.cold = cold.summaries;
      Object.assign(unavailable, cold.unavailable);
    }
    if (perTarget.some((s) => s !== 'cold-start')) await measureWarm(config, setup, server.pid, measured, unavailable, (l) => log(`${era}: ${l}`));
    await setup.gateway?.close();
    setup.gateway = undefined;
    if (config.sets.includes('fleet')) {
      fleet = await measureFleet({
        serverUrl: server.url,
        token,
        cli: config.cli,
        era,
        config: config.fleet,
        skip: unavailable['mcp-remote'] ? { 'mcp-remote': unavailable['mcp-remote'] } : {},
        log: (l) => log(`${era}: ${l}`),
      });
    }
  } finally {
    await setup.gateway?.close();
    await setup.cleanup();
    await server.close();
  }
  const figures = figuresOf(measured);
  const targets = [...evaluateTargets(figures), ...(fleet ? [fleet.check] : [])];
  return { era, server: SERVERS[era], driver: DRIVERS[era], figures, targets, unavailable, raw: measured, fleet };
}

function eraHeading(run: EraRun): string[] {
  return [
    `MCP ${run.era} — server: ${run.server}`,
    `driver: ${run.driver}`,
    ...Object.entries(run.unavailable).map(([t, why]) => `${TARGET_LABELS[t as TargetId]}: n/a in this era, it could not connect (${why.replace(/^[^:]+: /, '')})`),
  ];
}

export async function runBench(config: BenchConfig, log: (line: string) => void = (l) => process.stderr.write(`bench: ${l}\n`)): Promise<{ table: string; json: Record<string, unknown> }> {
  const startedAt = new Date();
  const loadAverageAtStart = os.loadavg();
  const runs: EraRun[] = [];
  for (const era of config.eras) runs.push(await runEra(config, era, log));
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
  const versions = {
    mcpRemote: await packageVersion('mcp-remote'),
    sdk: await packageVersion('@modelcontextprotocol/sdk'),
    sdkV2Client: await packageVersion('@modelcontextprotocol/client'),
    sdkV2Server: await packageVersion('@modelcontextprotocol/server'),
  };
  const header = [
    `mcp-oauth proxy and gateway vs mcp-remote vs no proxy — ${startedAt.toISOString()}`,
    `node ${machine.node}, ${machine.cpus} × ${machine.cpuModel ?? 'cpu'}, load average at start ${loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}`,
    `mcp-remote ${versions.mcpRemote ?? '?'}, SDK ${versions.sdk ?? '?'}, SDK v2 client ${versions.sdkV2Client ?? '?'} / server ${versions.sdkV2Server ?? '?'}`,
  ].join('\n');
  const fleetText = (r: EraRun) => (r.fleet ? `\n\nMCP ${r.era}, many clients: ${fleetHeading(r.fleet).join('\n')}\n\n${fleetTextTable(r.fleet)}` : '');
  const fleetMarkdown = (r: EraRun) => (r.fleet ? `\n\n#### MCP ${r.era}: many client connections\n\n${fleetHeading(r.fleet).map((l) => `${l}  `).join('\n')}\n\n${fleetMarkdownTable(r.fleet)}` : '');
  // `node bench/run.ts fleet` alone: no table of n/a.
  const perTarget = config.sets.some((s) => s !== 'fleet');
  const mainText = (r: EraRun) => (perTarget ? `\n\n${textTable(r.figures, table, r.targets)}` : '');
  const mainMarkdown = (r: EraRun) => (perTarget ? `\n\n${markdownTable(r.figures, table, r.targets)}` : '');
  const text = [header, ...runs.map((r) => `${eraHeading(r).join('\n')}${mainText(r)}${fleetText(r)}`)].join('\n\n') + '\n';
  const markdown = [
    header.split('\n').map((l) => `${l}  `).join('\n'),
    ...runs.map((r) => `### MCP ${r.era}\n\n${[`server: ${r.server}`, ...eraHeading(r).slice(1)].map((l) => `${l}  `).join('\n')}${mainMarkdown(r)}${fleetMarkdown(r)}`),
  ].join('\n\n') + '\n';
  // The first era's figures stay at the top level (the README's table and older readers of the JSON).
  const first = runs[0];
  const json = {
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    machine,
    versions,
    config: { ...config, out: undefined },
    era: first.era,
    driver: first.driver,
    figures: first.figures,
    targets: first.targets,
    raw: first.raw,
    eras: Object.fromEntries(runs.map((r) => [r.era, r])),
  };
  await mkdir(dirname(config.out), { recursive: true });
  await writeFile(config.out, JSON.stringify(json, null, 2) + '\n');
  await writeFile(config.out.replace(/\.json$/, '') + '.md', markdown);
  return { table: text, json };
}

if (import.meta.main) {
  const config = configFrom(process.env, process.argv.slice(2));
  const { table } = await runBench(config);
  process.stdout.write(table);
  process.stderr.write(`bench: wrote ${config.out}\n`);
}
