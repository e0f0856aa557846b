import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { meanDelta, WeightedSum } from '../src/index.js';

const finiteFloat = fc.float({ min: -1e3, max: 1e3, noNaN: true, noDefaultInfinity: true });
const weight = fc.double({ min: 1e-3, max: 1e4, noNaN: true, noDefaultInfinity: true });

function mean(updates: readonly (readonly [Float32Array, number])[], numParams: number): Float64Array {
  const sum = new WeightedSum(numParams);
  for (const [delta, w] of updates) sum.add(delta, w);
  return meanDelta(sum.result());
}

describe('weighted mean properties', () => {
  it('the mean of identical deltas is that delta, whatever the weights', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }).chain((d) => fc.tuple(fc.float32Array({ minLength: d, maxLength: d, min: -1e3, max: 1e3, noNaN: true, noDefaultInfinity: true }), fc.array(weight, { minLength: 1, maxLength: 20 }))),
        ([delta, weights]) => {
          const result = mean(weights.map((w) => [delta, w] as const), delta.length);
          for (let i = 0; i < delta.length; i++) {
            expect(Math.abs(result[i]! - delta[i]!)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(delta[i]!)));
          }
        },
      ),
    );
  });

  it('is invariant under permutation of the updates (to float tolerance)', () => {
    const cohort = fc.integer({ min: 1, max: 8 }).chain((d) =>
      fc.array(fc.tuple(fc.array(finiteFloat, { minLength: d, maxLength: d }), weight), { minLength: 1, maxLength: 12 }).chain((updates) =>
        fc.tuple(fc.constant(d), fc.constant(updates), fc.shuffledSubarray(updates, { minLength: updates.length, maxLength: updates.length }))),
    );
    fc.assert(
      fc.property(cohort, ([d, updates, shuffled]) => {
        const toUpdates = (list: typeof updates) => list.map(([delta, w]) => [Float32Array.from(delta), w] as const);
        const a = mean(toUpdates(updates), d);
        const b = mean(toUpdates(shuffled), d);
        const scale = Math.max(1, ...updates.flatMap(([delta]) => delta.map(Math.abs)));
        for (let i = 0; i < d; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-12 * scale);
      }),
    );
  });
});
