import type { Clock } from '@shoal/coordinator';

/** How often a gateway or a leader reads Redis while it waits (a few reads per second per process). */
export const POLL_MS = 100;

/**
 * Polls `probe` every POLL_MS until it yields a value, `signal` aborts, or `timeoutMs` passes on
 * `clock` (then undefined).
 */
export async function waitFor<T>(clock: Clock, signal: AbortSignal, probe: () => Promise<T | undefined>, timeoutMs = Number.POSITIVE_INFINITY): Promise<T | undefined> {
  const until = clock.now() + timeoutMs;
  while (!signal.aborted) {
    const value = await probe();
    if (value !== undefined) return value;
    if (clock.now() >= until) return undefined;
    await new Promise<void>((resolve) => {
      const cancel = clock.after(POLL_MS, () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
      const onAbort = () => {
        cancel();
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
  return undefined;
}
