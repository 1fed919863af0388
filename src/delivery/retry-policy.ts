/** How temporary failures are retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included; after the last, the delivery fails. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** 6 attempts over about an hour: 30 s, 1, 2, 4, 8 minutes… capped at 1 hour. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 30_000, maxDelayMs: 3_600_000 };

/** Exponential backoff with jitter (50–100 % of the step), so retries of a failed batch spread out. */
export function retryDelayMs(policy: RetryPolicy, attempt: number, random: () => number): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step * (0.5 + random() * 0.5));
}
