/**
 * `npm run soak`: mcp-oauth under load for minutes, against the sandbox's real authorization server
 * (oidc-provider: refresh-token rotation with reuse detection, access tokens of a few seconds) and
 * its MCP server. Prints, per run, the calls made and failed, the refreshes at the authorization
 * server against the expiries, reuse detections, sign-ins lost and call latency; then a summary.
 * A script that prints figures, not a test: it exits 0 unless the harness itself breaks.
 *
 *   node soak/run.ts [--file] [--redis] [--gateway] [--kills] [--faults] [--redis-restart] [--quick] [--json] …
 *
 * MCP_OAUTH_SOAK_CLI: the mcp-oauth JS entry (default bin/mcp-oauth.js, the bundle).
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { anyRedisServer, startRedisServer, type RedisServer } from '../test/helpers/redis-server.ts';
import { skippedRun, type RunResult } from './measure.ts';
import { parseOptions, type RunId, type SoakOptions } from './options.ts';
import { runBlock, summaryTable } from './report.ts';
import { steadyRun } from './run-fleet.ts';
import { killRun } from './run-kills.ts';
import { faultRun } from './run-faults.ts';
import { redisRestartRun } from './run-redis-restart.ts';
import { gatewayRun } from './run-gateway.ts';
import { repoRoot } from './world.ts';

const TITLES: Record<RunId, (o: SoakOptions) => string> = {
  file: (o) => `${o.fileProcs} proxy processes on one MCP_OAUTH_HOME (file store)`,
  redis: (o) => `${o.redisHosts} hosts × ${o.redisProcsPerHost} proxy processes, separate homes, nothing shared but Redis`,
  gateway: (o) => `${o.gatewayClients} Streamable HTTP clients through one gateway (mcp-oauth serve)`,
  kills: (o) => `kill -9 of the proxy process whose refresh is in flight, ${o.kills} times (${o.killHosts} × ${o.killProcsPerHost} processes, ${o.killStore} store)`,
  faults: (o) => `the token endpoint failing for stretches: 503s, and no answer within the client's ${o.httpTimeoutMs} ms deadline (${o.faultProcs} proxies)`,
  'redis-restart': (o) => `Redis stopped and started again mid-run (${o.restartHosts} hosts × ${o.restartProcsPerHost} proxies)`,
};

const log = (line: string) => process.stderr.write(`soak: ${line}\n`);

/** A Redis server for one run (fresh data), or the reason there is none. */
async function withRedis<T>(o: SoakOptions, id: RunId, fn: (redis: RedisServer, keyB64: string) => Promise<RunResult>): Promise<RunResult> {
  const found = anyRedisServer();
  if (!found.binary) return skippedRun(id, TITLES[id](o), found.skip, o.ttlSeconds);
  const redis = await startRedisServer(found.binary);
  try {
    return await fn(redis, randomBytes(32).toString('base64'));
  } finally {
    await redis.close();
  }
}

async function runOne(id: RunId, o: SoakOptions): Promise<RunResult> {
  const title = TITLES[id](o);
  const common = { cli: o.cli, intervalMs: o.intervalMs, signinTimeoutSeconds: o.signinTimeoutSeconds, ttlSeconds: o.ttlSeconds, log };
  switch (id) {
    case 'file':
      return steadyRun({ ...common, id, title, expiries: o.expiries, hosts: 1, procsPerHost: o.fileProcs, store: 'file' });
    case 'redis':
      return withRedis(o, id, (redis, keyB64) =>
        steadyRun({ ...common, id, title, expiries: o.expiries, hosts: o.redisHosts, procsPerHost: o.redisProcsPerHost, store: 'redis', redis: { url: redis.url, keyB64 } }));
    case 'gateway':
      return gatewayRun({ ...common, id, title, expiries: o.gatewayExpiries, clients: o.gatewayClients });
    case 'kills': {
      const kill = { ...common, id, title, kills: o.kills, hosts: o.killHosts, procsPerHost: o.killProcsPerHost, leaseMs: o.leaseMs };
      if (o.killStore === 'file') return killRun({ ...kill, store: 'file' });
      return withRedis(o, id, (redis, keyB64) => killRun({ ...kill, store: 'redis', redis: { url: redis.url, keyB64 } }));
    }
    case 'faults':
      return faultRun({ ...common, id, title, procsPerHost: o.faultProcs, httpTimeoutMs: o.httpTimeoutMs, quick: o.quick, lateAnswers: o.lateAnswers });
    case 'redis-restart':
      return withRedis(o, id, (redis, keyB64) =>
        redisRestartRun({ ...common, id, title, hosts: o.restartHosts, procsPerHost: o.restartProcsPerHost, leaseMs: o.leaseMs, quick: o.quick, redis, keyB64 }));
  }
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2), resolve(process.env.MCP_OAUTH_SOAK_CLI || join(repoRoot, 'bin', 'mcp-oauth.js')));
  const startedAt = new Date();
  const header = [
    `mcp-oauth soak — ${startedAt.toISOString()}${o.quick ? ' (--quick)' : ''}`,
    `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, load average at start ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    `sandbox: oidc-provider, refresh-token rotation with reuse detection, access tokens of ${o.ttlSeconds} s; each client calls \`echo\` every ${o.intervalMs} ms`,
    '',
  ].join('\n');
  if (!o.json) process.stdout.write(`${header}\n`);
  const results: RunResult[] = [];
  let broken = false;
  for (const id of o.runs) {
    const t0 = Date.now();
    log(`${id}: ${TITLES[id](o)}`);
    let result: RunResult;
    try {
      result = await runOne(id, o);
    } catch (err) {
      broken = true;
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      log(`${id}: the harness failed: ${message}`);
      result = skippedRun(id, TITLES[id](o), `the soak harness failed: ${message.split('\n')[0]}`, o.ttlSeconds);
    }
    log(`${id}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    results.push(result);
    if (!o.json) process.stdout.write(`${runBlock(result)}\n`);
  }
  const totalSeconds = Math.round((Date.now() - startedAt.getTime()) / 1000);
  const json = `${JSON.stringify({ startedAt: startedAt.toISOString(), totalSeconds, node: process.version, options: { ...o, cli: undefined }, runs: results }, null, 2)}\n`;
  if (o.out) await writeFile(o.out, json);
  if (o.json) {
    process.stdout.write(json);
  } else {
    process.stdout.write(`Summary (${totalSeconds} s in all)\n${summaryTable(results)}\n`);
  }
  return broken ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
