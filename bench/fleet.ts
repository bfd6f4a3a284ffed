/**
 * Memory for many client connections (issue 9: "3 clients × 10 servers"): one user's hosts, each
 * connected to every configured server. Measured three ways against the same bench server, each
 * server at its own URL (/fleet/NN/mcp: ten resources, ten credentials):
 * - `gateway`: one fresh `mcp-oauth serve` for the ten servers; every connection is an HTTP client
 *   (the era's SDK Client, in the bench process) of BASE/servers/NAME/mcp;
 * - `mcp-oauth`: one `mcp-oauth proxy NAME` process per connection (what hosts run today);
 * - `mcp-remote`: one `mcp-remote URL` process per connection (skipped where it cannot connect).
 * A client opens its servers at once (as a host does at start), the clients one after another. Each
 * connection lists tools and makes a few calls; after `idleMs` of quiet the resident set (VmRSS) of
 * every process serving them is summed. The target: the gateway's RSS under 1/10 of the proxies'.
 * The proportional set size (PSS, shared pages split) is shown beside it, because summed RSS counts
 * the Node binary once per process. The clients live in the bench process for all three: their
 * memory is in none of the figures.
 */
import { callEcho } from './calls.ts';
import { startBenchGateway } from './gateway.ts';
import { check, checkText, fmt, ratioText, renderMarkdown, renderText, type TargetCheck } from './report.ts';
import { median, memoryMiB, pssMiB, sleep } from './stats.ts';
import { connect, prepareSetup, TARGET_LABELS, type BenchRoute, type BenchSetup, type Connection, type Era } from './targets.ts';

export const FLEET_TARGETS = ['gateway', 'mcp-oauth', 'mcp-remote'] as const;
export type FleetTarget = (typeof FLEET_TARGETS)[number];

export interface FleetConfig {
  servers: number;
  clients: number;
  /** echo calls per connection after its tools/list. */
  calls: number;
  idleMs: number;
  /** Measure mcp-remote too (one process per connection; about twice the proxy's memory each). */
  remote: boolean;
}

export interface FleetSide {
  processes: number;
  connections: number;
  /** Summed VmRSS of the processes serving the connections, after idleMs. */
  totalRssMiB: number | null;
  /** Summed PSS of the same (shared pages counted once). */
  totalPssMiB: number | null;
  rssPerConnectionMiB: number | null;
  /** The gateway's RSS after it started and before any client came (null for the others). */
  restingRssMiB: number | null;
  /** From a connection's start (proxies: the spawn) to its first tools/list answer: median and worst. */
  firstToolsListMs: number;
  firstToolsListMaxMs: number;
  /** Wall time until every connection had listed tools and made its calls. */
  readyMs: number;
}

export interface FleetResult {
  era: Era;
  servers: number;
  clients: number;
  calls: number;
  idleMs: number;
  sides: Partial<Record<FleetTarget, FleetSide>>;
  /** Targets that could not be measured, with why. */
  unavailable: Partial<Record<FleetTarget, string>>;
  check: TargetCheck;
}

const pad = (n: number) => String(n).padStart(2, '0');

export function fleetRoutes(serverUrl: string, servers: number): BenchRoute[] {
  const origin = new URL(serverUrl).origin;
  return Array.from({ length: servers }, (_, i) => ({ name: `fleet-${pad(i + 1)}`, url: `${origin}/fleet/${pad(i + 1)}/mcp` }));
}

interface Opened {
  conn: Connection;
  firstToolsListMs: number;
}

async function open(target: FleetTarget, setup: BenchSetup, route: BenchRoute, calls: number): Promise<Opened> {
  const started = performance.now();
  const conn = await connect(target, setup, route);
  try {
    await conn.client.listTools();
    const firstToolsListMs = performance.now() - started;
    for (let i = 0; i < calls; i++) await callEcho(conn.client);
    return { conn, firstToolsListMs };
  } catch (err) {
    await conn.close().catch(() => {});
    throw err;
  }
}

async function measureSide(target: FleetTarget, setup: BenchSetup, config: FleetConfig): Promise<FleetSide> {
  let restingRssMiB: number | null = null;
  if (target === 'gateway') {
    setup.gateway = await startBenchGateway(setup);
    await sleep(Math.min(config.idleMs, 500));
    restingRssMiB = memoryMiB(setup.gateway.pid, 'VmRSS');
  }
  const opened: Opened[] = [];
  try {
    const started = performance.now();
    for (let c = 0; c < config.clients; c++) {
      const results = await Promise.allSettled(setup.servers.map((route) => open(target, setup, route, config.calls)));
      for (const r of results) if (r.status === 'fulfilled') opened.push(r.value);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
    const readyMs = performance.now() - started;
    await sleep(config.idleMs);
    const pids = target === 'gateway' ? [setup.gateway!.pid] : opened.map((o) => o.conn.pid);
    const sum = (read: (pid: number | undefined) => number | null) => {
      const values = pids.map(read);
      return values.some((v) => v === null) ? null : (values as number[]).reduce((a, b) => a + b, 0);
    };
    const totalRssMiB = sum((pid) => memoryMiB(pid, 'VmRSS'));
    const firsts = opened.map((o) => o.firstToolsListMs);
    return {
      processes: new Set(pids).size,
      connections: opened.length,
      totalRssMiB,
      totalPssMiB: sum(pssMiB),
      rssPerConnectionMiB: totalRssMiB === null ? null : totalRssMiB / opened.length,
      restingRssMiB,
      firstToolsListMs: median(firsts),
      firstToolsListMaxMs: Math.max(...firsts),
      readyMs,
    };
  } finally {
    await Promise.all(opened.map((o) => o.conn.close().catch(() => {})));
    await setup.gateway?.close();
    setup.gateway = undefined;
  }
}

function fleetCheckSpec(config: FleetConfig): Omit<TargetCheck, 'ratio' | 'met'> {
  const n = config.clients * config.servers;
  return { key: 'fleetTotalRssMiB', rule: `gateway RSS for ${config.clients} clients × ${config.servers} servers under 1/10 of the ${n} proxy processes’ summed RSS`, baseline: 'the proxies', limit: 1 / 10 };
}

/** `skip`: targets known not to connect in this era (from the main run), with why. */
export async function measureFleet(opts: { serverUrl: string; token: string; cli: string; era: Era; config: FleetConfig; skip: Partial<Record<FleetTarget, string>>; log: (line: string) => void }): Promise<FleetResult> {
  const { config } = opts;
  const setup = await prepareSetup({ url: opts.serverUrl, token: opts.token, cli: opts.cli, era: opts.era, servers: fleetRoutes(opts.serverUrl, config.servers) });
  const sides: FleetResult['sides'] = {};
  const unavailable: FleetResult['unavailable'] = {};
  try {
    for (const target of FLEET_TARGETS) {
      if (target === 'mcp-remote' && !config.remote) continue;
      if (opts.skip[target]) {
        unavailable[target] = opts.skip[target];
        continue;
      }
      opts.log(`fleet: ${TARGET_LABELS[target]}, ${config.clients} clients × ${config.servers} servers`);
      try {
        sides[target] = await measureSide(target, setup, config);
      } catch (err) {
        unavailable[target] = (err as Error).message.split('\n')[0];
        opts.log(`fleet: ${target} unavailable in ${opts.era}: ${unavailable[target]}`);
      }
    }
  } finally {
    await setup.cleanup();
  }
  const limitCheck = check(fleetCheckSpec(config), sides.gateway?.totalRssMiB ?? null, sides['mcp-oauth']?.totalRssMiB ?? null);
  return { era: opts.era, servers: config.servers, clients: config.clients, calls: config.calls, idleMs: config.idleMs, sides, unavailable, check: limitCheck };
}

interface FleetRow {
  key: keyof FleetSide;
  label: string;
  decimals: number;
  ratio: boolean;
  check?: boolean;
}

function fleetRows(r: FleetResult): FleetRow[] {
  const n = r.clients * r.servers;
  return [
    { key: 'processes', label: 'processes', decimals: 0, ratio: false },
    { key: 'connections', label: 'client connections', decimals: 0, ratio: false },
    { key: 'totalRssMiB', label: `total RSS after tools/list + ${r.calls} calls each, ${r.idleMs} ms idle (MiB)`, decimals: 1, ratio: true, check: true },
    { key: 'totalPssMiB', label: 'total PSS, shared pages counted once (MiB)', decimals: 1, ratio: true },
    { key: 'rssPerConnectionMiB', label: 'RSS per connection (MiB)', decimals: 2, ratio: true },
    { key: 'restingRssMiB', label: 'gateway RSS before any client (MiB)', decimals: 1, ratio: false },
    { key: 'firstToolsListMs', label: `a client's first tools/list, ${r.servers} servers at once (ms, median of ${n}; proxies: from spawn)`, decimals: 0, ratio: true },
    { key: 'firstToolsListMaxMs', label: 'the same, slowest (ms)', decimals: 0, ratio: true },
    { key: 'readyMs', label: `all ${n} connections ready (ms, wall)`, decimals: 0, ratio: true },
  ];
}

function fleetCells(r: FleetResult): { header: string[]; body: string[][] } {
  const proxies = r.sides['mcp-oauth'];
  const header = ['figure', 'mcp-oauth gateway (1 process)', `mcp-oauth proxy × ${r.clients * r.servers}`, `mcp-remote × ${r.clients * r.servers}`, 'gateway/proxies', 'mcp-remote/proxies', 'target met?'];
  const body = fleetRows(r).map((row) => [
    row.label,
    ...FLEET_TARGETS.map((t) => fmt(r.sides[t]?.[row.key] ?? null, row.decimals)),
    row.ratio ? ratioText(r.sides.gateway?.[row.key], proxies?.[row.key]) : '—',
    row.ratio ? ratioText(r.sides['mcp-remote']?.[row.key], proxies?.[row.key]) : '—',
    row.check ? checkText(r.check) : '',
  ]);
  return { header, body };
}

export function fleetHeading(r: FleetResult): string[] {
  return [
    `${r.clients} clients × ${r.servers} servers = ${r.clients * r.servers} client connections (each: connect, tools/list, ${r.calls} echo calls; a client's servers at once, the clients in turn)`,
    ...Object.entries(r.unavailable).map(([t, why]) => `${TARGET_LABELS[t as FleetTarget]}: n/a (${why.replace(/^[^:]+: /, '')})`),
  ];
}

export function fleetTextTable(r: FleetResult): string {
  const { header, body } = fleetCells(r);
  return renderText(header, body);
}

export function fleetMarkdownTable(r: FleetResult): string {
  const { header, body } = fleetCells(r);
  return renderMarkdown(header, body);
}
