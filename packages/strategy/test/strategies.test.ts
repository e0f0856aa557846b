import type { TrainConfig } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { fedAvg, fedAvgM, fedProx, WeightedSum, type Aggregate, type Strategy } from '../src/index.js';

const baseConfig: TrainConfig = Object.freeze({ epochs: 1, batchSize: 10, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 });

function aggregateOf(updates: readonly (readonly [number[], number])[]): Aggregate {
  const sum = new WeightedSum(updates[0]![0].length);
  for (const [delta, weight] of updates) sum.add(Float32Array.from(delta), weight);
  return sum.result();
}

describe('fedAvg', () => {
  it('with η = 1 gives global + weighted mean', () => {
    // Same three clients as the WeightedSum test: mean = [7/6, 2].
    const aggregate = aggregateOf([[[1, 2], 1], [[3, -1], 2], [[0, 4], 3]]);
    const strategy = fedAvg();
    const { weights } = strategy.step(Float32Array.of(0.5, -1), aggregate, strategy.initialState(2), 1);
    expect(weights).toBeInstanceOf(Float32Array);
    expect(Array.from(weights)).toEqual([Math.fround(0.5 + 7 / 6), 1]);
  });

  it('scales the mean by the server learning rate', () => {
    const aggregate = aggregateOf([[[2, -4], 1]]);
    const { weights } = fedAvg({ serverLearningRate: 0.5 }).step(Float32Array.of(1, 1), aggregate, {}, 1);
    expect(Array.from(weights)).toEqual([2, -1]);
  });

  it('weights clients by examples, and maxWeight caps a dominant client', () => {
    // Examples 10, 20, 1000; deltas [0], [0], [1].
    // Uncapped (and with the default cap of 1,000): mean = 1000 / 1030 ≈ 0.971 — the big client nearly decides alone.
    // maxWeight 100: weights 10, 20, 100; mean = 100 / 130 ≈ 0.769.
    const clients: [number, number][] = [[10, 0], [20, 0], [1000, 1]];
    const run = (strategy: Strategy) => {
      const sum = new WeightedSum(1);
      for (const [examples, delta] of clients) sum.add(Float32Array.of(delta), strategy.clientWeight(examples));
      return strategy.step(Float32Array.of(0), sum.result(), {}, 1).weights[0]!;
    };
    expect(fedAvg().clientWeight(1000)).toBe(1000);
    // numExamples is self-reported: by default nobody weighs more than 1,000, whatever it claims.
    expect(fedAvg().clientWeight(Number.MAX_SAFE_INTEGER)).toBe(1000);
    expect(fedAvg({ maxWeight: Infinity }).clientWeight(Number.MAX_SAFE_INTEGER)).toBe(Number.MAX_SAFE_INTEGER);
    expect(fedAvg({ maxWeight: 100 }).clientWeight(1000)).toBe(100);
    expect(fedAvg({ maxWeight: 100 }).clientWeight(20)).toBe(20);
    expect(run(fedAvg())).toBeCloseTo(1000 / 1030, 6);
    expect(run(fedAvg({ maxWeight: 100 }))).toBeCloseTo(100 / 130, 6);
  });

  it('leaves the train config as it is and rejects bad example counts', () => {
    expect(fedAvg().configureTrain(3, baseConfig)).toEqual(baseConfig);
    expect(() => fedAvg().clientWeight(-1)).toThrow(RangeError);
  });

  it('rejects a model/aggregate length mismatch', () => {
    expect(() => fedAvg().step(new Float32Array(3), aggregateOf([[[1, 2], 1]]), {}, 1)).toThrow(RangeError);
  });
});

describe('fedAvgM', () => {
  it('applies server momentum over two steps as computed by hand', () => {
    // β = 0.9, η = 0.5, global w0 = [1, 1], v0 = [0, 0].
    // Round 1: mean = [1, -2]; v1 = 0.9·[0, 0] + [1, -2] = [1, -2]; w1 = w0 + 0.5·v1 = [1.5, 0].
    // Round 2: mean = [2, 2];  v2 = 0.9·[1, -2] + [2, 2] = [2.9, 0.2]; w2 = w1 + 0.5·v2 = [2.95, 0.1].
    const strategy = fedAvgM({ momentum: 0.9, serverLearningRate: 0.5 });
    const state0 = strategy.initialState(2);
    const r1 = strategy.step(Float32Array.of(1, 1), aggregateOf([[[1, -2], 1]]), state0, 1);
    expect(Array.from(r1.weights)).toEqual([1.5, 0]);
    expect(Array.from(r1.state['velocity'] as Float64Array)).toEqual([1, -2]);
    const r2 = strategy.step(r1.weights, aggregateOf([[[2, 2], 3]]), r1.state, 2);
    const velocity = r2.state['velocity'] as Float64Array;
    expect(velocity[0]).toBeCloseTo(2.9, 12);
    expect(velocity[1]).toBeCloseTo(0.2, 12);
    expect(r2.weights[0]).toBeCloseTo(2.95, 6);
    expect(r2.weights[1]).toBeCloseTo(0.1, 6);
  });

  it('defaults to β = 0.9 and behaves like FedAvg when β = 0', () => {
    const aggregate = aggregateOf([[[1], 1]]);
    const withDefault = fedAvgM();
    const s1 = withDefault.step(Float32Array.of(0), aggregate, withDefault.initialState(1), 1).state;
    const w2 = withDefault.step(Float32Array.of(0), aggregate, s1, 2).weights;
    expect(w2[0]).toBeCloseTo(1.9, 6); // v2 = 0.9·1 + 1
    const noMomentum = fedAvgM({ momentum: 0 });
    const t1 = noMomentum.step(Float32Array.of(0), aggregate, noMomentum.initialState(1), 1).state;
    expect(Array.from(noMomentum.step(Float32Array.of(0), aggregate, t1, 2).weights)).toEqual([1]);
  });

  it('keeps FedAvg client weighting and rejects a state without a matching velocity', () => {
    const strategy = fedAvgM({ maxWeight: 5 });
    expect(strategy.name).toBe('fedavgm');
    expect(strategy.clientWeight(50)).toBe(5);
    expect(() => strategy.step(new Float32Array(2), aggregateOf([[[1, 1], 1]]), {}, 1)).toThrow(/velocity/);
    expect(() => strategy.step(new Float32Array(2), aggregateOf([[[1, 1], 1]]), strategy.initialState(3), 1)).toThrow(/velocity/);
  });
});

describe('fedProx', () => {
  it('sets proximalMu in the train config and leaves its input untouched', () => {
    const base = Object.freeze({ ...baseConfig });
    const strategy = fedProx({ proximalMu: 0.01 });
    const config = strategy.configureTrain(4, base);
    expect(config).toEqual({ ...baseConfig, proximalMu: 0.01 });
    expect(base.proximalMu).toBe(0);
    expect(strategy.name).toBe('fedprox');
  });

  it('aggregates exactly as FedAvg does', () => {
    const aggregate = aggregateOf([[[1, 2], 1], [[3, -1], 2]]);
    const global = Float32Array.of(0.25, 0.75);
    const options = { serverLearningRate: 0.7, maxWeight: 3 };
    const prox = fedProx({ ...options, proximalMu: 0.1 });
    expect(prox.step(global, aggregate, {}, 1).weights).toEqual(fedAvg(options).step(global, aggregate, {}, 1).weights);
    expect(prox.clientWeight(10)).toBe(3);
  });
});

describe('purity', () => {
  const strategies: Strategy[] = [fedAvg({ serverLearningRate: 0.5 }), fedAvgM(), fedProx({ proximalMu: 1 })];
  for (const strategy of strategies) {
    it(`${strategy.name}.step never mutates global, the aggregate or the state`, () => {
      const global = Float32Array.of(1, 2, 3);
      const aggregate = aggregateOf([[[1, 1, 1], 2], [[-3, 0, 5], 1]]);
      const state = strategy.step(global, aggregate, strategy.initialState(3), 1).state; // non-trivial state
      const stateCopy = structuredClone(state);
      const weightedSumCopy = aggregate.weightedSum.slice();
      const result = strategy.step(global, aggregate, state, 2);
      expect(Array.from(global)).toEqual([1, 2, 3]);
      expect(aggregate.weightedSum).toEqual(weightedSumCopy);
      expect(aggregate.totalWeight).toBe(3);
      expect(aggregate.count).toBe(2);
      expect(state).toEqual(stateCopy);
      expect(result.weights).not.toBe(global);
    });
  }
});
