/**
 * The 2025-era GET stream (MCP spec "Listening for Messages from the Server"): kept open for
 * server-initiated requests and notifications while the session lives.
 */
import type { Logger } from '../types.ts';
import { pause, readSse, reconnectDelayMs, sseBodyOf, type SseCursor } from './sse.ts';

export interface EventStreamHooks {
  logger: Logger;
  /** False once the session this stream belongs to was replaced. */
  stillCurrent(): boolean;
  /** GET with Last-Event-ID; undefined when it failed in a way worth retrying. */
  open(lastEventId: string | undefined, signal: AbortSignal): Promise<Response | undefined>;
  deliver(data: string): void;
  /** The server forgot the session (404): start a new one now, not at the client's next request. */
  sessionGone(): Promise<void>;
}

/**
 * 405 = the server offers no stream. A drop reconnects after `retry:` (or backoff) and resumes with
 * Last-Event-ID so the server can replay what was missed (MCP spec "Resumability and Redelivery").
 */
export async function listenForServerMessages(hooks: EventStreamHooks, signal: AbortSignal): Promise<void> {
  const { logger } = hooks;
  const cursor: SseCursor = {};
  for (let failures = 0; !signal.aborted && hooks.stillCurrent(); ) {
    let res: Response | undefined;
    try {
      res = await hooks.open(cursor.lastEventId, signal);
    } catch (err) {
      if (signal.aborted) return;
      logger.debug('could not open the event stream', { error: String(err) });
    }
    if (res?.status === 405) {
      logger.debug('the MCP server offers no event stream (GET 405)');
      return;
    }
    if (res?.status === 404) {
      await hooks.sessionGone().catch((err: unknown) => logger.warn('re-initializing the session failed', { error: String(err) }));
      return;
    }
    if (res) {
      failures = 0;
      logger.debug('event stream open', { resumedFrom: cursor.lastEventId !== undefined });
      try {
        await readSse(sseBodyOf(res), (e) => {
          if (e.data) hooks.deliver(e.data);
        }, cursor);
      } catch (err) {
        if (signal.aborted) return;
        logger.debug('the event stream broke', { error: String(err) });
      }
      if (signal.aborted) return;
      await pause(reconnectDelayMs(0, cursor.retryMs ?? 1000), signal);
    } else {
      await pause(reconnectDelayMs(failures++, cursor.retryMs), signal);
    }
  }
}
