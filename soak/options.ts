/**
 * The soak's flags. Defaults are the numbers (64 proxies; 4 hosts × 16; 30 gateway
 * clients; 20 kills; 20 expiries); `--quick` is the tiny version CI runs, `--scale` shrinks the
 * process counts for a smaller machine, and every count and duration has its own flag.
 */
import { parseArgs } from 'node:util';

export const RUNS = ['file', 'redis', 'gateway', 'kills', 'faults', 'redis-restart'] as const;
export type RunId = (typeof RUNS)[number];

export interface SoakOptions {
  runs: RunId[];
  json: boolean;
  /** Also write the JSON to this file (the human output still goes to stdout). */
  out?: string;
  quick: boolean;
  ttlSeconds: number;
  expiries: number;
  intervalMs: number;
  /** Run `file`: proxies on one home. */
  fileProcs: number;
  /** Run `redis`: hosts × processes per host. */
  redisHosts: number;
  redisProcsPerHost: number;
  gatewayClients: number;
  gatewayExpiries: number;
  kills: number;
  killHosts: number;
  killProcsPerHost: number;
  killStore: 'file' | 'redis';
  /** Redis lease TTL in the runs on Redis (MCP_OAUTH_REDIS_LEASE_MS), in proportion to the short tokens. */
  leaseMs: number;
  faultProcs: number;
  /** MCP_OAUTH_HTTP_TIMEOUT_MS in the fault run (the hanging token endpoint outlasts it). */
  httpTimeoutMs: number;
  /** The fault run ends with a stretch where the AS rotates but answers after the client's deadline. */
  lateAnswers: boolean;
  restartHosts: number;
  restartProcsPerHost: number;
  signinTimeoutSeconds: number;
  cli: string;
}

export const USAGE = `npm run soak -- [RUN flags] [options]
runs (default: all): --file --redis --gateway --kills --faults --redis-restart
options: --quick (tiny counts, a few seconds per run) --json (to stdout) --out FILE (JSON to FILE) --scale F (process counts × F)
  --ttl S (access token lifetime, 4) --expiries N (20) --interval-ms MS (per client, 500)
  --file-procs N (64) --redis-hosts N (4) --redis-procs N (16) --gateway-clients N (30) --gateway-expiries N (20)
  --kill-count N (20) --kill-hosts N (2) --kill-procs N (4) --kill-store redis|file (redis) --lease-ms MS (3000)
  --fault-procs N (8) --http-timeout-ms MS (1500) --late-answers (faults: end with answers after the deadline; loses the sign-in) --restart-hosts N (2) --restart-procs N (4)`;

const INTS = {
  ttl: 'ttlSeconds', expiries: 'expiries', 'interval-ms': 'intervalMs', 'file-procs': 'fileProcs', 'redis-hosts': 'redisHosts',
  'redis-procs': 'redisProcsPerHost', 'gateway-clients': 'gatewayClients', 'gateway-expiries': 'gatewayExpiries', 'kill-count': 'kills',
  'kill-hosts': 'killHosts', 'kill-procs': 'killProcsPerHost', 'lease-ms': 'leaseMs', 'fault-procs': 'faultProcs',
  'http-timeout-ms': 'httpTimeoutMs', 'restart-hosts': 'restartHosts', 'restart-procs': 'restartProcsPerHost',
} as const satisfies Record<string, keyof SoakOptions>;

/** Process counts scaled by --scale (at least 1 each). */
const SCALED: Array<keyof SoakOptions> = ['fileProcs', 'redisProcsPerHost', 'gatewayClients', 'killProcsPerHost', 'faultProcs', 'restartProcsPerHost'];

export function defaults(quick: boolean, cli: string): SoakOptions {
  const full: SoakOptions = {
    runs: [...RUNS], json: false, quick, ttlSeconds: 4, expiries: 20, intervalMs: 500,
    fileProcs: 64, redisHosts: 4, redisProcsPerHost: 16, gatewayClients: 30, gatewayExpiries: 20,
    kills: 20, killHosts: 2, killProcsPerHost: 4, killStore: 'redis', leaseMs: 3000,
    faultProcs: 8, httpTimeoutMs: 1500, lateAnswers: false, restartHosts: 2, restartProcsPerHost: 4, signinTimeoutSeconds: 5, cli,
  };
  if (!quick) return full;
  return {
    ...full, ttlSeconds: 2, expiries: 2, intervalMs: 250, fileProcs: 4, redisHosts: 2, redisProcsPerHost: 2,
    gatewayClients: 3, gatewayExpiries: 2, kills: 2, killHosts: 1, killProcsPerHost: 2, leaseMs: 2000,
    faultProcs: 2, httpTimeoutMs: 800, restartHosts: 1, restartProcsPerHost: 2, signinTimeoutSeconds: 3,
  };
}

export function parseOptions(argv: string[], cli: string): SoakOptions {
  const intOptions = Object.fromEntries(Object.keys(INTS).map((k) => [k, { type: 'string' as const }]));
  const { values } = parseArgs({
    args: argv,
    options: {
      ...intOptions,
      ...Object.fromEntries(RUNS.map((r) => [r, { type: 'boolean' as const }])),
      quick: { type: 'boolean' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      scale: { type: 'string' },
      'kill-store': { type: 'string' },
      'late-answers': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const o = defaults(Boolean(values.quick), cli);
  o.json = Boolean(values.json);
  if (values.out) o.out = values.out;
  o.lateAnswers = Boolean(values['late-answers']);
  const chosen = RUNS.filter((r) => (values as Record<string, unknown>)[r]);
  if (chosen.length) o.runs = chosen;
  const scale = values.scale === undefined ? 1 : Number(values.scale);
  if (!(scale > 0)) throw new Error(`--scale takes a positive number, not ${JSON.stringify(values.scale)}`);
  for (const k of SCALED) (o[k] as number) = Math.max(1, Math.round((o[k] as number) * scale));
  for (const [flag, key] of Object.entries(INTS)) {
    const raw = (values as Record<string, unknown>)[flag];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} takes a positive integer, not ${JSON.stringify(raw)}`);
    (o[key] as number) = n;
  }
  const store = values['kill-store'];
  if (store !== undefined) {
    if (store !== 'file' && store !== 'redis') throw new Error(`--kill-store takes file or redis, not ${JSON.stringify(store)}`);
    o.killStore = store;
  }
  return o;
}
