/**
 * Cold start: a fresh process to the `initialize` response and to the `tools/list` response, the
 * targets alternating run by run (no target gets a warmer disk cache or a quieter machine). The
 * gateway has no process to start (it is already running): its figure is a new client's connect and
 * first `tools/list` through it, which is what a client of the gateway waits for.
 * Each run also counts, at the server, the sessions the start opened and the DELETEs its exit sent:
 * a proxy should open one session per start (no throwaway probe session) and end it on exit
 * (MCP spec "Session Management": clients that no longer need a session SHOULD send DELETE). In the
 * 2026-07-28 era there are no sessions: both counts are 0, and "initialize" is the `server/discover`
 * that a pinned client sends at connect. A target that cannot connect in an era is reported
 * (`unavailable`) after its first failed start, not retried.
 */
import type { BenchServer, BenchServerStats } from './server.ts';
import { connect, spawnFloorChild, TARGETS, type BenchSetup, type CloseOutcome, type TargetId } from './targets.ts';
import { median, sleep } from './stats.ts';

export interface ColdStartRun {
  initializeMs: number;
  toolsListMs: number;
  sessionsOpened: number;
  deletes: number;
  /** Requests outside the MCP path (discovery probes) and 401s during the run. */
  otherRequests: number;
  otherPathsSeen: string[];
  unauthorized: number;
  /** Answers 400–499 other than 401 (refused eras, header mismatches, 405 for a GET stream…). */
  rejected: number;
  /** TCP connections the start opened (the stats requests' own are not counted). */
  connections: number;
  exitMs: number;
  exitedOnStdinEnd: boolean;
}

export interface ColdStartSummary {
  runs: ColdStartRun[];
  initializeMs: number;
  toolsListMs: number;
  sessionsPerStart: number;
  deletesPerExit: number;
  otherRequestsPerStart: number;
  rejectedPerStart: number;
  connectionsPerStart: number;
  exitMs: number;
  exitedOnStdinEnd: number;
}

async function once(target: TargetId, setup: BenchSetup, server: BenchServer): Promise<ColdStartRun> {
  const before = await server.stats();
  let initializeMs: number;
  let toolsListMs: number;
  let close: () => Promise<CloseOutcome>;
  if (target === 'floor') {
    const child = await spawnFloorChild(setup);
    ({ initializeMs, toolsListMs } = child);
    close = () => child.close();
  } else {
    const started = performance.now();
    const conn = await connect(target, setup);
    initializeMs = performance.now() - started;
    await conn.client.listTools();
    toolsListMs = performance.now() - started;
    close = () => conn.close();
  }
  const { exitMs, exitedOnStdinEnd } = await close();
  await sleep(50); // let a last request the server is still reading land in the counters
  const after = await server.stats();
  const delta = (k: Exclude<keyof BenchServerStats, 'otherPathsSeen'>) => after[k] - before[k];
  return {
    initializeMs,
    toolsListMs,
    sessionsOpened: delta('sessionsCreated'),
    deletes: delta('deletes'),
    otherRequests: delta('otherPaths'),
    otherPathsSeen: Object.keys(after.otherPathsSeen).filter((k) => after.otherPathsSeen[k] !== before.otherPathsSeen[k]),
    unauthorized: delta('unauthorized'),
    rejected: delta('rejected'),
    connections: delta('connections') - 1,
    exitMs,
    exitedOnStdinEnd,
  };
}

export interface ColdStartResult {
  summaries: Partial<Record<TargetId, ColdStartSummary>>;
  /** Targets that could not start in this era, with why. */
  unavailable: Partial<Record<TargetId, string>>;
}

export async function measureColdStart(setup: BenchSetup, server: BenchServer, runs: number, log: (line: string) => void): Promise<ColdStartResult> {
  const all = Object.fromEntries(TARGETS.map((t) => [t, [] as ColdStartRun[]])) as Record<TargetId, ColdStartRun[]>;
  const unavailable: Partial<Record<TargetId, string>> = {};
  for (let i = 0; i < runs; i++) {
    // Rotate which target goes first as well as alternating them.
    const order = [...TARGETS.slice(i % TARGETS.length), ...TARGETS.slice(0, i % TARGETS.length)];
    for (const target of order) {
      if (unavailable[target]) continue;
      try {
        all[target].push(await once(target, setup, server));
      } catch (err) {
        unavailable[target] = (err as Error).message.split('\n')[0];
        log(`cold start: ${target} unavailable in ${setup.era}: ${unavailable[target]}`);
      }
    }
    log(`cold start: run ${i + 1}/${runs} done`);
  }
  const summarize = (rs: ColdStartRun[]): ColdStartSummary => ({
    runs: rs,
    initializeMs: median(rs.map((r) => r.initializeMs)),
    toolsListMs: median(rs.map((r) => r.toolsListMs)),
    sessionsPerStart: mean(rs.map((r) => r.sessionsOpened)),
    deletesPerExit: mean(rs.map((r) => r.deletes)),
    otherRequestsPerStart: mean(rs.map((r) => r.otherRequests + r.unauthorized)),
    rejectedPerStart: mean(rs.map((r) => r.rejected)),
    connectionsPerStart: mean(rs.map((r) => r.connections)),
    exitMs: median(rs.map((r) => r.exitMs)),
    exitedOnStdinEnd: rs.filter((r) => r.exitedOnStdinEnd).length / rs.length,
  });
  const summaries: Partial<Record<TargetId, ColdStartSummary>> = {};
  for (const target of TARGETS) if (all[target].length) summaries[target] = summarize(all[target]);
  return { summaries, unavailable };
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}
