/** Reconnection policy; every field has a default. */
export interface BackoffOptions {
  /** First delay. Default 500 ms. */
  readonly initialDelayMs?: number;
  /** Upper bound of any delay. Default 30,000 ms. */
  readonly maxDelayMs?: number;
  /** Reconnect attempts after a connection is lost or refused, before run() rejects. Default Infinity. */
  readonly maxAttempts?: number;
}

/**
 * Exponential backoff with "full jitter": a uniform delay in [0, min(max, initial·2^attempt)], so a
 * crowd of clients that lost the coordinator at once does not reconnect in lock-step.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number): number {
  const initial = options.initialDelayMs ?? 500;
  const max = options.maxDelayMs ?? 30_000;
  const ceiling = Math.min(max, initial * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/** Waits `ms`, or less if `signal` aborts; the timer is always released. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
