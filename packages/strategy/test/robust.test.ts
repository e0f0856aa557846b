// Robust aggregation rules on tiny hand-computed cases: every expected value is written out.
import { describe, expect, it } from 'vitest';
import { coordinateMedian, createStrategy, fedMedian, fedTrimmedAvg, krum, multiKrum, trimmedMean, type WeightedUpdate } from '../src/index.js';
import { invalidConfigMessage } from './invalid-config.js';

function updates(...deltas: number[][]): WeightedUpdate[] {
  return deltas.map((delta) => ({ delta: Float32Array.from(delta), weight: 1 }));
}

describe('coordinateMedian', () => {
  it('takes the middle value per coordinate for an odd count', () => {
    // Coordinate 0: 1, 2, 100 → 2; coordinate 1: -5, 0, 3 → 0.
    expect(Array.from(coordinateMedian(updates([1, 0], [100, -5], [2, 3])))).toEqual([2, 0]);
  });

  it('averages the middle two per coordinate for an even count', () => {
    // Coordinate 0: 1, 2, 4, 100 → 3; coordinate 1: -1, 0, 1, 6 → 0.5.
    expect(Array.from(coordinateMedian(updates([4, 0], [1, 6], [100, -1], [2, 1])))).toEqual([3, 0.5]);
  });

  it('ignores weights', () => {
    const weighted: WeightedUpdate[] = [
      { delta: Float32Array.from([1]), weight: 1000 },
      { delta: Float32Array.from([2]), weight: 1 },
      { delta: Float32Array.from([3]), weight: 1 },
    ];
    expect(Array.from(coordinateMedian(weighted))).toEqual([2]);
  });
});

describe('trimmedMean', () => {
  it('drops ⌊β·n⌋ values at each end per coordinate and averages the rest, unweighted', () => {
    // n = 5, β = 0.2: drop 1 at each end. Coordinate 0: -50, 1, 2, 3, 90 → (1 + 2 + 3)/3 = 2.
    // Coordinate 1: 0, 4, 4, 10, 10 → (4 + 4 + 10)/3 = 6.
    const five = updates([90, 0], [1, 4], [-50, 10], [3, 4], [2, 10]);
    expect(Array.from(trimmedMean(five, 0.2))).toEqual([2, 6]);
    // β = 0.1 drops ⌊0.5⌋ = 0: the plain mean, (90 + 1 − 50 + 3 + 2)/5 = 9.2 and 28/5 = 5.6.
    const plain = trimmedMean(five, 0.1);
    expect(plain[0]).toBeCloseTo(9.2, 12);
    expect(plain[1]).toBeCloseTo(5.6, 12);
  });

  it('with β = 0.4 and n = 5 keeps only the median', () => {
    expect(Array.from(trimmedMean(updates([5], [1], [9], [3], [7]), 0.4))).toEqual([5]);
  });

  it('ignores weights', () => {
    const weighted: WeightedUpdate[] = [
      { delta: Float32Array.from([1]), weight: 1000 },
      { delta: Float32Array.from([3]), weight: 1 },
    ];
    expect(Array.from(trimmedMean(weighted, 0))).toEqual([2]);
  });
});

describe('multiKrum', () => {
  // Four updates near the origin and one far away. n = 5, f = 1: each scores its n − f − 2 = 2 nearest.
  // Squared distances: a=[0,0], b=[1,0], c=[0,1], d=[1,1], e=[10,10].
  // a: b 1, c 1, d 2, e 200 → 1 + 1 = 2.   b: a 1, d 1, c 2, e 181 → 2.   c: a 1, d 1 → 2.
  // d: b 1, c 1 → 2.   e: d 162, b 181 → 343.
  const cohort = updates([0, 0], [1, 0], [0, 1], [1, 1], [10, 10]);

  it('Krum picks the lowest score, the earliest on a tie', () => {
    const { update, selected } = multiKrum(cohort, { byzantine: 1, select: 1 });
    expect(selected).toEqual([0]);
    expect(Array.from(update)).toEqual([0, 0]);
  });

  it('Multi-Krum averages the m lowest, never the outlier', () => {
    const { update, selected } = multiKrum(cohort, { byzantine: 1, select: 4 });
    expect(selected).toEqual([0, 1, 2, 3]);
    expect(Array.from(update)).toEqual([0.5, 0.5]);
  });

  it('picks a strict minimum: the update in the middle of the cluster', () => {
    // n = 5, f = 1, 2 nearest. a=[0]: b 1, c 4 → 5. b=[1]: a 1, c 1 → 2. c=[2]: b 1, a 4 → 5.
    // d=[9]: e 1, c 49 → 50. e=[10]: d 1, c 64 → 65.  Krum picks b.
    const { update, selected } = multiKrum(updates([0], [1], [2], [9], [10]), { byzantine: 1, select: 1 });
    expect(selected).toEqual([1]);
    expect(Array.from(update)).toEqual([1]);
  });

  it('defaults f to the largest with n > 2f + 2', () => {
    // n = 5 → f = 1, as above. n = 3 → f = 0: each scores its 1 nearest.
    expect(multiKrum(cohort, { select: 1 }).selected).toEqual([0]);
    // [0], [1], [5]: scores 1, 1, 16 → picks [0].
    expect(multiKrum(updates([0], [1], [5]), { select: 1 }).selected).toEqual([0]);
  });

  it('refuses too few updates for f, and m above n', () => {
    expect(() => multiKrum(cohort, { byzantine: 2, select: 1 })).toThrow('krum with strategy.byzantine 2 needs at least 7 updates (n > 2f + 2), got 5');
    expect(() => multiKrum(updates([0], [1]), { select: 1 })).toThrow('needs at least 3 updates');
    expect(() => multiKrum(cohort, { byzantine: 1, select: 6 })).toThrow('krum cannot select strategy.krumSelect 6 of 5 updates');
  });

  it('ignores weights', () => {
    const weighted: WeightedUpdate[] = cohort.map((update, i) => ({ ...update, weight: i === 4 ? 1000 : 1 }));
    expect(multiKrum(weighted, { byzantine: 1, select: 1 }).selected).toEqual([0]);
  });
});

describe('the robust strategies', () => {
  it('step like FedAvg on the robust update as an aggregate of weight 1, and weigh every client 1', () => {
    const global = Float32Array.from([1, 1]);
    const strategy = fedMedian({ serverLearningRate: 0.5 });
    expect(strategy.clientWeight(500)).toBe(1);
    const aggregate = strategy.robustAggregate!(updates([2, 0], [4, 2], [100, 100]));
    expect(aggregate).toEqual({ weightedSum: Float64Array.from([4, 2]), totalWeight: 1, count: 3 });
    expect(Array.from(strategy.step(global, aggregate, {}, 1).weights)).toEqual([3, 2]);
    expect(fedTrimmedAvg().clientWeight(500)).toBe(1);
    expect(krum().clientWeight(500)).toBe(1);
  });

  it('fedtrimmedavg defaults β to 0.1 and krum m to 1', () => {
    // n = 10, β = 0.1: one value trimmed at each end → mean of 1..8 = 4.5.
    const ten = updates([-1000], [1], [2], [3], [4], [5], [6], [7], [8], [1000]);
    expect(Array.from(fedTrimmedAvg().robustAggregate!(ten).weightedSum)).toEqual([4.5]);
    expect(Array.from(krum().robustAggregate!(updates([0], [1], [2], [9], [10])).weightedSum)).toEqual([1]);
  });

  it('are built by createStrategy and keep their rule', () => {
    for (const name of ['fedmedian', 'fedtrimmedavg', 'krum'] as const) {
      const strategy = createStrategy({ name });
      expect(strategy.name).toBe(name);
      expect(strategy.robustAggregate).toBeTypeOf('function');
    }
    expect(createStrategy({ name: 'fedavg' }).robustAggregate).toBeUndefined();
  });

  it('take only their own keys, in range', () => {
    expect(invalidConfigMessage({ name: 'fedmedian', maxWeight: 10 })).toBe('strategy.maxWeight is not an option of fedmedian (it takes serverLearningRate)');
    expect(invalidConfigMessage({ name: 'fedavg', trimFraction: 0.1 })).toBe('strategy.trimFraction is not an option of fedavg (it takes serverLearningRate, maxWeight)');
    expect(invalidConfigMessage({ name: 'fedtrimmedavg', byzantine: 1 })).toBe('strategy.byzantine is not an option of fedtrimmedavg (it takes serverLearningRate, trimFraction)');
    expect(invalidConfigMessage({ name: 'krum', trimFraction: 0.1 })).toBe('strategy.trimFraction is not an option of krum (it takes serverLearningRate, byzantine, krumSelect)');
    expect(invalidConfigMessage({ name: 'fedtrimmedavg', trimFraction: 0.5 })).toBe('strategy.trimFraction must be in [0, 0.5), got 0.5');
    expect(invalidConfigMessage({ name: 'krum', byzantine: 1.5 })).toBe('strategy.byzantine must be an integer >= 0, got 1.5');
    expect(invalidConfigMessage({ name: 'krum', krumSelect: 0 })).toBe('strategy.krumSelect must be an integer >= 1, got 0');
  });
});
