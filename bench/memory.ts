/**
 * Idle memory: resident set (VmRSS) of each process after initialize + tools/list and `idleMs` of
 * quiet. The floor's figure is a bare SDK client process (the cold-start child), for scale.
 */
import type { ByTarget } from './calls.ts';
import type { TargetId } from './targets.ts';
import { memoryMiB, sleep } from './stats.ts';

export async function measureIdleRss(pids: ByTarget<number | undefined>, idleMs: number): Promise<ByTarget<number | null>> {
  await sleep(idleMs);
  const out: ByTarget<number | null> = {};
  for (const [target, pid] of Object.entries(pids) as Array<[TargetId, number | undefined]>) out[target] = memoryMiB(pid, 'VmRSS');
  return out;
}
