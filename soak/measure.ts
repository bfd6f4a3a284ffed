/**
 * The figures every run reports, from the clients (calls, failures, latency), the authorization
 * server (refreshes, reuse detections, concurrency), the fault layer and the stored credential.
 */
import type { Fleet } from './fleet.ts';
import type { World, CounterSnapshot } from './world.ts';
import type { CallStats } from './counters.ts';

export interface RunResult {
  id: string;
  title: string;
  /** Why the run did not run (the figures below are then zero). */
  skipped?: string;
  clients: number;
  hosts: number;
  store: string;
  ttlSeconds: number;
  durationSeconds: number;
  calls: ReturnType<CallStats['summary']>;
  /** grant_type=refresh_token requests the authorization server received during the window. */
  refreshes: number;
  /** Refresh requests that reached the fault layer (503s and timeouts included). */
  refreshAttempts: number;
  /** Window / access token lifetime. */
  expiries: number;
  /** Window / (¾ lifetime): mcp-oauth refreshes once a quarter of the lifetime is left (margin
   * min(60 s, lifetime / 4)), so one refresh per ¾ lifetime is one refresh per expiry. */
  expectedRefreshes: number;
  /** The most token requests the AS had in flight at once (1: never two refreshes at once). */
  maxConcurrentTokenRequests: number;
  /** Rotated refresh tokens presented again (oidc-provider revoked the grant each time). */
  reuseDetections: number;
  /** Times the shared credential needed a new sign-in (marked needsSignIn, or gone). */
  signInsLost: number;
  /** Calls that failed with a sign-in-required error. */
  signInErrors: number;
  /** Browser launches by the fleet (sign-ins it attempted; the soak's $BROWSER refuses them). */
  browserLaunches: number;
  /** Clients whose proxy or connection died without the soak killing it. */
  crashes: Array<{ member: number; stderr: string }>;
  connectFailures: string[];
  /** Run-specific figures (kills, stretches, the Redis restart, the gateway's memory). */
  details: Record<string, unknown>;
  /** Run-specific lines for the human table. */
  lines: string[];
}

export function skippedRun(id: string, title: string, reason: string, ttlSeconds: number): RunResult {
  return {
    id, title, skipped: reason, clients: 0, hosts: 0, store: '-', ttlSeconds, durationSeconds: 0,
    calls: { made: 0, failed: 0, cut: 0, p50Ms: null, p99Ms: null, maxMs: null, failuresByKind: {}, sampleFailures: [] },
    refreshes: 0, refreshAttempts: 0, expiries: 0, expectedRefreshes: 0, maxConcurrentTokenRequests: 0, reuseDetections: 0, signInsLost: 0,
    signInErrors: 0, browserLaunches: 0, crashes: [], connectFailures: [], details: {}, lines: [],
  };
}

export interface Window {
  startedAt: number;
  endedAt: number;
  /** AS counters when the window opened (refreshes are counted from there). */
  atStart: CounterSnapshot;
  /** Fault-layer refresh attempts when the window opened. */
  attemptsAtStart: number;
}

export function openWindow(world: World): Window {
  return { startedAt: Date.now(), endedAt: 0, atStart: world.counters(), attemptsAtStart: world.fault.stats.refreshAttempts };
}

/**
 * The common figures. Reuse detections and browser launches count the whole run (start-up
 * included); `relogins` are the sign-ins the soak had to redo (the kill run), counted as lost.
 */
export async function finishRun(
  base: { id: string; title: string; store: string; hosts: number },
  world: World,
  fleet: Fleet,
  window: Window,
  extra: { relogins?: number; details?: Record<string, unknown>; lines?: string[] } = {},
): Promise<RunResult> {
  const end = world.counters();
  const calls = fleet.stats.summary();
  const credential = await world.credential();
  const endLost = !credential || credential.needsSignIn ? 1 : 0;
  const durationMs = window.endedAt - window.startedAt;
  return {
    ...base,
    clients: fleet.members.length,
    ttlSeconds: world.ttlMs / 1000,
    durationSeconds: Math.round(durationMs / 100) / 10,
    calls,
    refreshes: end.refreshes - window.atStart.refreshes,
    refreshAttempts: world.fault.stats.refreshAttempts - window.attemptsAtStart,
    expiries: Math.round((durationMs / world.ttlMs) * 10) / 10,
    expectedRefreshes: Math.round((durationMs / (0.75 * world.ttlMs)) * 10) / 10,
    maxConcurrentTokenRequests: end.maxConcurrentTokenRequests,
    reuseDetections: end.reuseDetections,
    signInsLost: (extra.relogins ?? 0) + endLost,
    signInErrors: calls.failuresByKind.signin ?? 0,
    browserLaunches: await world.browserLaunches(),
    crashes: fleet.crashes(),
    connectFailures: fleet.connectFailures,
    details: extra.details ?? {},
    lines: extra.lines ?? [],
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves with `p`, or rejects after `ms` with `what` in the message. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** What every soak run is told: its name, its line in the report, and the clients' pace. */
export interface RunBaseOptions {
  id: string;
  title: string;
  cli: string;
  ttlSeconds: number;
  intervalMs: number;
  signinTimeoutSeconds: number;
}
