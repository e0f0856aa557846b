import { describe, expect, it } from 'vitest';
import { meanDelta, WeightedSum } from '../src/index.js';

describe('WeightedSum', () => {
  it('computes the weighted sum and mean of three clients by hand', () => {
    // Client A: delta [1, 2],  weight 1  →  1·[1, 2]  = [1, 2]
    // Client B: delta [3, -1], weight 2  →  2·[3, -1] = [6, -2]
    // Client C: delta [0, 4],  weight 3  →  3·[0, 4]  = [0, 12]
    // weightedSum = [7, 12], totalWeight = 6, mean = [7/6, 2].
    const sum = new WeightedSum(2);
    sum.add(Float32Array.of(1, 2), 1);
    sum.add(Float32Array.of(3, -1), 2);
    sum.add(Float32Array.of(0, 4), 3);
    expect(sum.count).toBe(3);
    expect(sum.totalWeight).toBe(6);
    const aggregate = sum.result();
    expect(Array.from(aggregate.weightedSum)).toEqual([7, 12]);
    expect(aggregate.totalWeight).toBe(6);
    expect(aggregate.count).toBe(3);
    const mean = meanDelta(aggregate);
    expect(mean[0]).toBeCloseTo(7 / 6, 15);
    expect(mean[1]).toBe(2);
  });

  it('accumulates in Float64, keeping precision a Float32 sum would lose', () => {
    // 1 + 1e-8·1000 = 1.00001 is representable in Float64 to ~1e-16, but a Float32 accumulator
    // rounds every 1 + 1e-8 back to 1 and ends at exactly 1.
    const sum = new WeightedSum(1);
    sum.add(Float32Array.of(1), 1);
    for (let i = 0; i < 1000; i++) sum.add(Float32Array.of(1e-8), 1);
    expect(sum.result().weightedSum[0]).toBeCloseTo(1 + 1000 * Math.fround(1e-8), 12);
  });

  it('counts an update of weight 0 but gives it no weight', () => {
    const sum = new WeightedSum(1);
    sum.add(Float32Array.of(5), 0);
    sum.add(Float32Array.of(2), 4);
    expect(sum.count).toBe(2);
    expect(meanDelta(sum.result())[0]).toBe(2);
  });

  it('returns a snapshot: later adds do not change an earlier result', () => {
    const sum = new WeightedSum(2);
    sum.add(Float32Array.of(1, 1), 1);
    const first = sum.result();
    sum.add(Float32Array.of(10, 10), 1);
    expect(Array.from(first.weightedSum)).toEqual([1, 1]);
    expect(first.totalWeight).toBe(1);
    expect(Array.from(sum.result().weightedSum)).toEqual([11, 11]);
  });

  it('rejects wrong lengths and bad weights with RangeError, leaving the sum untouched', () => {
    const sum = new WeightedSum(3);
    expect(() => sum.add(new Float32Array(2), 1)).toThrow(RangeError);
    expect(() => sum.add(new Float32Array(4), 1)).toThrow(/4 values; the model has 3/);
    expect(() => sum.add(new Float32Array(3), -1)).toThrow(RangeError);
    expect(() => sum.add(new Float32Array(3), Number.NaN)).toThrow(RangeError);
    expect(() => sum.add(new Float32Array(3), Infinity)).toThrow(RangeError);
    expect(sum.count).toBe(0);
    expect(sum.totalWeight).toBe(0);
  });

  it('rejects a bad parameter count', () => {
    expect(() => new WeightedSum(-1)).toThrow(RangeError);
    expect(() => new WeightedSum(1.5)).toThrow(RangeError);
  });
});

describe('meanDelta', () => {
  it('throws when nothing carries weight', () => {
    expect(() => meanDelta(new WeightedSum(2).result())).toThrow(RangeError);
    const zeroWeight = new WeightedSum(1);
    zeroWeight.add(Float32Array.of(1), 0);
    expect(() => meanDelta(zeroWeight.result())).toThrow(/totalWeight 0/);
  });

  it('does not mutate the aggregate', () => {
    const aggregate = { weightedSum: Float64Array.of(2, 4), totalWeight: 2, count: 1 };
    meanDelta(aggregate);
    expect(Array.from(aggregate.weightedSum)).toEqual([2, 4]);
  });
});
