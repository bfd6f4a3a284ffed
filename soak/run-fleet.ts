/**
 * The steady runs: N `mcp-oauth proxy` processes calling a tool continuously while the access token
 * expires again and again. One MCP_OAUTH_HOME on the file store (every process on one machine), or
 * simulated hosts with separate homes and nothing shared but Redis. One headless sign-in; nothing
 * else may ever need one.
 */
import { watch, type FSWatcher } from 'node:fs';
import { CallStats, percentile } from './counters.ts';
import { Fleet, stdioDialer } from './fleet.ts';
import { finishRun, openWindow, sleep, type RunResult } from './measure.ts';
import { SERVER_NAME, createWorld, type World } from './world.ts';

export interface ProxyFleetOptions {
  cli: string;
  intervalMs: number;
  procsPerHost: number;
  signinTimeoutSeconds: number;
}

/** A proxy fleet over the world's hosts: `procsPerHost` processes per MCP_OAUTH_HOME. */
export function proxyFleet(world: World, o: ProxyFleetOptions, stats = new CallStats()): Fleet {
  const fleet = new Fleet({ stats, intervalMs: o.intervalMs });
  world.envs.forEach((env, host) => {
    for (let p = 0; p < o.procsPerHost; p++) fleet.add(stdioDialer({ cli: o.cli, serverName: SERVER_NAME, env, signinTimeoutSeconds: o.signinTimeoutSeconds }), host);
  });
  return fleet;
}

export interface FleetRunOptions extends ProxyFleetOptions {
  id: string;
  title: string;
  ttlSeconds: number;
  expiries: number;
  hosts: number;
  store: 'file' | 'redis';
  redis?: { url: string; keyB64: string };
  log: (line: string) => void;
}

/**
 * The window no client can close (a process killed inside it loses the rotated refresh token):
 * from the rotated token's answer leaving the token endpoint to that token being in the store.
 * File store: the atomic rename of credentials.json, seen by inotify in this process (so an upper
 * bound: it includes this process's own event-loop delay).
 */
function persistWindows(world: World, writes: number[], from: number, to: number): number[] {
  const out: number[] = [];
  for (const d of world.fault.deliveries) {
    if (!d.refresh || d.at < from || d.at > to) continue;
    const w = writes.find((t) => t >= d.at);
    if (w !== undefined) out.push(w - d.at);
  }
  return out.sort((a, b) => a - b);
}

export async function steadyRun(o: FleetRunOptions): Promise<RunResult> {
  const world = await createWorld({ ttlSeconds: o.ttlSeconds, hosts: o.hosts, store: o.store, redis: o.redis, cli: o.cli });
  const fleet = proxyFleet(world, o);
  const writes: number[] = [];
  let watcher: FSWatcher | undefined;
  try {
    if (o.store === 'file') {
      watcher = watch(world.homes[0]!, (_event, name) => {
        if (name === 'credentials.json') writes.push(Date.now());
      });
    }
    await world.login(0);
    o.log(`${o.id}: starting ${fleet.members.length} proxy processes on ${o.hosts} home(s), ${o.store} store`);
    await fleet.up();
    const window = openWindow(world);
    fleet.start();
    o.log(`${o.id}: calling for ${o.expiries} token lifetimes of ${o.ttlSeconds} s`);
    await sleep(o.expiries * o.ttlSeconds * 1000);
    await fleet.stop();
    window.endedAt = Date.now();
    const persisted = watcher ? persistWindows(world, writes, window.startedAt, window.endedAt) : [];
    const p = (q: number) => percentile(persisted, q);
    return await finishRun({ id: o.id, title: o.title, store: o.store, hosts: o.hosts }, world, fleet, window, {
      details: persisted.length ? { persistWindowMs: { refreshes: persisted.length, p50: p(50), p99: p(99), max: p(100) } } : {},
      lines: persisted.length
        ? [`rotated token answered → stored (credentials.json renamed): p50 ${p(50)} ms, max ${p(100)} ms over ${persisted.length} refreshes (the window a kill -9 cannot be survived in)`]
        : [],
    });
  } finally {
    watcher?.close();
    await fleet.stop();
    await world.close();
  }
}
