/**
 * kill -9 of the proxy process whose refresh is in flight, again and again. The fault layer holds
 * the next refresh in one of two places, alternately:
 * - before the authorization server sees it: the process dies holding the lock (file lock or
 *   Redis lease) with nothing spent; the next process takes over once the lock is stale;
 * - after the authorization server rotated the refresh token, before the answer reached the
 *   process: the new refresh token dies with it, and the next process can only present the old,
 *   consumed one, which reuse detection answers by revoking the grant. No client can prevent this
 *   (it never saw the new token); mcp-oauth keeps the window to one HTTP answer by persisting the
 *   rotated token before anything else.
 * The process whose refresh is held is found from its TCP connection (socket-owner.ts), killed,
 * and started again (a client restarting its server). After each kill the soak waits for the next
 * refresh at the authorization server: accepted (nothing lost) or refused (the sign-in is lost;
 * the soak signs in again headlessly and goes on).
 */
import { CallStats } from './counters.ts';
import { finishRun, openWindow, sleep, within, type RunResult, type RunBaseOptions } from './measure.ts';
import { proxyFleet } from './run-fleet.ts';
import { pidOwningConnection } from './socket-owner.ts';
import { createWorld, type World } from './world.ts';
import type { InterceptPhase } from './fault-server.ts';

export interface KillRunOptions extends RunBaseOptions {
  kills: number;
  hosts: number;
  procsPerHost: number;
  store: 'file' | 'redis';
  redis?: { url: string; keyB64: string };
  leaseMs: number;
  log: (line: string) => void;
}

interface KillRecord {
  phase: InterceptPhase;
  pid?: number;
  /** 'refreshed': the next refresh was accepted; 'refused': it was refused (grant revoked). */
  outcome: 'refreshed' | 'refused' | 'owner-not-found' | 'no-refresh';
  reuseDetected: number;
  /** ms from the kill to the next accepted refresh (or to the new sign-in after a loss). */
  recoveryMs: number;
}

/** The AS's log of refresh requests (this issuer), as {status}. */
function refreshLog(world: World): Array<{ status: number }> {
  const mine = world.sandbox.counters.issuers[world.sandbox.issuer];
  return (mine?.tokenRequests ?? []).filter((t) => t.grantType === 'refresh_token');
}

async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(50);
  }
  return false;
}

export async function killRun(o: KillRunOptions): Promise<RunResult> {
  const extraEnv: Record<string, string> = o.store === 'redis' ? { MCP_OAUTH_REDIS_LEASE_MS: String(o.leaseMs) } : {};
  const world = await createWorld({ ttlSeconds: o.ttlSeconds, hosts: o.hosts, store: o.store, redis: o.redis, cli: o.cli, extraEnv });
  const fleet = proxyFleet(world, o, new CallStats());
  // A dead holder's lock: Redis lease TTL, or proper-lockfile's 10 s staleness on the file store.
  const lockMs = o.store === 'redis' ? o.leaseMs : 10_000;
  const records: KillRecord[] = [];
  let relogins = 0;
  try {
    await world.login(0);
    o.log(`${o.id}: starting ${fleet.members.length} proxy processes, ${o.store} store`);
    await fleet.up();
    const window = openWindow(world);
    fleet.start();
    for (let k = 0; k < o.kills; k++) {
      const phase: InterceptPhase = k % 2 === 0 ? 'before' : 'after';
      let held;
      try {
        held = await within(world.fault.intercept(phase), 3 * world.ttlMs + lockMs + 20_000, `kill ${k + 1}: waiting for a refresh`);
      } catch {
        world.fault.cancelIntercept();
        records.push({ phase, outcome: 'no-refresh', reuseDetected: 0, recoveryMs: 0 });
        continue;
      }
      const pid = await pidOwningConnection(held.remotePort, world.fault.port, fleet.pids());
      const member = pid === undefined ? undefined : fleet.byPid(pid);
      if (!member) {
        held.release(phase === 'before' ? 'forward' : 'deliver');
        records.push({ phase, outcome: 'owner-not-found', reuseDetected: 0, recoveryMs: 0 });
        continue;
      }
      const seen = refreshLog(world).length;
      const reuseBefore = world.counters().reuseDetections;
      const killedAt = Date.now();
      await fleet.kill(member);
      held.release('drop');
      // The client starts its server again, as Codex or Claude Code would.
      const respawned = fleet.respawn(member);
      // The next refresh comes once the dead holder's lock is stale and a token goes stale.
      const next = await waitUntil(() => refreshLog(world).length > seen, lockMs + 2 * world.ttlMs + 20_000);
      const status = next ? refreshLog(world)[seen]!.status : 0;
      if (!next) {
        records.push({ phase, pid, outcome: 'no-refresh', reuseDetected: world.counters().reuseDetections - reuseBefore, recoveryMs: Date.now() - killedAt });
        await respawned;
        continue;
      }
      if (status === 200) {
        records.push({ phase, pid, outcome: 'refreshed', reuseDetected: world.counters().reuseDetections - reuseBefore, recoveryMs: Date.now() - killedAt });
        o.log(`${o.id}: kill ${k + 1}/${o.kills} (${phase} the AS answered): the next refresh was accepted`);
        await respawned;
        continue;
      }
      // Refused: the grant is gone. Wait for the fleet to mark it, then sign in again.
      await waitUntil(async () => Boolean((await world.credential())?.needsSignIn), 10_000);
      await world.login(0);
      relogins += 1;
      records.push({ phase, pid, outcome: 'refused', reuseDetected: world.counters().reuseDetections - reuseBefore, recoveryMs: Date.now() - killedAt });
      o.log(`${o.id}: kill ${k + 1}/${o.kills} (${phase} the AS answered): the next refresh was refused (HTTP ${status}); signed in again`);
      await respawned;
    }
    await sleep(world.ttlMs);
    await fleet.stop();
    window.endedAt = Date.now();
    const byPhase = (p: InterceptPhase) => records.filter((r) => r.phase === p);
    const summary = (p: InterceptPhase) => {
      const rs = byPhase(p);
      const lost = rs.filter((r) => r.outcome === 'refused').length;
      const reuse = rs.reduce((s, r) => s + r.reuseDetected, 0);
      const rec = rs.filter((r) => r.outcome === 'refreshed' || r.outcome === 'refused').map((r) => r.recoveryMs);
      return { kills: rs.length, signInsLost: lost, reuseDetections: reuse, missed: rs.filter((r) => r.outcome === 'owner-not-found' || r.outcome === 'no-refresh').length, maxRecoveryMs: rec.length ? Math.max(...rec) : null };
    };
    const before = summary('before');
    const after = summary('after');
    const line = (label: string, s: typeof before) =>
      `${label.padEnd(24)} ${s.kills} kills: ${s.signInsLost} sign-ins lost, ${s.reuseDetections} reuse detections${s.missed ? `, ${s.missed} not carried out (no refresh held, or its process not found)` : ''}; next accepted refresh or new sign-in within ${s.maxRecoveryMs === null ? '-' : (s.maxRecoveryMs / 1000).toFixed(1)} s`;
    return await finishRun({ id: o.id, title: o.title, store: o.store, hosts: o.hosts }, world, fleet, window, {
      relogins,
      details: { lockMs, killedBeforeTheAsAnswered: before, killedAfterTheAsRotated: after, kills: records, restartsRefused: fleet.restartFailures },
      lines: [
        line('killed before the AS', before),
        line('killed after AS rotated', after),
        ...(fleet.restartFailures.length ? [`${'restarts refused'.padEnd(24)} ${fleet.restartFailures.length} proxy starts failed while the sign-in was lost (tried again): ${fleet.restartFailures[0]}`] : []),
        `${''.padEnd(24)} (a dead holder's ${o.store === 'redis' ? `Redis lease expires after ${lockMs} ms (MCP_OAUTH_REDIS_LEASE_MS, default 15 s)` : 'file lock is stale after 10 s'}; sign-ins lost = new sign-ins the soak had to make)`,
      ],
    });
  } finally {
    world.fault.cancelIntercept();
    await fleet.stop();
    await world.close();
  }
}
