import { systemClock, type Clock, type RetryWindow } from '@shoal/protocol';

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

/** Waits `ms` on `clock` (default: the platform's timers), or less if `signal` aborts; the timer is always released. */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const cancel = clock.after(ms, done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * How long a paced client waits before it reconnects: uniform in [min, max] (whole milliseconds),
 * so the devices a round did not need come back spread over the window, not together.
 */
export function paceDelay(window: RetryWindow, random: () => number): number {
  return Math.min(window.max, window.min + Math.floor(random() * (window.max - window.min + 1)));
}
