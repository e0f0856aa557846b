// The distribution of a federated evaluation across clients: hand-computed cases, then properties.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { distributionOf, summarizeEvaluations, tailSize } from '../src/evaluation-summary.js';

describe('tailSize', () => {
  it('is ⌊n / 10⌋, at least one client', () => {
    expect([1, 9, 10, 19, 20, 25, 100].map(tailSize)).toEqual([1, 1, 1, 1, 2, 2, 10]);
  });
});

describe('distributionOf', () => {
  it('five accuracies: mean, population std, extremes, and one client in each 10 % tail', () => {
    // 0.5, 0.6, 0.7, 0.8, 0.9: mean 0.7, variance (0.04 + 0.01 + 0 + 0.01 + 0.04) / 5 = 0.02.
    const d = distributionOf([0.9, 0.5, 0.7, 0.6, 0.8], true);
    expect(d.mean).toBeCloseTo(0.7, 12);
    expect(d.std).toBeCloseTo(Math.sqrt(0.02), 12);
    expect(d).toMatchObject({ min: 0.5, max: 0.9, worst10: 0.5, best10: 0.9 });
  });

  it('twenty values: the tails are the mean of two clients each', () => {
    const values = Array.from({ length: 20 }, (_, i) => i / 20); // 0, 0.05, …, 0.95
    const d = distributionOf(values, true);
    expect(d.worst10).toBeCloseTo((0 + 0.05) / 2, 12);
    expect(d.best10).toBeCloseTo((0.9 + 0.95) / 2, 12);
  });

  it('for a loss, the worst clients are the highest', () => {
    const d = distributionOf([0.2, 3, 1], false);
    expect(d).toMatchObject({ worst10: 3, best10: 0.2, min: 0.2, max: 3 });
  });

  it('one client: every statistic is its value, std 0', () => {
    expect(distributionOf([0.42], true)).toEqual({ mean: 0.42, std: 0, min: 0.42, max: 0.42, worst10: 0.42, best10: 0.42 });
  });

  it('refuses an empty list', () => {
    expect(() => distributionOf([], true)).toThrow(RangeError);
  });

  it('property: min ≤ worst10 ≤ mean ≤ best10 ≤ max for accuracy (and the reverse tails for loss)', () => {
    const accuracies = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 200 });
    fc.assert(
      fc.property(accuracies, (values) => {
        const d = distributionOf(values, true);
        expect(d.min).toBeLessThanOrEqual(d.worst10);
        expect(d.worst10).toBeLessThanOrEqual(d.mean);
        expect(d.mean).toBeLessThanOrEqual(d.best10);
        expect(d.best10).toBeLessThanOrEqual(d.max);
        expect(d.std).toBeGreaterThanOrEqual(0);
        const loss = distributionOf(values, false);
        expect(loss.best10).toBeLessThanOrEqual(loss.mean);
        expect(loss.mean).toBeLessThanOrEqual(loss.worst10);
      }),
    );
  });

  it('property: the order of the clients does not matter', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 50 }), fc.integer(), (values, seed) => {
        const shuffled = [...values].sort((a, b) => ((a * 1e9 + seed) % 7) - ((b * 1e9 + seed) % 7));
        expect(distributionOf(shuffled, true)).toEqual(distributionOf(values, true));
      }),
    );
  });
});

describe('summarizeEvaluations', () => {
  it('counts clients and examples, skips answers without examples, and weighs the weighted means by the strategy', () => {
    const answers = [
      { loss: 1, accuracy: 0.5, numExamples: 10 },
      { loss: 3, accuracy: 0.9, numExamples: 30 },
      { loss: 100, accuracy: 0, numExamples: 0 }, // no examples: no measurement
    ];
    const summary = summarizeEvaluations(answers, (n) => Math.min(n, 20))!;
    expect(summary.clients).toBe(2);
    expect(summary.examples).toBe(40);
    expect(summary.accuracy.mean).toBeCloseTo(0.7, 12);
    expect(summary.loss).toMatchObject({ min: 1, max: 3, worst10: 3, best10: 1, mean: 2 });
    // Weights 10 and min(30, 20) = 20: accuracy (10·0.5 + 20·0.9) / 30, loss (10·1 + 20·3) / 30.
    expect(summary.weightedAccuracy).toBeCloseTo(23 / 30, 12);
    expect(summary.weightedLoss).toBeCloseTo(70 / 30, 12);
  });

  it('is undefined when no answer carries examples', () => {
    expect(summarizeEvaluations([], (n) => n)).toBeUndefined();
    expect(summarizeEvaluations([{ loss: 1, accuracy: 1, numExamples: 0 }], (n) => n)).toBeUndefined();
  });
});
