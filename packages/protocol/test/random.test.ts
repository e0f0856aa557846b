import { describe, expect, it } from 'vitest';
import { createSeededRandom, shuffled } from '../src/index.js';
import type { SeededRandom } from '../src/index.js';

const take = (random: SeededRandom, count: number) => Array.from({ length: count }, () => random.next());

describe('createSeededRandom', () => {
  it('gives the same stream for the same seed', () => {
    expect(take(createSeededRandom(42), 100)).toEqual(take(createSeededRandom(42), 100));
  });

  it('gives different streams for different seeds, including neighbouring ones', () => {
    const streams = [0, 1, 2, 42, 0xffffffff].map((seed) => take(createSeededRandom(seed), 8).join());
    expect(new Set(streams).size).toBe(streams.length);
  });

  it('next() is uniform in [0, 1): in range, and each tenth gets about a tenth of 20k draws', () => {
    const random = createSeededRandom(7);
    const buckets = new Array<number>(10).fill(0);
    const draws = take(random, 20_000);
    expect(draws.every((x) => x >= 0 && x < 1)).toBe(true);
    for (const x of draws) buckets[Math.floor(x * 10)]!++;
    for (const bucket of buckets) expect(Math.abs(bucket - 2000)).toBeLessThan(200); // > 4.7 σ
  });

  it('nextInt(bound) stays in [0, bound) and reaches every value', () => {
    const random = createSeededRandom(3);
    for (const bound of [1, 2, 7, 1000]) {
      const seen = new Set<number>();
      const values = Array.from({ length: 20 * bound }, () => random.nextInt(bound));
      expect(values.every((value) => Number.isInteger(value) && value >= 0 && value < bound)).toBe(true);
      for (const value of values) seen.add(value);
      expect(seen.size).toBe(bound);
    }
  });

  it('nextInt rejects a bound that is not a positive integer', () => {
    const random = createSeededRandom(1);
    for (const bound of [0, -1, 1.5, NaN]) expect(() => random.nextInt(bound)).toThrow(RangeError);
  });

  it('nextGaussian has mean ≈ 0 and variance ≈ 1 over 20k draws', () => {
    const random = createSeededRandom(11);
    const draws = Array.from({ length: 20_000 }, () => random.nextGaussian());
    expect(draws.every(Number.isFinite)).toBe(true);
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    const variance = draws.reduce((a, b) => a + (b - mean) ** 2, 0) / (draws.length - 1);
    // Standard errors: mean 1/√20000 ≈ 0.007, variance √(2/20000) = 0.01; allow ~5 σ.
    expect(Math.abs(mean)).toBeLessThan(0.035);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });

  it('fork() gives a reproducible stream independent of the parent', () => {
    const parent = createSeededRandom(5);
    const child = parent.fork();
    const again = createSeededRandom(5).fork();
    expect(take(child, 20)).toEqual(take(again, 20));
    expect(take(parent, 20)).not.toEqual(take(createSeededRandom(5).fork(), 20));
  });
});

describe('shuffled', () => {
  const items = Array.from({ length: 50 }, (_, i) => i);

  it('returns a permutation and leaves the input untouched', () => {
    const copy = [...items];
    const result = shuffled(items, createSeededRandom(9));
    expect(items).toEqual(copy);
    expect([...result].sort((a, b) => a - b)).toEqual(items);
    expect(result).not.toEqual(items);
  });

  it('is reproducible from the seed and differs across seeds', () => {
    expect(shuffled(items, createSeededRandom(9))).toEqual(shuffled(items, createSeededRandom(9)));
    expect(shuffled(items, createSeededRandom(9))).not.toEqual(shuffled(items, createSeededRandom(10)));
  });

  it('handles empty and single-item lists', () => {
    expect(shuffled([], createSeededRandom(1))).toEqual([]);
    expect(shuffled(['only'], createSeededRandom(1))).toEqual(['only']);
  });
});
