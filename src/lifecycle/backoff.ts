/**
 * Retry timing for transient refresh failures (network errors, 5xx, 429, `temporarily_unavailable`).
 * Exponential backoff with jitter so that many clients that lost the authorization server at the
 * same moment do not come back in lockstep.
 */

export interface RetryPolicy {
  /** Retries after the first failed try (default 3: waits of ~0.5 s, ~1 s, ~2 s). */
  attempts: number;
  baseDelayMs: number;
  /** Upper bound for one wait, including a server-sent Retry-After. */
  maxDelayMs: number;
  sleep: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY: Omit<RetryPolicy, 'sleep'> = { attempts: 3, baseDelayMs: 500, maxDelayMs: 8_000 };

export function realSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Wait before retry number `retry` (0-based): base·2^retry, ±25 % jitter, at least the server's
 * Retry-After (RFC 9110 §10.2.3: the server says when to come back), never above `maxDelayMs`.
 */
export function backoffDelayMs(
  retry: number,
  policy: { baseDelayMs: number; maxDelayMs: number },
  retryAfterSeconds?: number,
  random: () => number = Math.random,
): number {
  const exponential = policy.baseDelayMs * 2 ** retry;
  const jittered = exponential * (0.75 + random() * 0.5);
  const serverAsked = retryAfterSeconds !== undefined && Number.isFinite(retryAfterSeconds) && retryAfterSeconds > 0
    ? retryAfterSeconds * 1000
    : 0;
  return Math.round(Math.min(policy.maxDelayMs, Math.max(jittered, serverAsked)));
}
