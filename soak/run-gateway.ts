/**
 * Many Streamable HTTP clients through one gateway (`mcp-oauth serve --port 0 --json`): one
 * process, one credential, one refresh per expiry however many clients call. Clients present the
 * gateway secret (src/gateway/secret.ts, created in the home's store before the gateway starts).
 * When the gateway cannot be started, the run is reported as skipped, with the reason.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { FileCredentialStore } from '../src/store/file-store.ts';
import { CallStats } from './counters.ts';
import { Fleet, httpDialer } from './fleet.ts';
import { finishRun, openWindow, skippedRun, sleep, within, type RunResult } from './measure.ts';
import { SERVER_NAME, createWorld } from './world.ts';

export interface GatewayRunOptions {
  id: string;
  title: string;
  cli: string;
  ttlSeconds: number;
  intervalMs: number;
  expiries: number;
  clients: number;
  log: (line: string) => void;
}

function peakRssMiB(pid: number | undefined): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

/** Starts the gateway; resolves with its base URL from the `--json` line, or rejects with why not. */
function startGateway(cli: string, env: Record<string, string>): { child: ChildProcess; ready: Promise<string>; stderr: () => string } {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--json', '--signin-timeout', '5'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-2000)));
  const ready = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => {
      try {
        const url = (JSON.parse(line) as { url?: unknown }).url;
        if (typeof url === 'string') return resolve(url);
      } catch {
        // fall through
      }
      reject(new Error(`unexpected first line from mcp-oauth serve --json: ${line.slice(0, 200)}`));
    });
    child.once('exit', (code) => reject(new Error(`mcp-oauth serve exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' ')}`)));
    child.once('error', reject);
  });
  return { child, ready, stderr: () => stderr };
}

export async function gatewayRun(o: GatewayRunOptions): Promise<RunResult> {
  const world = await createWorld({ ttlSeconds: o.ttlSeconds, hosts: 1, store: 'file', cli: o.cli });
  const stats = new CallStats();
  const fleet = new Fleet({ stats, intervalMs: o.intervalMs });
  let gateway: ReturnType<typeof startGateway> | undefined;
  try {
    await world.login(0);
    let base: string;
    let secret: string;
    try {
      const { gatewaySecret } = await import('../src/gateway/secret.ts');
      secret = (await gatewaySecret(new FileCredentialStore(world.homes[0]!), { create: true }))!;
      gateway = startGateway(o.cli, world.envs[0]!);
      base = await within(gateway.ready, 20_000, 'mcp-oauth serve');
    } catch (err) {
      return skippedRun(o.id, o.title, `gateway not available: ${(err as Error).message.split('\n')[0]}`, o.ttlSeconds);
    }
    const endpoint = `${base}/servers/${SERVER_NAME}/mcp`;
    for (let i = 0; i < o.clients; i++) fleet.add(httpDialer({ url: endpoint, headers: { authorization: `Bearer ${secret}` } }));
    o.log(`${o.id}: connecting ${o.clients} clients to ${endpoint}`);
    try {
      await fleet.up();
    } catch (err) {
      return skippedRun(o.id, o.title, `gateway not available: ${(err as Error).message.split('\n')[0]}`, o.ttlSeconds);
    }
    const window = openWindow(world);
    fleet.start();
    await sleep(o.expiries * world.ttlMs);
    await fleet.stop();
    window.endedAt = Date.now();
    const rss = peakRssMiB(gateway.child.pid);
    return await finishRun({ id: o.id, title: o.title, store: 'file', hosts: 1 }, world, fleet, window, {
      details: { gatewayPeakRssMiB: rss },
      lines: [`gateway process: one, peak RSS ${rss ?? '-'} MiB for ${o.clients} clients`],
    });
  } finally {
    await fleet.stop();
    if (gateway && gateway.child.exitCode === null) {
      const exited = new Promise((r) => gateway!.child.once('exit', r));
      gateway.child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (gateway.child.exitCode === null) gateway.child.kill('SIGKILL');
    }
    await world.close();
  }
}
