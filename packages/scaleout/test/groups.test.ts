/**
 * A gateway's group split (fast-check): every admitted device in exactly one group, every group at
 * least `groupSize`, sizes within one of each other, floor(n / groupSize) groups; the same seed
 * gives the same split.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSeededRandom } from '@shoal/protocol';
import { splitIntoGroups } from '@shoal/scaleout';

describe('splitIntoGroups', () => {
  it('puts every admitted device in exactly one group of at least groupSize, sizes within one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 1, max: 300 }), fc.integer(), (n, groupSize, seed) => {
        const admitted = Array.from({ length: n }, (_, i) => `c${i}`);
        const groups = splitIntoGroups(admitted, groupSize, createSeededRandom(seed));
        expect(groups).toHaveLength(Math.floor(n / groupSize));
        const sizes = groups.map((group) => group.length);
        for (const size of sizes) expect(size).toBeGreaterThanOrEqual(groupSize);
        if (sizes.length > 0) expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        const placed = groups.flat();
        expect(new Set(placed).size).toBe(placed.length); // no device twice
        // Every device is placed once there is a group at all; with none, none is.
        expect(placed.sort()).toEqual(groups.length > 0 ? [...admitted].sort() : []);
      }),
      { seed: 14, numRuns: 300 },
    );
  });

  it('is a function of the seed, and shuffles', () => {
    const admitted = Array.from({ length: 1_300 }, (_, i) => i);
    const first = splitIntoGroups(admitted, 200, createSeededRandom(3));
    expect(splitIntoGroups(admitted, 200, createSeededRandom(3))).toEqual(first);
    expect(first.map((group) => group.length)).toEqual([217, 217, 217, 217, 216, 216]);
    // Shuffled: the first group is not the first 217 admitted.
    expect(first[0]).not.toEqual(admitted.slice(0, 217));
  });

  it('without groupSize keeps one group of every admitted device', () => {
    expect(splitIntoGroups(['a', 'b', 'c'], undefined, createSeededRandom(1))).toEqual([['a', 'b', 'c']]);
    expect(splitIntoGroups([], undefined, createSeededRandom(1))).toEqual([]);
  });

  it('refuses a groupSize that is not a positive integer', () => {
    expect(() => splitIntoGroups(['a'], 0, createSeededRandom(1))).toThrow(/groupSize must be a positive integer, got 0/);
  });
});
