/**
 * The figures as one table (plain text for the terminal, Markdown for the README) and the issue's
 * targets, evaluated. A missed target is reported, never an error: benchmarks print, they do not fail.
 */
import { TARGETS, TARGET_LABELS, type TargetId } from './targets.ts';

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
    { key: 'coldInitializeMs', label: `cold start → initialize (ms, median of ${o.coldRuns}; gateway: a new client, no process start)`, decimals: 0, ratio: true },
    { key: 'coldToolsListMs', label: `cold start → tools/list (ms, median of ${o.coldRuns}; gateway: a new client's first tools/list)`, decimals: 0, ratio: true },
    { key: 'latencyP50Ms', label: `echo latency p50 (ms, ${o.calls} sequential)`, decimals: 3, ratio: true },
    { key: 'latencyP99Ms', label: 'echo latency p99 (ms)', decimals: 3, ratio: true },
    { key: 'addedLatencyP50Ms', label: 'latency added per call, p50 − floor p50 (ms)', decimals: 3, ratio: false },
    { key: 'throughputCallsPerSecond', label: `throughput, ${o.concurrency} in flight (calls/s)`, decimals: 0, ratio: true },
    { key: 'bigResultMs', label: `${o.bigKb} KB result round trip (ms, median)`, decimals: 2, ratio: true },
    { key: 'cpuMsPerCall', label: 'proxy (gateway) process CPU per call (ms)', decimals: 4, ratio: false },
    { key: 'driverCpuMsPerCall', label: 'bench driver CPU per call (ms; floor, gateway: SDK HTTP client)', decimals: 4, ratio: false },
    { key: 'serverCpuMsPerCall', label: 'server CPU per call (ms)', decimals: 4, ratio: false },
    { key: 'cpuMsPerCallUnderLoad', label: `proxy (gateway) process CPU per call, ${o.concurrency} in flight (ms)`, decimals: 4, ratio: false },
    { key: 'idleRssMiB', label: 'idle RSS (MiB)', decimals: 1, ratio: true },
    { key: 'peakRssMiB', label: 'peak RSS after throughput (MiB)', decimals: 1, ratio: false },
    { key: 'sessionsPerStart', label: 'sessions opened per start', decimals: 2, ratio: false },
    { key: 'deletesPerExit', label: 'session DELETEs per exit', decimals: 2, ratio: false },
    { key: 'extraRequestsPerStart', label: 'probe/401 requests per start', decimals: 2, ratio: false },
    { key: 'rejectedPerStart', label: 'refused requests (4xx but 401) per start', decimals: 2, ratio: false },
    { key: 'connectionsPerStart', label: 'TCP connections per start', decimals: 2, ratio: false },
    { key: 'exitMs', label: 'stdin closed → process exit (ms, median; gateway: no process)', decimals: 0, ratio: false },
  ];
}

export interface TargetCheck {
  /** A figure of the main table (FigureKey), or of another table (the fleet's). */
  key: string;
  /** The wording. */
  rule: string;
  /** What the ratio divides by (shown as "… of BASELINE"). */
  baseline: string;
  /** subject/baseline must be ≤ limit (or ≥ limit when `atLeast`). */
  limit: number;
  atLeast?: boolean;
  ratio: number | null;
  met: boolean | null;
}

/** The proxy's targets (issue 5), each against mcp-remote. */
const CHECKS: Array<Omit<TargetCheck, 'ratio' | 'met' | 'baseline'> & { key: FigureKey }> = [
  { key: 'addedLatencyP50Ms', rule: 'latency added (p50 − floor p50) ≤ 1/3 of mcp-remote’s', limit: 1 / 3 },
  { key: 'cpuMsPerCall', rule: 'CPU per call ≤ 1/4 of mcp-remote’s', limit: 1 / 4 },
  { key: 'throughputCallsPerSecond', rule: 'throughput ≥ 1.8× mcp-remote’s', limit: 1.8, atLeast: true },
  { key: 'coldInitializeMs', rule: 'cold start to initialize ≤ 1/4 of mcp-remote’s', limit: 1 / 4 },
  { key: 'idleRssMiB', rule: 'idle RSS ≤ 1/2 of mcp-remote’s', limit: 1 / 2 },
];

/** A subject/baseline check; a missing or non-positive baseline cannot be divided by (met: null). */
export function check(spec: Omit<TargetCheck, 'ratio' | 'met'>, subject: number | null, baseline: number | null): TargetCheck {
  if (subject === null || baseline === null || !(baseline > 0) || Number.isNaN(subject)) return { ...spec, ratio: null, met: null };
  const ratio = subject / baseline;
  return { ...spec, ratio, met: spec.atLeast ? ratio >= spec.limit : ratio <= spec.limit };
}

export function evaluateTargets(figures: Figures): TargetCheck[] {
  // E.g. mcp-remote adding no measurable latency leaves nothing to divide by.
  return CHECKS.map((spec) => check({ ...spec, baseline: 'mcp-remote' }, figures['mcp-oauth'][spec.key], figures['mcp-remote'][spec.key]));
}

export function fmt(value: number | null | undefined, decimals: number): string {
  if (value === null || value === undefined || Number.isNaN(value)) return 'n/a';
  return value.toFixed(decimals);
}

export function ratioText(value: number | null | undefined, base: number | null | undefined): string {
  if (value === null || value === undefined || base === null || base === undefined || !(base > 0) || Number.isNaN(value)) return '—';
  return `${(value / base).toFixed(2)}×`;
}

export function checkText(check: TargetCheck | undefined): string {
  if (!check) return '';
  const limit = `${check.atLeast ? '≥' : '≤'} ${check.limit.toFixed(2)}×`;
  if (check.met === null) return `n/a (needs ${limit} of ${check.baseline})`;
  return `${check.met ? 'yes' : 'NO'}: ${check.ratio!.toFixed(2)}× of ${check.baseline} (${limit})`;
}

/** Column names for the ratio columns: short, the table is wide. */
const SHORT: Record<TargetId, string> = { floor: 'floor', 'mcp-oauth': 'proxy', gateway: 'gateway', 'mcp-remote': 'mcp-remote' };
const MEASURED = TARGETS;
const RATIOED = TARGETS.filter((t) => t !== 'floor');
const HEADER = ['figure', ...MEASURED.map((t) => TARGET_LABELS[t]), ...RATIOED.map((t) => `${SHORT[t]}/floor`), 'target met?'];

function cells(figures: Figures, table: Row[], checks: TargetCheck[]): string[][] {
  return table.map((row) => {
    const floor = figures.floor[row.key];
    return [
      row.label,
      ...MEASURED.map((t) => fmt(figures[t][row.key], row.decimals)),
      ...RATIOED.map((t) => (row.ratio ? ratioText(figures[t][row.key], floor) : '—')),
      checkText(checks.find((c) => c.key === row.key)),
    ];
  });
}

/** A plain-text table: the first column left-aligned, the rest right-aligned. */
export function renderText(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-+-'), ...body.map(line)].join('\n');
}

export function renderMarkdown(header: string[], body: string[][]): string {
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  return [line(header), `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...body.map(line)].join('\n');
}

export function textTable(figures: Figures, table: Row[], checks: TargetCheck[]): string {
  return renderText(HEADER, cells(figures, table, checks));
}

export function markdownTable(figures: Figures, table: Row[], checks: TargetCheck[]): string {
  return renderMarkdown(HEADER, cells(figures, table, checks));
}
