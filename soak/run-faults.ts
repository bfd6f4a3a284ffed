/**
 * The token endpoint failing for stretches while the fleet keeps calling: 503s, then requests that
 * get no answer within the client's HTTP deadline (MCP_OAUTH_HTTP_TIMEOUT_MS lowered for the run;
 * the fault layer never forwards them, so nothing is spent at the authorization server). A short
 * stretch ends before the access token expires; a long one outlasts it. The rule checked: a call
 * may fail only once the access token has actually expired (graceful degradation: a refresh that
 * fails transiently leaves the current token in use until it expires), and every failure stops
 * once the token endpoint is back.
 */
import { CallStats } from './counters.ts';
import type { FaultMode } from './fault-server.ts';
import { finishRun, openWindow, sleep, type RunResult, type RunBaseOptions } from './measure.ts';
import { proxyFleet } from './run-fleet.ts';
import { createWorld } from './world.ts';

export interface FaultRunOptions extends RunBaseOptions {
  procsPerHost: number;
  httpTimeoutMs: number;
  quick: boolean;
  /** Last, a stretch where the AS rotates the refresh token but answers after the client's
   * deadline: the client never sees the new token, so this loses the sign-in like a kill after
   * the rotation does (off by default). */
  lateAnswers: boolean;
  log: (line: string) => void;
}

interface Stretch {
  label: string;
  mode: FaultMode;
  /** In token lifetimes. */
  lifetimes: number;
}

/** Slack for "the token had expired": JWT `exp` is whole seconds from the AS's clock. */
const EXPIRY_SLACK_MS = 1000;

export async function faultRun(o: FaultRunOptions): Promise<RunResult> {
  const world = await createWorld({ ttlSeconds: o.ttlSeconds, hosts: 1, store: 'file', cli: o.cli, extraEnv: { MCP_OAUTH_HTTP_TIMEOUT_MS: String(o.httpTimeoutMs) } });
  const fleet = proxyFleet(world, o, new CallStats());
  const stretches: Stretch[] = o.quick
    ? [
        { label: '503, long', mode: { kind: 'status', status: 503 }, lifetimes: 1.5 },
        { label: 'no answer, long', mode: { kind: 'hang' }, lifetimes: 1.5 },
      ]
    : [
        { label: '503, short', mode: { kind: 'status', status: 503 }, lifetimes: 0.6 },
        { label: '503, long', mode: { kind: 'status', status: 503 }, lifetimes: 2 },
        { label: 'no answer, short', mode: { kind: 'hang' }, lifetimes: 0.6 },
        { label: 'no answer, long', mode: { kind: 'hang' }, lifetimes: 2 },
      ];
  if (o.lateAnswers) stretches.push({ label: 'late answer', mode: { kind: 'late', delayMs: o.httpTimeoutMs + 500 }, lifetimes: 0.6 });
  const gapLifetimes = o.quick ? 1 : 2;
  try {
    await world.login(0);
    o.log(`${o.id}: starting ${fleet.members.length} proxy processes`);
    await fleet.up();
    const window = openWindow(world);
    fleet.start();
    await sleep(world.ttlMs);
    const spans: Array<{ stretch: Stretch; from: number; to: number; attempts: number; faulted: number; answersLost: number }> = [];
    for (const stretch of stretches) {
      const attempts0 = world.fault.stats.refreshAttempts;
      const faulted0 = world.fault.stats.refreshesFaulted;
      const lost0 = world.fault.stats.answersLost;
      const from = Date.now();
      world.fault.setMode(stretch.mode);
      o.log(`${o.id}: token endpoint ${stretch.label} for ${stretch.lifetimes} token lifetimes`);
      await sleep(stretch.lifetimes * world.ttlMs);
      world.fault.setMode({ kind: 'pass' });
      const to = Date.now();
      await sleep(gapLifetimes * world.ttlMs);
      spans.push({ stretch, from, to, attempts: world.fault.stats.refreshAttempts - attempts0, faulted: world.fault.stats.refreshesFaulted - faulted0, answersLost: world.fault.stats.answersLost - lost0 });
    }
    await fleet.stop();
    window.endedAt = Date.now();

    // Each failure belongs to the stretch it happened in or right after (until the next stretch).
    const failures = fleet.stats.failures;
    const rows = spans.map((span, i) => {
      const until = spans[i + 1]?.from ?? window.endedAt;
      const mine = failures.filter((f) => f.at >= span.from && f.at < until);
      const withValidToken = mine.filter((f) => f.at < world.fault.validUntil(f.at) - EXPIRY_SLACK_MS);
      const expired = world.fault.validUntil(span.to) < span.to;
      const lastFailure = mine.length ? Math.max(...mine.map((f) => f.at)) : undefined;
      return {
        stretch: span.stretch.label,
        seconds: Math.round((span.to - span.from) / 100) / 10,
        refreshAttempts: span.attempts,
        refreshesFailed: span.faulted,
        answersTooLate: span.answersLost,
        tokenExpiredDuringStretch: expired,
        callsFailed: mine.length,
        callsFailedWithValidToken: withValidToken.length,
        lastFailureAfterStretchEndMs: lastFailure === undefined ? null : Math.max(0, lastFailure - span.to),
      };
    });
    const before = failures.filter((f) => f.at < (spans[0]?.from ?? window.endedAt)).length;
    const violations = rows.reduce((s, r) => s + r.callsFailedWithValidToken, 0) + before;
    const lines = rows.map(
      (r) =>
        `${r.stretch.padEnd(17)} ${String(r.seconds).padStart(5)} s: ${r.refreshAttempts} refresh attempts (${r.refreshesFailed} failed${r.answersTooLate ? `, ${r.answersTooLate} answered after the client gave up` : ''}), token ${r.tokenExpiredDuringStretch ? 'expired meanwhile' : 'still valid at the end'}; ${r.callsFailed} calls failed, ${r.callsFailedWithValidToken} of them while a valid token existed${r.lastFailureAfterStretchEndMs === null ? '' : `; last failure ${(r.lastFailureAfterStretchEndMs / 1000).toFixed(1)} s after the stretch ended`}`,
    );
    lines.push(`calls failed with a valid token: ${violations}${before ? ` (${before} before the first stretch)` : ''} (valid: before the newest delivered token's expires_in ran out, less ${EXPIRY_SLACK_MS} ms)`);
    return await finishRun({ id: o.id, title: o.title, store: 'file', hosts: 1 }, world, fleet, window, {
      details: { httpTimeoutMs: o.httpTimeoutMs, stretches: rows, callsFailedWithValidToken: violations, failuresBeforeFirstStretch: before },
      lines,
    });
  } finally {
    world.fault.setMode({ kind: 'pass' });
    await fleet.stop();
    await world.close();
  }
}
