/**
 * The calls every figure is made of, checked so a proxy that answered wrongly cannot look fast.
 */
import type { BenchClient, Connection, TargetId } from './targets.ts';

const ECHO_TEXT = 'ping';

function firstText(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content;
  const first = content?.[0];
  if (!first || first.type !== 'text' || typeof first.text !== 'string') throw new Error(`unexpected tool result: ${JSON.stringify(result).slice(0, 200)}`);
  return first.text;
}

export async function callEcho(client: BenchClient): Promise<void> {
  const text = firstText(await client.callTool({ name: 'echo', arguments: { text: ECHO_TEXT } }));
  if (text !== ECHO_TEXT) throw new Error(`echo answered ${JSON.stringify(text.slice(0, 50))}`);
}

export async function callBig(client: BenchClient, kb: number): Promise<void> {
  const text = firstText(await client.callTool({ name: 'big', arguments: { kb } }));
  if (text.length !== kb * 1024) throw new Error(`big answered ${text.length} characters, not ${kb * 1024}`);
}

/** Round r visits the connections starting at a different one, so no target always goes first. */
export function inRoundOrder<T extends { target: TargetId }>(items: T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Splits `total` into `parts` near-equal positive chunks (fewer parts when total is small). */
export function chunks(total: number, parts: number): number[] {
  const n = Math.max(1, Math.min(parts, total));
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

export type ByTarget<T> = Partial<Record<TargetId, T>>;
export type { Connection };
