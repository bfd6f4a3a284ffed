/**
 * Latency: sequential `tools/call echo` round trips (p50, p99), in rounds that rotate the targets,
 * and the proxy process's CPU time per call (/proc utime+stime before and after, over the calls);
 * the bench process's and the server's CPU per call for context.
 */
import { callEcho, chunks, inRoundOrder, type ByTarget, type Connection } from './calls.ts';
import { CpuMeter, percentile } from './stats.ts';

export interface LatencyResult {
  calls: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** CPU of the proxy process per call; null for the in-process floor. */
  cpuMsPerCall: number | null;
  /** CPU of this bench process (the driver; for the floor also its HTTP client) per call. */
  driverCpuMsPerCall: number;
  serverCpuMsPerCall: number | null;
}

export async function measureLatency(conns: Connection[], calls: number, rounds: number, warmup: number, serverPid?: number): Promise<ByTarget<LatencyResult>> {
  for (const conn of conns) for (let i = 0; i < warmup; i++) await callEcho(conn.client);
  const samples = new Map<Connection, number[]>(conns.map((c) => [c, []]));
  const meters = new Map(conns.map((c) => [c, { proxy: new CpuMeter(c.pid), driver: new CpuMeter(process.pid), server: new CpuMeter(serverPid) }]));
  for (const [round, n] of chunks(calls, rounds).entries()) {
    for (const conn of inRoundOrder(conns, round)) {
      const list = samples.get(conn)!;
      const m = meters.get(conn)!;
      m.proxy.start();
      m.driver.start();
      m.server.start();
      for (let i = 0; i < n; i++) {
        const started = performance.now();
        await callEcho(conn.client);
        list.push(performance.now() - started);
      }
      m.proxy.stop();
      m.driver.stop();
      m.server.stop();
    }
  }
  const out: ByTarget<LatencyResult> = {};
  for (const conn of conns) {
    const list = samples.get(conn)!;
    const m = meters.get(conn)!;
    out[conn.target] = {
      calls: list.length,
      p50Ms: percentile(list, 50),
      p99Ms: percentile(list, 99),
      meanMs: list.reduce((a, b) => a + b, 0) / list.length,
      cpuMsPerCall: m.proxy.perCall(list.length),
      driverCpuMsPerCall: m.driver.perCall(list.length) ?? Number.NaN,
      serverCpuMsPerCall: m.server.perCall(list.length),
    };
  }
  return out;
}
