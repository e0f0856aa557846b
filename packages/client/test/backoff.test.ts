import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffDelay, sleep } from '../src/common/backoff.js';

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, scaled by jitter', () => {
    const top = () => 0.999999;
    expect(backoffDelay(0, { initialDelayMs: 100 }, top)).toBe(99);
    expect(backoffDelay(3, { initialDelayMs: 100 }, top)).toBe(799);
    expect(backoffDelay(30, { initialDelayMs: 100, maxDelayMs: 5_000 }, top)).toBe(4_999);
  });

  it('spreads clients over [0, ceiling] (full jitter)', () => {
    expect(backoffDelay(4, { initialDelayMs: 100 }, () => 0)).toBe(0);
    expect(backoffDelay(4, { initialDelayMs: 100 }, () => 0.5)).toBe(800);
  });

  it('uses 500 ms and 30 s as defaults', () => {
    expect(backoffDelay(0, {}, () => 0.999999)).toBe(499);
    expect(backoffDelay(20, {}, () => 0.999999)).toBe(29_999);
  });
});

// On vitest's fake timers: time moves only when the test says so, so "early" and "not before" are exact.
describe('sleep', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  /** Whether `promise` has settled once the jobs already queued have run (no time passes). */
  async function settled(promise: Promise<unknown>): Promise<boolean> {
    let done = false;
    void promise.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    return done;
  }

  it('ends early when the signal aborts, and releases its timer', async () => {
    const controller = new AbortController();
    const sleeping = sleep(10_000, controller.signal);
    await vi.advanceTimersByTimeAsync(20);
    expect(await settled(sleeping)).toBe(false);
    controller.abort();
    expect(await settled(sleeping)).toBe(true); // 20 ms of the 10,000 passed
    expect(vi.getTimerCount()).toBe(0);
  });

  it('without an abort, ends at its delay and not before', async () => {
    const sleeping = sleep(10_000, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(await settled(sleeping)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled(sleeping)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});
