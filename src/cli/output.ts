/** Human and --json rendering shared by the commands. */
import { McpOAuthError } from '../errors.ts';
import type { CliContext } from './context.ts';

export function printJson(ctx: CliContext, value: unknown): void {
  ctx.out(JSON.stringify(value, null, 2));
}

export function printError(ctx: CliContext, e: unknown): void {
  const err = e instanceof McpOAuthError ? e : new McpOAuthError('internal', e instanceof Error ? e.message : String(e), { cause: e });
  if (ctx.json) {
    ctx.out(JSON.stringify({ error: err.toJSON() }, null, 2));
    return;
  }
  ctx.note(`error: ${err.message}`);
  if (err.hint) ctx.note(`next: ${err.hint}`);
  if (ctx.debug && err.code === 'internal' && e instanceof Error && e.stack) ctx.note(e.stack);
}

/** "in 4m 12s", "3m ago", "unknown". */
export function relativeTime(at: number | undefined, now: number): string {
  if (at === undefined) return 'unknown';
  const delta = Math.round((at - now) / 1000);
  const abs = Math.abs(delta);
  const text = abs < 60 ? `${abs}s` : abs < 3600 ? `${Math.floor(abs / 60)}m ${abs % 60}s` : abs < 86400 ? `${Math.floor(abs / 3600)}h ${Math.floor((abs % 3600) / 60)}m` : `${Math.floor(abs / 86400)}d`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

/** ✓ / ✗ step lines for doctor-style traces. */
export function stepLine(ok: boolean | 'skip', title: string, detail?: string): string {
  const mark = ok === 'skip' ? '-' : ok ? '✓' : '✗';
  return `${mark} ${title}${detail ? `: ${detail}` : ''}`;
}
