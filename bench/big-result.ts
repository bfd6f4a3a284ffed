/**
 * A large result: `big {kb}` round trips (default 256 KiB of text), median, in rotating rounds.
 */
import { callBig, chunks, inRoundOrder, type ByTarget, type Connection } from './calls.ts';
import { median } from './stats.ts';

export interface BigResult {
  kb: number;
  runs: number;
  medianMs: number;
}

export async function measureBigResult(conns: Connection[], runs: number, kb: number, rounds: number): Promise<ByTarget<BigResult>> {
  const samples = new Map<Connection, number[]>(conns.map((c) => [c, []]));
  for (const conn of conns) await callBig(conn.client, kb); // warm-up (and a correctness check)
  for (const [round, n] of chunks(runs, rounds).entries()) {
    for (const conn of inRoundOrder(conns, round)) {
      for (let i = 0; i < n; i++) {
        const started = performance.now();
        await callBig(conn.client, kb);
        samples.get(conn)!.push(performance.now() - started);
      }
    }
  }
  const out: ByTarget<BigResult> = {};
  for (const conn of conns) out[conn.target] = { kb, runs: samples.get(conn)!.length, medianMs: median(samples.get(conn)!) };
  return out;
}
