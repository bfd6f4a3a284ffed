/**
 * The soak's output: a block of figures per run, then one summary table; or all of it as JSON.
 */
import type { RunResult } from './measure.ts';

const n = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x.toLocaleString('en-US'));
const ms = (x: number | null) => (x === null ? '-' : x >= 100 ? String(Math.round(x)) : x.toFixed(1));

function row(label: string, value: string): string {
  return `  ${label.padEnd(24)} ${value}`;
}

export function runBlock(r: RunResult): string {
  const head = `== ${r.id}: ${r.title} ==`;
  if (r.skipped) return `${head}\n  skipped: ${r.skipped}\n`;
  const c = r.calls;
  const lines = [
    head,
    row('clients', `${r.clients} on ${r.hosts} host(s), ${r.store} store`),
    row('window', `${r.durationSeconds} s, access token lifetime ${r.ttlSeconds} s → ${r.expiries} expiries`),
    row('calls made / failed', `${n(c.made)} / ${n(c.failed)}${c.cut ? `   (${n(c.cut)} cut short by the soak's kills, not counted as failed)` : ''}`),
    row('refreshes at the AS', `${n(r.refreshes)} for ${r.expiries} expiries (one refresh per token, made when ¼ of its lifetime is left, makes ${r.expectedRefreshes})`),
    row('', `${n(r.refreshAttempts)} refresh requests reached the token endpoint; at most ${r.maxConcurrentTokenRequests} token request(s) in flight at once`),
    row('reuse detections', n(r.reuseDetections)),
    row('sign-ins lost', `${n(r.signInsLost)}   (calls failed with sign-in required: ${n(r.signInErrors)}; browser launches by the fleet: ${n(r.browserLaunches)})`),
    row('latency p50 / p99 / max', `${ms(c.p50Ms)} / ${ms(c.p99Ms)} / ${ms(c.maxMs)} ms`),
  ];
  if (Object.keys(c.failuresByKind).length) lines.push(row('failures by kind', Object.entries(c.failuresByKind).map(([k, v]) => `${k} ${v}`).join(', ')));
  for (const s of c.sampleFailures) lines.push(row('  e.g.', s.replace(/\s+/g, ' ').slice(0, 160)));
  for (const l of r.lines) lines.push(`  ${l}`);
  if (r.crashes.length) lines.push(row('crashed clients', `${r.crashes.length}: ${r.crashes.map((x) => `#${x.member} ${x.stderr.replace(/\s+/g, ' ').slice(-160)}`).join(' | ')}`));
  if (r.connectFailures.length) lines.push(row('could not connect', `${r.connectFailures.length}: ${r.connectFailures[0]}`));
  return `${lines.join('\n')}\n`;
}

export function summaryTable(runs: RunResult[]): string {
  const header = ['run', 'clients', 'calls', 'failed', 'refreshes', 'expiries', 'reuse', 'lost', 'p50 ms', 'p99 ms'];
  const body = runs.map((r) =>
    r.skipped
      ? [r.id, 'skipped', '', '', '', '', '', '', '', '']
      : [r.id, n(r.clients), n(r.calls.made), n(r.calls.failed), n(r.refreshes), String(r.expiries), n(r.reuseDetections), n(r.signInsLost), ms(r.calls.p50Ms), ms(r.calls.p99Ms)],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...body.map(fmt)].join('\n');
}

export function environmentLine(): string {
  const os = process.platform === 'linux' ? `linux ${process.arch}` : `${process.platform} ${process.arch}`;
  return `node ${process.version}, ${os}, ${(globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? '?'} cores`;
}
