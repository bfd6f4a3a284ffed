/**
 * What the clients saw, per run: every call's latency, every failure with its time and kind, and
 * calls cut short because the soak itself killed their process (not failures of mcp-oauth).
 */

export type FailureKind = 'signin' | 'transient' | 'timeout' | 'other';

export interface Failure {
  at: number;
  kind: FailureKind;
  message: string;
  member: number;
}

/** Nearest-rank percentile (p in 0..100); null for an empty list. */
export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** A failed call's kind, from the JSON-RPC error or tool error text the client received. */
export function classifyFailure(message: string): FailureKind {
  // The hint of a sign-in-required error names the command ("Your sign-in is kept" is transient).
  if (/mcp-oauth login|signin_required/i.test(message)) return 'signin';
  if (/timed out|timeout/i.test(message)) return 'timeout';
  if (/unavailable|unreachable|not reachable|retry later|network|ECONNRE|socket hang up|fetch failed/i.test(message)) return 'transient';
  return 'other';
}

export class CallStats {
  readonly latencies: number[] = [];
  readonly failures: Failure[] = [];
  /** Successful calls' end times, per member (recovery after an outage). */
  readonly successesAt = new Map<number, number[]>();
  cut = 0;
  made = 0;
  #keepSuccessTimes = false;

  /** Keep every success's end time (the Redis restart run needs them; others do not). */
  keepSuccessTimes(): void {
    this.#keepSuccessTimes = true;
  }

  ok(member: number, ms: number, at: number): void {
    this.made += 1;
    this.latencies.push(ms);
    if (this.#keepSuccessTimes) {
      let list = this.successesAt.get(member);
      if (!list) this.successesAt.set(member, (list = []));
      list.push(at);
    }
  }

  failed(member: number, message: string, at: number): void {
    this.made += 1;
    this.failures.push({ at, kind: classifyFailure(message), message: message.slice(0, 300), member });
  }

  /** A call in flight when the soak killed its process. */
  cutByKill(): void {
    this.made += 1;
    this.cut += 1;
  }

  summary(): { made: number; failed: number; cut: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null; failuresByKind: Record<string, number>; sampleFailures: string[] } {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const byKind: Record<string, number> = {};
    for (const f of this.failures) byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
    const samples = [...new Set(this.failures.map((f) => f.message))].slice(0, 3);
    const round = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
    return {
      made: this.made,
      failed: this.failures.length,
      cut: this.cut,
      p50Ms: round(percentile(sorted, 50)),
      p99Ms: round(percentile(sorted, 99)),
      maxMs: round(sorted.length ? sorted[sorted.length - 1]! : null),
      failuresByKind: byKind,
      sampleFailures: samples,
    };
  }
}
