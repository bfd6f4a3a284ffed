/**
 * Small numeric and /proc helpers for the benchmarks (Linux: CPU time and memory come from
 * /proc/<pid>/stat and /proc/<pid>/status; elsewhere those figures are null).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function median(xs: number[]): number {
  return percentile(xs, 50);
}

/** Nearest-rank percentile (p in 0..100); NaN for an empty list. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

let clockTicks: number | undefined;

/** Kernel clock ticks per second (utime/stime unit), usually 100. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU time of a process so far, in ms; null when /proc cannot tell. */
export function cpuTimeMs(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // proc(5): fields after "(comm)"; comm may hold spaces, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]); // field 14
    const stime = Number(fields[12]); // field 15
    return ((utime + stime) * 1000) / ticksPerSecond();
  } catch {
    return null;
  }
}

/** A memory line of /proc/<pid>/status (VmRSS: resident now; VmHWM: peak resident), in MiB. */
export function memoryMiB(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number | null {
  if (!pid) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Proportional set size in MiB (/proc/<pid>/smaps_rollup, Linux ≥ 4.14): resident memory with each
 * shared page divided among the processes that map it, so summing over processes counts the Node
 * binary and shared libraries once. Null when /proc cannot tell.
 */
export function pssMiB(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A positive integer from the environment, else the default. */
export function envCount(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not ${JSON.stringify(raw)}`);
  return n;
}

/** CPU time of one process summed over several measured stretches (null when unmeasurable). */
export class CpuMeter {
  readonly #pid: number | undefined;
  #startedAt: number | null = null;
  #total: number | null;

  constructor(pid: number | undefined) {
    this.#pid = pid;
    this.#total = pid ? 0 : null;
  }

  start(): void {
    this.#startedAt = cpuTimeMs(this.#pid);
  }

  stop(): void {
    const now = cpuTimeMs(this.#pid);
    this.#total = this.#total === null || now === null || this.#startedAt === null ? null : this.#total + now - this.#startedAt;
  }

  perCall(calls: number): number | null {
    return this.#total === null || calls === 0 ? null : this.#total / calls;
  }
}
