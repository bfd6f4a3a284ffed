/**
 * The figures as one table (plain text for the terminal, Markdown for the README) and the issue's
 * targets, evaluated. A missed target is reported, never an error: benchmarks print, they do not fail.
 */
import type { TargetId } from './targets.ts';

/** Every figure of one target; null = not applicable (e.g. the floor has no proxy process). */
export interface TargetFigures {
  coldInitializeMs: number | null;
  coldToolsListMs: number | null;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  addedLatencyP50Ms: number | null;
  throughputCallsPerSecond: number | null;
  bigResultMs: number | null;
  cpuMsPerCall: number | null;
  driverCpuMsPerCall: number | null;
  serverCpuMsPerCall: number | null;
  cpuMsPerCallUnderLoad: number | null;
  idleRssMiB: number | null;
  peakRssMiB: number | null;
  sessionsPerStart: number | null;
  deletesPerExit: number | null;
  extraRequestsPerStart: number | null;
  rejectedPerStart: number | null;
  connectionsPerStart: number | null;
  exitMs: number | null;
}

export type FigureKey = keyof TargetFigures;
type Figures = Record<TargetId, TargetFigures>;

interface Row {
  key: FigureKey;
  label: string;
  decimals: number;
  /** Ratios to the floor make no sense for counts and for figures the floor lacks. */
  ratio: boolean;
}

export function rows(o: { calls: number; concurrency: number; bigKb: number; coldRuns: number }): Row[] {
  return [
    { key: 'coldInitializeMs', label: `cold start → initialize (ms, median of ${o.coldRuns})`, decimals: 0, ratio: true },
    { key: 'coldToolsListMs', label: `cold start → tools/list (ms, median of ${o.coldRuns})`, decimals: 0, ratio: true },
    { key: 'latencyP50Ms', label: `echo latency p50 (ms, ${o.calls} sequential)`, decimals: 3, ratio: true },
    { key: 'latencyP99Ms', label: 'echo latency p99 (ms)', decimals: 3, ratio: true },
    { key: 'addedLatencyP50Ms', label: 'latency added by the proxy, p50 (ms)', decimals: 3, ratio: false },
    { key: 'throughputCallsPerSecond', label: `throughput, ${o.concurrency} in flight (calls/s)`, decimals: 0, ratio: true },
    { key: 'bigResultMs', label: `${o.bigKb} KB result round trip (ms, median)`, decimals: 2, ratio: true },
    { key: 'cpuMsPerCall', label: 'proxy CPU per call (ms)', decimals: 4, ratio: false },
    { key: 'driverCpuMsPerCall', label: 'bench driver CPU per call (ms; floor: SDK HTTP client)', decimals: 4, ratio: false },
    { key: 'serverCpuMsPerCall', label: 'server CPU per call (ms)', decimals: 4, ratio: false },
    { key: 'cpuMsPerCallUnderLoad', label: `proxy CPU per call, ${o.concurrency} in flight (ms)`, decimals: 4, ratio: false },
    { key: 'idleRssMiB', label: 'idle RSS (MiB)', decimals: 1, ratio: true },
    { key: 'peakRssMiB', label: 'peak RSS after throughput (MiB)', decimals: 1, ratio: false },
    { key: 'sessionsPerStart', label: 'sessions opened per start', decimals: 2, ratio: false },
    { key: 'deletesPerExit', label: 'session DELETEs per exit', decimals: 2, ratio: false },
    { key: 'extraRequestsPerStart', label: 'probe/401 requests per start', decimals: 2, ratio: false },
    { key: 'rejectedPerStart', label: 'refused requests (4xx but 401) per start', decimals: 2, ratio: false },
    { key: 'connectionsPerStart', label: 'TCP connections per start', decimals: 2, ratio: false },
    { key: 'exitMs', label: 'stdin closed → process exit (ms, median)', decimals: 0, ratio: false },
  ];
}

export interface TargetCheck {
  key: FigureKey;
  /** The wording. */
  rule: string;
  /** proxy/mcp-remote must be ≤ limit (or ≥ limit when `atLeast`). */
  limit: number;
  atLeast?: boolean;
  ratio: number | null;
  met: boolean | null;
}

const CHECKS: Array<Omit<TargetCheck, 'ratio' | 'met'>> = [
  { key: 'addedLatencyP50Ms', rule: 'latency added (p50 − floor p50) ≤ 1/3 of mcp-remote’s', limit: 1 / 3 },
  { key: 'cpuMsPerCall', rule: 'CPU per call ≤ 1/4 of mcp-remote’s', limit: 1 / 4 },
  { key: 'throughputCallsPerSecond', rule: 'throughput ≥ 1.8× mcp-remote’s', limit: 1.8, atLeast: true },
  { key: 'coldInitializeMs', rule: 'cold start to initialize ≤ 1/4 of mcp-remote’s', limit: 1 / 4 },
  { key: 'idleRssMiB', rule: 'idle RSS ≤ 1/2 of mcp-remote’s', limit: 1 / 2 },
];

export function evaluateTargets(figures: Figures): TargetCheck[] {
  return CHECKS.map((check) => {
    const proxy = figures['mcp-oauth'][check.key];
    const remote = figures['mcp-remote'][check.key];
    // A non-positive baseline (e.g. mcp-remote adding no measurable latency) cannot be divided by.
    if (proxy === null || remote === null || !(remote > 0)) return { ...check, ratio: null, met: null };
    const ratio = proxy / remote;
    return { ...check, ratio, met: check.atLeast ? ratio >= check.limit : ratio <= check.limit };
  });
}

function fmt(value: number | null, decimals: number): string {
  if (value === null || Number.isNaN(value)) return 'n/a';
  return value.toFixed(decimals);
}

function ratioToFloor(value: number | null, floor: number | null): string {
  if (value === null || floor === null || !(floor > 0)) return '—';
  return `${(value / floor).toFixed(2)}×`;
}

function checkText(check: TargetCheck | undefined): string {
  if (!check) return '';
  const limit = `${check.atLeast ? '≥' : '≤'} ${check.limit.toFixed(2)}×`;
  if (check.met === null) return `n/a (needs ${limit} of mcp-remote)`;
  return `${check.met ? 'yes' : 'NO'}: ${check.ratio!.toFixed(2)}× of mcp-remote (${limit})`;
}

const HEADER = ['figure', 'floor', 'mcp-oauth proxy', 'mcp-remote', 'proxy/floor', 'mcp-remote/floor', 'target met?'];

function cells(figures: Figures, table: Row[], checks: TargetCheck[]): string[][] {
  return table.map((row) => {
    const [f, p, r] = [figures.floor[row.key], figures['mcp-oauth'][row.key], figures['mcp-remote'][row.key]];
    return [
      row.label,
      fmt(f, row.decimals),
      fmt(p, row.decimals),
      fmt(r, row.decimals),
      row.ratio ? ratioToFloor(p, f) : '—',
      row.ratio ? ratioToFloor(r, f) : '—',
      checkText(checks.find((c) => c.key === row.key)),
    ];
  });
}

export function textTable(figures: Figures, table: Row[], checks: TargetCheck[]): string {
  const body = cells(figures, table, checks);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ').trimEnd();
  return [line(HEADER), widths.map((w) => '-'.repeat(w)).join('-+-'), ...body.map(line)].join('\n');
}

export function markdownTable(figures: Figures, table: Row[], checks: TargetCheck[]): string {
  const body = cells(figures, table, checks);
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  return [line(HEADER), `|${HEADER.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...body.map(line)].join('\n');
}
