// The additive aggregates a round yields compose across groups: the plain weighted sum, and the
// SecAgg modular sum before decoding. A cohort split into groups (gateways, DESIGN.md §10) gives
// the same aggregate as one coordinator that saw every update.
import { describe, expect, it } from 'vitest';
import { addModularSums, decodeSum, encodeUpdate, type ModularSum } from '@shoal/secagg';
import { WeightedSum, addAggregates } from '@shoal/strategy';

const D = 5;
const updates = Array.from({ length: 7 }, (_, i) => ({ delta: Float32Array.from({ length: D }, (_, j) => Math.sin(i * 7 + j) * 0.5), weight: i + 1 }));

describe('composing group aggregates', () => {
  it('plain: the sum of two groups\' weighted sums is the whole cohort\'s', () => {
    const sumOf = (group: typeof updates) => {
      const sum = new WeightedSum(D);
      for (const { delta, weight } of group) sum.add(delta, weight);
      return sum.result();
    };
    const whole = sumOf(updates);
    const composed = addAggregates(sumOf(updates.slice(0, 3)), sumOf(updates.slice(3)));
    expect(composed.totalWeight).toBe(whole.totalWeight);
    expect(composed.count).toBe(whole.count);
    for (let i = 0; i < D; i++) expect(composed.weightedSum[i]).toBeCloseTo(whole.weightedSum[i]!, 12);
  });

  it('secure aggregation: adding two groups\' modular sums equals the whole cohort\'s, word for word, and decodes to its sum', () => {
    const params = { bound: 8, scale: 2 ** 16, maxWeight: 10 };
    let seed = 1;
    const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff);
    const encoded = updates.map(({ delta, weight }) => encodeUpdate(delta.map((v) => v * weight), weight, params, randomBytes));
    const sumOf = (words: Uint32Array[]): ModularSum => {
      const encodedSum = new Uint32Array(D + 1);
      for (const w of words) for (let i = 0; i <= D; i++) encodedSum[i] = (encodedSum[i]! + w[i]!) >>> 0;
      return { encodedSum, count: words.length };
    };
    const whole = sumOf(encoded);
    const composed = addModularSums(sumOf(encoded.slice(0, 4)), sumOf(encoded.slice(4)));
    expect(composed).toEqual(whole);
    const decoded = decodeSum(composed.encodedSum, composed.count, params);
    expect(decoded.totalWeight).toBe(updates.reduce((t, u) => t + u.weight, 0));
    for (let j = 0; j < D; j++) {
      const exact = updates.reduce((t, u) => t + u.delta[j]! * u.weight, 0);
      expect(Math.abs(decoded.sum[j]! - exact)).toBeLessThanOrEqual(updates.length / params.scale);
    }
  });
});
