/**
 * `mcp-oauth serve` for the benchmarks: one gateway process per setup (its home, its file store,
 * every server of its config), started like a user would (`serve --port 0 --json`: the address is
 * the first stdout line), stopped with SIGTERM. Its pid is what the CPU and memory figures read.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { FileCredentialStore } from '../src/store/file-store.ts';
import { gatewaySecret } from '../src/gateway/secret.ts';
import { gatewayEndpoint } from '../src/gateway/address.ts';
import type { BenchSetup } from './targets.ts';

export interface BenchGateway {
  url: string;
  pid: number;
  /** The gateway secret its clients present (never printed). */
  secret: string;
  /** BASE/servers/NAME/mcp */
  endpoint(name: string): string;
  stderr(): string;
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;
const STDERR_KEEP = 8192;

export async function startBenchGateway(setup: BenchSetup): Promise<BenchGateway> {
  const child = spawn(process.execPath, [setup.cli, 'serve', '--port', '0', '--json'], { env: setup.oauthEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  // Always drain stderr: a full pipe would stall the gateway.
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-STDERR_KEEP)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  const line = await new Promise<string>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`mcp-oauth serve did not listen within ${START_TIMEOUT_MS} ms\n${stderr}`)), START_TIMEOUT_MS);
    createInterface({ input: child.stdout }).once('line', resolve);
    void exited.then(() => reject(new Error(`mcp-oauth serve exited with ${child.exitCode} before it listened\n${stderr}`)));
  }).finally(() => clearTimeout(timer));
  const { url, pid } = JSON.parse(line) as { url: string; pid: number };
  // serve created the secret in the store before it listened.
  const secret = await gatewaySecret(new FileCredentialStore(setup.oauthHome), { create: false });
  if (!secret) throw new Error('mcp-oauth serve listens but its store holds no gateway secret');
  return {
    url,
    pid,
    secret,
    endpoint: (name) => gatewayEndpoint(url, name),
    stderr: () => stderr,
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}
