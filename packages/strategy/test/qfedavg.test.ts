// q-FedAvg (Li et al., ICLR 2020, Algorithm 2) on hand-computed steps: every expected value is written out.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createStrategy, qFedAvg, qFedAvgAggregate, type WeightedUpdate } from '../src/index.js';
import { invalidConfigMessage } from './invalid-config.js';

/** Client A: delta (0.1, 0), loss 2; client B: delta (0, 0.2), loss 0.5. */
const A: WeightedUpdate = { delta: Float32Array.from([0.1, 0]), weight: 1, initialLoss: 2 };
const B: WeightedUpdate = { delta: Float32Array.from([0, 0.2]), weight: 1, initialLoss: 0.5 };
const GLOBAL = Float32Array.from([1, -1]);

function stepOf(q: number, lipschitz: number, updates: readonly WeightedUpdate[]): number[] {
  const strategy = qFedAvg({ q, lipschitz });
  return Array.from(strategy.step(GLOBAL, strategy.robustAggregate!(updates), strategy.initialState(2), 1).weights);
}

describe('qFedAvgAggregate', () => {
  it('q = 1, L = 10: the paper\'s Δ_k and h_k', () => {
    // Paper: Δw_A = L(w − w̄_A) = (−1, 0), Δ_A = F_A·Δw_A = (−2, 0), h_A = q·F_A^0·‖Δw_A‖² + L·F_A = 1 + 20 = 21.
    //        Δw_B = (0, −2), Δ_B = 0.5·(0, −2) = (0, −1), h_B = 1·4 + 10·0.5 = 9.
    // w⁺ = w − (Δ_A + Δ_B) / (h_A + h_B) = w + (2, 1) / 30.
    const aggregate = qFedAvgAggregate([A, B], 1, 10);
    expect(Array.from(aggregate.weightedSum).map((v) => Number(v.toFixed(6)))).toEqual([2, 1]);
    expect(aggregate.totalWeight).toBeCloseTo(30, 6);
    expect(aggregate.count).toBe(2);
    const weights = stepOf(1, 10, [A, B]);
    expect(weights[0]).toBeCloseTo(1 + 2 / 30, 6);
    expect(weights[1]).toBeCloseTo(-1 + 1 / 30, 6);
  });

  it('q = 2, L = 10: F^q weights and q·F^(q−1) curvature', () => {
    // A: 10·4 = 40 weight, h = 2·2·100·0.01 + 40 = 44; B: 10·0.25 = 2.5, h = 2·0.5·100·0.04 + 2.5 = 6.5.
    // Σ = (4, 0.5), Σh = 50.5.
    const weights = stepOf(2, 10, [A, B]);
    expect(weights[0]).toBeCloseTo(1 + 4 / 50.5, 6);
    expect(weights[1]).toBeCloseTo(-1 + 0.5 / 50.5, 6);
  });

  it('q = 0 is the unweighted mean of the deltas (FedAvg with every client weighing 1)', () => {
    // Each client: 10·delta, h = 10. Σ = (1, 2), Σh = 20 → mean (0.05, 0.1).
    const weights = stepOf(0, 10, [A, B]);
    expect(weights[0]).toBeCloseTo(1.05, 6);
    expect(weights[1]).toBeCloseTo(-0.9, 6);
  });

  it('three clients, one with loss 0: finite, and that client only adds its curvature', () => {
    const C: WeightedUpdate = { delta: Float32Array.from([0.3, 0.3]), weight: 1, initialLoss: 0 };
    // C: weight 10·(1e-10)^1 ≈ 1e-9, h ≈ 1·1·100·0.18 = 18. Σ ≈ (2, 1), Σh ≈ 48.
    const weights = stepOf(1, 10, [A, B, C]);
    expect(weights[0]).toBeCloseTo(1 + 2 / 48, 6);
    expect(weights[1]).toBeCloseTo(-1 + 1 / 48, 6);
  });

  it('shifts weight towards high-loss clients as q grows: A\'s share over B\'s is (F_A / F_B)^q', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 5, noNaN: true }), fc.double({ min: 0.01, max: 10, noNaN: true }), fc.double({ min: 0.01, max: 10, noNaN: true }), (q, lossA, lossB) => {
        const a: WeightedUpdate = { delta: Float32Array.from([1, 0]), weight: 1, initialLoss: lossA };
        const b: WeightedUpdate = { delta: Float32Array.from([0, 1]), weight: 1, initialLoss: lossB };
        const { weightedSum } = qFedAvgAggregate([a, b], q, 3);
        const expected = ((lossA + 1e-10) / (lossB + 1e-10)) ** q;
        expect(weightedSum[0]! / weightedSum[1]!).toBeCloseTo(expected, 6 - Math.max(0, Math.ceil(Math.log10(expected))));
      }),
    );
  });

  it('refuses an update without initialLoss, or with a negative one, with a RangeError (the round aborts)', () => {
    expect(() => qFedAvgAggregate([A, { delta: Float32Array.from([0, 0]), weight: 1 }], 1, 10)).toThrow(/update 1 has no finite initialLoss/);
    expect(() => qFedAvgAggregate([{ ...A, initialLoss: -1 }], 1, 10)).toThrow(RangeError);
    expect(() => qFedAvgAggregate([], 1, 10)).toThrow(RangeError);
  });
});

describe('qFedAvg strategy', () => {
  it('asks clients for initialLoss and weighs every client 1', () => {
    const strategy = qFedAvg({ lipschitz: 20 });
    const base = { epochs: 1, batchSize: 8, learningRate: 0.05, optimizer: 'sgd', proximalMu: 0 } as const;
    expect(strategy.configureTrain(3, base)).toEqual({ ...base, reportInitialLoss: true });
    expect(strategy.clientWeight(500)).toBe(1);
    expect(strategy.name).toBe('qfedavg');
  });

  it('is built from config with its keys, and refuses bad ones naming the key', () => {
    expect(createStrategy({ name: 'qfedavg', q: 2, lipschitz: 10 }).name).toBe('qfedavg');
    expect(invalidConfigMessage({ name: 'qfedavg', q: -1, lipschitz: 10 })).toBe('strategy.q must be a finite number >= 0, got -1');
    expect(invalidConfigMessage({ name: 'qfedavg', lipschitz: 0 })).toBe('strategy.lipschitz must be a finite number > 0, got 0');
    expect(invalidConfigMessage({ name: 'qfedavg' })).toMatch(/^strategy.lipschitz is required for qfedavg built in code/);
    expect(invalidConfigMessage({ name: 'fedavg', q: 1 })).toBe('strategy.q is not an option of fedavg (it takes serverLearningRate, maxWeight)');
  });
});
