/**
 * What a running gateway tells the rest of the CLI (`status`, `list`, `doctor`, `install
 * --gateway`): HOME/gateway.json, written atomically (0600) when `serve` is listening and removed
 * when it stops. A file left by a gateway that died is recognised by its pid and by the health
 * check, so a stale file never makes a stopped gateway look running.
 */
import { join } from 'node:path';
import { fsPromises } from '../builtins.ts';
import { writeFileAtomic } from '../store/atomic-write.ts';

export interface GatewayState {
  pid: number;
  /** Base URL, e.g. http://127.0.0.1:7319 */
  url: string;
  startedAt: string;
  /** Configured servers it serves, by name. */
  servers: string[];
  tls: boolean;
}

export interface GatewayStatus {
  running: boolean;
  /** Why it is not running, or what the state file says when it is. */
  detail: string;
  state?: GatewayState;
}

/** Unauthenticated and says nothing but that this is an mcp-oauth gateway and its pid. */
export const HEALTH_PATH = '/.well-known/mcp-oauth-gateway';

export function gatewayStateFile(home: string): string {
  return join(home, 'gateway.json');
}

export async function writeGatewayState(home: string, state: GatewayState): Promise<void> {
  await writeFileAtomic(gatewayStateFile(home), JSON.stringify(state, null, 2) + '\n');
}

export async function removeGatewayState(home: string, pid: number): Promise<void> {
  const current = await readGatewayState(home);
  // Another gateway may have started since: its file is not ours to remove.
  if (current && current.pid !== pid) return;
  await fsPromises().rm(gatewayStateFile(home), { force: true });
}

export async function readGatewayState(home: string): Promise<GatewayState | undefined> {
  try {
    const value = JSON.parse(await fsPromises().readFile(gatewayStateFile(home), 'utf8')) as GatewayState;
    return typeof value?.pid === 'number' && typeof value.url === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Is the gateway of this HOME running? Reads the state file, then asks the gateway itself (1 s). */
export async function gatewayStatus(home: string, fetchImpl: typeof fetch = fetch): Promise<GatewayStatus> {
  const state = await readGatewayState(home);
  if (!state) return { running: false, detail: 'not running (start it with: mcp-oauth serve)' };
  if (!pidAlive(state.pid)) return { running: false, detail: `not running (process ${state.pid} is gone; start it with: mcp-oauth serve)`, state };
  try {
    const res = await fetchImpl(new URL(HEALTH_PATH, state.url), { signal: AbortSignal.timeout(1000) });
    const body = (await res.json().catch(() => undefined)) as { pid?: unknown } | undefined;
    if (res.ok && body?.pid === state.pid) return { running: true, detail: `running at ${state.url} (pid ${state.pid})`, state };
    return { running: false, detail: `not answering at ${state.url} (HTTP ${res.status})`, state };
  } catch (err) {
    return { running: false, detail: `not answering at ${state.url} (${err instanceof Error ? err.message : String(err)})`, state };
  }
}
