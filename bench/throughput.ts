/**
 * Throughput: a fixed number of `tools/call echo` with `concurrency` calls in flight, in rounds
 * that rotate the targets; calls/s over all rounds. Then the proxy's peak RSS (VmHWM), which by now
 * has seen initialize, the latency run and this one.
 */
import { callEcho, chunks, inRoundOrder, type ByTarget, type Connection } from './calls.ts';
import { CpuMeter, memoryMiB } from './stats.ts';

export interface ThroughputResult {
  calls: number;
  concurrency: number;
  callsPerSecond: number;
  /** null for the in-process floor. */
  peakRssMiB: number | null;
  /** Under load, per call: the proxy, this bench process, the server. */
  cpuMsPerCall: number | null;
  driverCpuMsPerCall: number | null;
  serverCpuMsPerCall: number | null;
}

async function burst(conn: Connection, calls: number, concurrency: number): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < calls) {
      next += 1;
      await callEcho(conn.client);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, calls) }, worker));
  return performance.now() - started;
}

export async function measureThroughput(conns: Connection[], calls: number, concurrency: number, rounds: number, warmup: number, serverPid?: number): Promise<ByTarget<ThroughputResult>> {
  for (const conn of conns) await burst(conn, warmup, concurrency);
  const elapsed = new Map<Connection, number>(conns.map((c) => [c, 0]));
  const meters = new Map(conns.map((c) => [c, [new CpuMeter(c.pid), new CpuMeter(process.pid), new CpuMeter(serverPid)]]));
  for (const [round, n] of chunks(calls, rounds).entries()) {
    for (const conn of inRoundOrder(conns, round)) {
      const m = meters.get(conn)!;
      for (const meter of m) meter.start();
      elapsed.set(conn, elapsed.get(conn)! + (await burst(conn, n, concurrency)));
      for (const meter of m) meter.stop();
    }
  }
  const out: ByTarget<ThroughputResult> = {};
  for (const conn of conns) {
    const [proxy, driver, server] = meters.get(conn)!;
    out[conn.target] = {
      calls,
      concurrency,
      callsPerSecond: (calls * 1000) / elapsed.get(conn)!,
      peakRssMiB: memoryMiB(conn.pid, 'VmHWM'),
      cpuMsPerCall: proxy.perCall(calls),
      driverCpuMsPerCall: driver.perCall(calls),
      serverCpuMsPerCall: server.perCall(calls),
    };
  }
  return out;
}
