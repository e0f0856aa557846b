import { ShoalError } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { checkSecAggParams, deriveSecAggParams, neighbourGraph, roundConfig, secAggPlusDegree } from '../src/index.js';
import { seededShuffle } from './harness.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('neighbourGraph', () => {
  it('is complete when the degree is the cohort size (full SecAgg), whatever the shuffle', () => {
    const graph = neighbourGraph([4, 2, 9, 7], 4, () => {
      throw new Error('full SecAgg needs no shuffle');
    });
    expect(Object.fromEntries(graph)).toEqual({ 4: [2, 7, 9], 2: [4, 7, 9], 9: [2, 4, 7], 7: [2, 4, 9] });
  });

  it.each([
    [12, 11],
    [12, 7],
    [100, 21],
    [500, 27],
    [7, 3],
  ])('SecAgg+ with n = %i, k = %i: every client has k − 1 neighbours, never itself, symmetrically', (n, k) => {
    const graph = neighbourGraph(range(n), k, seededShuffle(n * k));
    expect(graph.size).toBe(n);
    for (const [index, neighbours] of graph) {
      expect(neighbours).toHaveLength(k - 1);
      expect(new Set(neighbours).size).toBe(k - 1);
      expect(neighbours).not.toContain(index);
      for (const neighbour of neighbours) expect(graph.get(neighbour)).toContain(index);
    }
  });

  it('is the Harary ring over the shuffled order: neighbours are the (k − 1)/2 nearest places on each side', () => {
    const n = 15;
    const k = 5;
    let ring: number[] = [];
    const recordingShuffle = <T>(items: readonly T[]) => {
      const result = seededShuffle(3)(items);
      ring = result as unknown as number[];
      return result;
    };
    const graph = neighbourGraph(range(n), k, recordingShuffle);
    expect([...ring].sort((a, b) => a - b)).toEqual(range(n));
    for (const [position, index] of ring.entries()) {
      const expected = [-2, -1, 1, 2].map((step) => ring[(position + step + n) % n]!).sort((a, b) => a - b);
      expect(graph.get(index)).toEqual(expected);
    }
    expect(ring).not.toEqual(range(n)); // the order really is shuffled
  });

  it('is determined by the injected shuffle: same seed, same graph; another seed, another graph', () => {
    const a = neighbourGraph(range(50), 9, seededShuffle(1));
    const b = neighbourGraph(range(50), 9, seededShuffle(1));
    const c = neighbourGraph(range(50), 9, seededShuffle(2));
    expect(Object.fromEntries(a)).toEqual(Object.fromEntries(b));
    expect(Object.fromEntries(a)).not.toEqual(Object.fromEntries(c));
  });

  it('refuses even degrees below n, degrees out of range, bad indices and a shuffle that is not a permutation', () => {
    const shuffle = seededShuffle(1);
    expect(() => neighbourGraph(range(10), 4, shuffle)).toThrow(/must be odd/);
    expect(() => neighbourGraph(range(10), 11, shuffle)).toThrow(/degree must be an integer in 1..10/);
    expect(() => neighbourGraph([1, 2, 2], 3, shuffle)).toThrow(/appears twice/);
    expect(() => neighbourGraph([0, 1, 2], 3, shuffle)).toThrow(/positive integer/);
    expect(() => neighbourGraph(range(10), 3, <T>(items: readonly T[]) => items.slice(1))).toThrow(/permutation/);
    expect(() => neighbourGraph(range(10), 3, <T>(items: readonly T[]) => items.map(() => items[0]!))).toThrow(/permutation/);
  });
});

describe('deriveSecAggParams', () => {
  const base = { numParams: 100, bound: 1, maxWeight: 100 };

  it.each([
    // n, k, t: k = smallest odd ≥ 3·log2 n (at most n), t = ⌊0.7·k⌋.
    [10, 10, 7],
    [12, 11, 7],
    [100, 21, 14],
    [500, 27, 18],
    [10_000, 41, 28],
    [100_000, 51, 35],
  ])('SecAgg+ for n = %i: k = %i, t = %i', (n, k, t) => {
    const params = deriveSecAggParams({ mode: 'secagg+', cohortSize: n, ...base });
    expect([params.degree, params.threshold]).toEqual([k, t]);
    expect(secAggPlusDegree(n)).toBe(k);
    expect(2 * params.threshold).toBeGreaterThanOrEqual(params.degree + 2);
    expect(params.threshold).toBeLessThanOrEqual(0.7 * params.degree);
    expect(() => checkSecAggParams(params)).not.toThrow();
  });

  it('full SecAgg uses every client: k = n, t = ⌊(1 − maxDropout)·n⌋', () => {
    expect(deriveSecAggParams({ mode: 'secagg', cohortSize: 500, ...base })).toMatchObject({ degree: 500, threshold: 350 });
    expect(deriveSecAggParams({ mode: 'secagg', cohortSize: 10, maxDropout: 0.1, ...base })).toMatchObject({ degree: 10, threshold: 9 });
    expect(deriveSecAggParams({ mode: 'secagg', cohortSize: 10, maxDropout: 0.3, ...base })).toMatchObject({ threshold: 7 });
  });

  it('keeps given values that satisfy the rules and chooses the scale for the cohort', () => {
    const params = deriveSecAggParams({ mode: 'secagg+', cohortSize: 200, degree: 31, threshold: 20, ...base });
    expect(params).toMatchObject({ mode: 'secagg+', cohortSize: 200, numParams: 100, degree: 31, threshold: 20, bound: 1, maxWeight: 100 });
    expect(200 * (2 * params.bound * params.scale + 1)).toBeLessThan(2 ** 32);
    expect(roundConfig(params, 17, 'run-1')).toEqual({ mode: 'secagg+', index: 17, threshold: 20, degree: 31, bound: 1, scale: params.scale, maxWeight: 100, sessionId: 'run-1' });
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['a threshold below half the degree', { mode: 'secagg+', cohortSize: 100, degree: 21, threshold: 10 }, /secagg\.threshold \(10\) must exceed \(k \+ 1\)\/2 for secagg\.degree \(21\)/],
    ['a threshold of (k + 1)/2, where a lying coordinator needs no colluder', { mode: 'secagg+', cohortSize: 100, degree: 21, threshold: 11, maxDropout: 0.45 }, /secagg\.threshold \(11\) must exceed \(k \+ 1\)\/2/],
    ['a SecAgg+ cohort of 5 at the default maxDropout (t = 3 = (k + 1)/2)', { mode: 'secagg+', cohortSize: 5 }, /⌊\(1 − 0\.3\)·5⌋ = 3, must be at least 2 and exceed \(5 \+ 1\)\/2/],
    ['a threshold above what maxDropout tolerates', { mode: 'secagg+', cohortSize: 100, degree: 21, threshold: 15 }, /secagg\.threshold \(15\) cannot tolerate secagg\.maxDropout 0\.3 of secagg\.degree \(21\) \(it allows at most 14\)/],
    ['a threshold above the degree', { mode: 'secagg+', cohortSize: 100, degree: 21, threshold: 22 }, /secagg\.threshold \(22\) exceeds secagg\.degree \(21\)/],
    ['a threshold of 1', { mode: 'secagg', cohortSize: 3, threshold: 1 }, /secagg\.threshold must be an integer ≥ 2, got 1/],
    ['an even SecAgg+ degree', { mode: 'secagg+', cohortSize: 100, degree: 20 }, /must be odd/],
    ['a degree above n', { mode: 'secagg+', cohortSize: 100, degree: 101 }, /secagg\.degree \(101\) exceeds the cohort \(100\)/],
    ['a full-SecAgg degree below n', { mode: 'secagg', cohortSize: 100, degree: 21 }, /secagg\.degree must be the cohort \(100\), got 21/],
    ['a cohort too small for any threshold', { mode: 'secagg', cohortSize: 4 }, /secagg\.maxDropout 0\.3 leaves no valid threshold for the cohort \(4\).*⌊\(1 − 0\.3\)·4⌋ = 2, must be at least 2 and exceed \(4 \+ 1\)\/2/],
    ['a cohort of 2', { mode: 'secagg', cohortSize: 2 }, /secagg\.mode secagg needs 3 to 100000 clients per round, but the cohort is 2/],
    ['maxDropout of one half', { mode: 'secagg', cohortSize: 10, maxDropout: 0.5 }, /secagg\.maxDropout must be a number in \[0, 0\.5\), got 0\.5: the threshold must exceed half/],
    ['an unknown mode', { mode: 'secagg++', cohortSize: 10 }, /mode must be 'secagg' or 'secagg\+'/],
    ['a fractional numParams', { mode: 'secagg', cohortSize: 10, numParams: 1.5 }, /numParams must be an integer ≥ 1/],
    ['weights that could wrap', { mode: 'secagg', cohortSize: 10_000, maxWeight: 1_000_000 }, /summed weight would wrap/],
  ])('refuses %s with INVALID_CONFIG', (_name, options, message) => {
    const attempt = () => deriveSecAggParams({ ...base, ...options } as Parameters<typeof deriveSecAggParams>[0]);
    expect(attempt).toThrow(ShoalError);
    expect(attempt).toThrow(message);
  });

  it('checkSecAggParams catches a scale that could wrap in params built by hand', () => {
    const params = deriveSecAggParams({ mode: 'secagg', cohortSize: 10, ...base });
    expect(() => checkSecAggParams({ ...params, scale: params.scale * 2 })).toThrow(/lower the scale/);
    expect(() => checkSecAggParams({ ...params, threshold: 5 })).toThrow(/must exceed \(k \+ 1\)\/2 for secagg\.degree/);
  });
});
