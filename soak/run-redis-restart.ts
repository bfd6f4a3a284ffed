/**
 * Redis stopped and started again on the same port mid-run, with its data persisted (SHUTDOWN
 * SAVE writes the RDB file; the new server loads it). While it is down the proxies keep calling
 * with the token they hold; once that token expires their refreshes cannot take the lease, so calls
 * fail with a transient error (nothing is overwritten). Once Redis is back every process calls
 * again with the same grant: no sign-in is lost.
 */
import type { RedisServer } from '../test/helpers/redis-server.ts';
import { fingerprint } from '../src/secrets.ts';
import { CallStats } from './counters.ts';
import { finishRun, openWindow, sleep, type RunResult, type RunBaseOptions } from './measure.ts';
import { proxyFleet } from './run-fleet.ts';
import { createWorld } from './world.ts';

export interface RedisRestartOptions extends RunBaseOptions {
  hosts: number;
  procsPerHost: number;
  leaseMs: number;
  /** Fewer token lifetimes after the restart (CI's tiny soak). */
  quick: boolean;
  redis: RedisServer;
  keyB64: string;
  log: (line: string) => void;
}

/** Down for this many token lifetimes: long enough for the token to expire while Redis is away. */
const DOWN_LIFETIMES = 2;

export async function redisRestartRun(o: RedisRestartOptions): Promise<RunResult> {
  const world = await createWorld({
    ttlSeconds: o.ttlSeconds, hosts: o.hosts, store: 'redis', redis: { url: o.redis.url, keyB64: o.keyB64 }, cli: o.cli,
    extraEnv: { MCP_OAUTH_REDIS_LEASE_MS: String(o.leaseMs) },
  });
  const stats = new CallStats();
  stats.keepSuccessTimes();
  const fleet = proxyFleet(world, o, stats);
  try {
    await world.login(0);
    o.log(`${o.id}: starting ${fleet.members.length} proxy processes on ${o.hosts} hosts`);
    await fleet.up();
    const window = openWindow(world);
    fleet.start();
    await sleep(world.ttlMs);
    // Stop right after a refresh was answered, so no refresh is between the AS and Redis at that
    // moment (that window is the kill run's subject).
    const deliveries = world.fault.deliveries.length;
    const deadline = Date.now() + 2 * world.ttlMs;
    while (world.fault.deliveries.length === deliveries && Date.now() < deadline) await sleep(20);
    // …and once the refreshing process has stored it (the AS's newest refresh token is in Redis).
    const issued = () => world.sandbox.counters.issuers[world.sandbox.issuer]?.issued ?? [];
    const newestIssued = issued()[issued().length - 1];
    let before = await world.credential();
    for (let i = 0; i < 100 && (!before?.refreshToken || fingerprint(before.refreshToken) !== newestIssued); i++) {
      await sleep(20);
      before = await world.credential();
    }
    const stoppedAt = Date.now();
    o.log(`${o.id}: stopping Redis (SHUTDOWN SAVE) for ${DOWN_LIFETIMES} token lifetimes`);
    await o.redis.stop({ save: true });
    await sleep(DOWN_LIFETIMES * world.ttlMs);
    // Before start(): a proxy may refresh in the moment between Redis answering and start() returning.
    const issuedBefore = issued().length;
    await o.redis.start();
    const restartedAt = Date.now();
    // The store's first command after the restart may still meet the old connection: retry a little.
    let afterRestart = await world.credential();
    for (let i = 0; !afterRestart && i < 50; i++) {
      await sleep(100);
      afterRestart = await world.credential();
    }
    o.log(`${o.id}: Redis is back`);
    await sleep((o.quick ? 2 : 3) * world.ttlMs);
    await fleet.stop();
    window.endedAt = Date.now();

    const failures = stats.failures;
    const whileDown = failures.filter((f) => f.at >= stoppedAt && f.at < restartedAt);
    const afterBack = failures.filter((f) => f.at >= restartedAt);
    // The newest access token when Redis went away, and when it expired (conservatively, less 1 s
    // for JWT `exp` being whole seconds): a failure before then had a valid token in the store.
    const newestExpiresAt = world.fault.validUntil(stoppedAt) - 1000;
    const beforeNewestExpired = whileDown.filter((f) => f.at < newestExpiresAt).length;
    const firstFailureMs = whileDown.length ? Math.min(...whileDown.map((f) => f.at)) - stoppedAt : null;
    // Recovery: per member, its first success after the restart (only members that failed matter).
    const failedMembers = new Set(failures.filter((f) => f.at >= stoppedAt).map((f) => f.member));
    const recoveries = [...failedMembers].map((m) => {
      const next = (stats.successesAt.get(m) ?? []).find((t) => t >= restartedAt);
      return next === undefined ? null : next - restartedAt;
    });
    const unrecovered = recoveries.filter((r) => r === null).length;
    const maxRecovery = recoveries.reduce<number>((m, r) => (r === null ? m : Math.max(m, r)), 0);
    const lastFailureAfterRestartMs = afterBack.length ? Math.max(...afterBack.map((f) => f.at)) - restartedAt : null;
    // Intact: the refresh token stored before the stop, or one the AS issued once Redis was back
    // (a process refreshed before this read); never a needsSignIn mark.
    const issuedSince = new Set(issued().slice(issuedBefore));
    const state = !afterRestart
      ? 'unreadable'
      : afterRestart.needsSignIn
        ? 'marked needs sign-in'
        : afterRestart.refreshToken === before?.refreshToken
          ? 'unchanged'
          : afterRestart.refreshToken && issuedSince.has(fingerprint(afterRestart.refreshToken))
            ? 'refreshed since the restart'
            : 'different';
    const intact = state === 'unchanged' || state === 'refreshed since the restart';
    const fp = (t: string | undefined) => (t ? fingerprint(t) : 'none');
    return await finishRun({ id: o.id, title: o.title, store: 'redis', hosts: o.hosts }, world, fleet, window, {
      details: {
        downSeconds: Math.round((restartedAt - stoppedAt) / 100) / 10,
        callsFailedWhileDown: whileDown.length,
        callsFailedWhileDownBeforeTheNewestTokenExpired: beforeNewestExpired,
        newestTokenExpiredAfterStopMs: newestExpiresAt - stoppedAt,
        firstFailureAfterStopMs: firstFailureMs,
        callsFailedAfterRestart: afterBack.length,
        lastFailureAfterRestartMs,
        processesThatFailed: failedMembers.size,
        processesNotRecovered: unrecovered,
        maxRecoveryMs: maxRecovery,
        credentialIntact: intact,
        credentialAfterRestart: state,
      },
      lines: [
        `Redis down ${((restartedAt - stoppedAt) / 1000).toFixed(1)} s: ${whileDown.length} calls failed while it was down${firstFailureMs === null ? '' : `, the first ${(firstFailureMs / 1000).toFixed(1)} s after the stop`}; ${afterBack.length} after it was back${lastFailureAfterRestartMs === null ? '' : ` (the last ${(lastFailureAfterRestartMs / 1000).toFixed(1)} s after the restart)`}`,
        `the newest access token expired ${((newestExpiresAt - stoppedAt) / 1000).toFixed(1)} s after the stop (less 1 s of slack); ${beforeNewestExpired} calls failed before that${beforeNewestExpired ? ' (calls failed although a valid token was in hand: a regression of the TokenManager\'s store-outage fallback)' : ''}`,
        `recovery: ${failedMembers.size - unrecovered} of ${failedMembers.size} processes that saw failures called successfully again, all within ${(maxRecovery / 1000).toFixed(1)} s of the restart`,
        `credential after the restart: ${intact ? 'intact' : 'NOT INTACT'}, ${state} (refresh token ${fp(before?.refreshToken)} before the stop, ${fp(afterRestart?.refreshToken)} after the restart)`,
      ],
    });
  } finally {
    await fleet.stop();
    await world.close();
  }
}
