import { describe, expect, it } from 'vitest';
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

describe('sleep', () => {
  it('ends early when the signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 20);
    await sleep(10_000, controller.signal);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
