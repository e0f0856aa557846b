import { clipToNorm, seededNoise } from '@shoal/dp';
import type { TrainConfig } from '@shoal/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fedAvg, fedAvgM, fedProx, WeightedSum, withCentralDp, type Aggregate, type Strategy } from '../src/index.js';

const base: TrainConfig = Object.freeze({ epochs: 1, batchSize: 10, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 });

/** The coordinator's fold: each client's update clipped to C and weighted by the strategy. */
function aggregateOf(strategy: Strategy, clients: readonly { delta: number[]; numExamples: number }[], clipNorm: number): Aggregate {
  const sum = new WeightedSum(clients[0]!.delta.length);
  for (const { delta, numExamples } of clients) sum.add(clipToNorm(Float32Array.from(delta), clipNorm).clipped, strategy.clientWeight(numExamples));
  return sum.result();
}

afterEach(() => vi.restoreAllMocks());

describe('withCentralDp', () => {
  const clients = [
    { delta: [0.3, -0.4], numExamples: 10 },
    { delta: [3, 4], numExamples: 500 }, // norm 5: clipped to 1
    { delta: [0, 0.2], numExamples: 1 },
  ];

  it('with z = 0 equals FedAvg with uniform weights and the expected cohort size as denominator', () => {
    const dp = withCentralDp(fedAvg(), { noiseMultiplier: 0, clipNorm: 1, expectedClients: 4 });
    const aggregate = aggregateOf(dp, clients, 1);
    expect(aggregate.totalWeight).toBe(3); // uniform: every client weighs 1, whatever its examples
    const global = Float32Array.of(1, 1);
    const { weights } = dp.step(global, aggregate, dp.initialState(2), 1);
    // Σ clipped = [0.3 + 0.6, −0.4 + 0.8 + 0.2] = [0.9, 0.6], divided by 4 (not 3).
    expect(weights[0]).toBeCloseTo(1 + 0.9 / 4, 6);
    expect(weights[1]).toBeCloseTo(1 + 0.6 / 4, 6);
  });

  it('adds noise of std z·C/m to the mean update, centred on it (100,000 coordinates, seeded)', () => {
    const [z, clipNorm, m, d] = [1.3, 0.5, 10, 100_000];
    const dp = withCentralDp(fedAvg(), { noiseMultiplier: z, clipNorm, expectedClients: m, noise: seededNoise(11) });
    const aggregate: Aggregate = { weightedSum: new Float64Array(d).fill(2), totalWeight: 8, count: 8 };
    const { weights } = dp.step(new Float32Array(d), aggregate, {}, 1);
    let sum = 0;
    let sumOfSquares = 0;
    for (let i = 0; i < d; i++) {
      const noise = weights[i]! - 2 / m;
      sum += noise;
      sumOfSquares += noise * noise;
    }
    const expectedStd = (z * clipNorm) / m; // 0.065
    expect(Math.abs(sum / d)).toBeLessThan((5 * expectedStd) / Math.sqrt(d));
    expect(Math.abs(Math.sqrt(sumOfSquares / d) - expectedStd) / expectedStd).toBeLessThan(0.015);
  });

  it('never mutates the global weights or the aggregate', () => {
    const dp = withCentralDp(fedAvg(), { noiseMultiplier: 1, clipNorm: 1, expectedClients: 3, noise: seededNoise(1) });
    const global = Float32Array.of(1, 2);
    const aggregate = aggregateOf(dp, clients, 1);
    const sumBefore = aggregate.weightedSum.slice();
    dp.step(global, aggregate, {}, 1);
    expect(Array.from(global)).toEqual([1, 2]);
    expect(aggregate.weightedSum).toEqual(sumBefore);
    expect(aggregate.totalWeight).toBe(3);
  });

  it('wraps any strategy: keeps its state, train config and server step, and names itself after it', () => {
    const momentum = withCentralDp(fedAvgM({ momentum: 0.5 }), { noiseMultiplier: 0, clipNorm: 1, expectedClients: 2 });
    expect(momentum.name).toBe('fedavgm+central-dp');
    const state = momentum.initialState(1);
    const first = momentum.step(Float32Array.of(0), { weightedSum: Float64Array.of(1), totalWeight: 1, count: 1 }, state, 1);
    expect(first.weights[0]).toBeCloseTo(0.5, 6); // 1 / expectedClients 2
    const second = momentum.step(first.weights, { weightedSum: Float64Array.of(1), totalWeight: 1, count: 1 }, first.state, 2);
    expect(second.weights[0]).toBeCloseTo(0.5 + 0.5 * 0.5 + 0.5, 6); // v = 0.5·0.5 + 0.5
    const prox = withCentralDp(fedProx({ proximalMu: 0.01 }), { noiseMultiplier: 1, clipNorm: 1, expectedClients: 2 });
    expect(prox.configureTrain(1, base).proximalMu).toBe(0.01);
    expect(prox.clientWeight(1000)).toBe(1);
  });

  it('draws its noise from WebCrypto by default', () => {
    const getRandomValues = vi.spyOn(globalThis.crypto, 'getRandomValues');
    const dp = withCentralDp(fedAvg(), { noiseMultiplier: 1, clipNorm: 1, expectedClients: 2 });
    const aggregate: Aggregate = { weightedSum: new Float64Array(4), totalWeight: 2, count: 2 };
    const a = dp.step(new Float32Array(4), aggregate, {}, 1).weights;
    const b = dp.step(new Float32Array(4), aggregate, {}, 2).weights;
    expect(getRandomValues).toHaveBeenCalled();
    expect(Array.from(a)).not.toEqual(Array.from(b));
  });

  it('rejects bad options with INVALID_CONFIG naming the dp.* key', () => {
    expect(() => withCentralDp(fedAvg(), { noiseMultiplier: 1, clipNorm: 0, expectedClients: 2 })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(/^dp\.clipNorm must be/) }),
    );
    expect(() => withCentralDp(fedAvg(), { noiseMultiplier: Number.NaN, clipNorm: 1, expectedClients: 2 })).toThrow(/dp\.noiseMultiplier/);
    expect(() => withCentralDp(fedAvg(), { noiseMultiplier: 1, clipNorm: 1, expectedClients: -3 })).toThrow(/dp\.expectedClients/);
  });
});
