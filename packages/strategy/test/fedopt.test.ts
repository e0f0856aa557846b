import { ShoalError } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import {
  createStrategy,
  fedAdagrad,
  fedAdam,
  fedYogi,
  parseStrategyConfig,
  WeightedSum,
  type Aggregate,
  type Strategy,
  type StrategyState,
} from '../src/index.js';
import { invalidConfigMessage } from './invalid-config.js';

function aggregateOf(updates: readonly (readonly [number[], number])[]): Aggregate {
  const sum = new WeightedSum(updates[0]![0].length);
  for (const [delta, weight] of updates) sum.add(Float32Array.from(delta), weight);
  return sum.result();
}

/**
 * The same three rounds for every strategy: global w0 = [1, -1]; mean updates Δ1 = [2, -1] (the
 * weighted mean of two clients), Δ2 = [1, 1], Δ3 = [1, 0]. Returns each round's weights and state.
 */
function threeRounds(strategy: Strategy): { weights: number[]; m: number[]; v: number[] }[] {
  const aggregates = [aggregateOf([[[4, -1], 1], [[0, -1], 1]]), aggregateOf([[[1, 1], 5]]), aggregateOf([[[1, 0], 2]])];
  let weights: Float32Array = Float32Array.of(1, -1);
  let state: StrategyState = strategy.initialState(2);
  return aggregates.map((aggregate, index) => {
    ({ weights, state } = strategy.step(weights, aggregate, state, index + 1));
    return { weights: Array.from(weights), m: Array.from(state['m'] as Float64Array), v: Array.from(state['v'] as Float64Array) };
  });
}

function expectWeights(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  // The step is in Float64, rounded once to Float32 per round: 6 decimals is Float32's precision here.
  expected.forEach((value, i) => expect(actual[i]).toBeCloseTo(value, 6));
}

// Hand computation, η = 0.1, τ = 0.5 (so v0 = τ² = 0.25), m0 = 0; and for Adam/Yogi β1 = 0.5,
// β2 = 0.75. Every m and v below is a short binary fraction, so they are compared exactly. The
// weights were checked against an independent NumPy transcription of Reddi et al.'s Algorithm 2
// (not this code), rounding to float32 after each round as the strategy does.
const options = { serverLearningRate: 0.1, tau: 0.5 };

describe('fedAdam', () => {
  it('matches three rounds computed by hand', () => {
    const rounds = threeRounds(fedAdam({ ...options, beta1: 0.5, beta2: 0.75 }));
    // Round 1: m = 0.5·[2, −1] = [1, −0.5]; v = 0.75·0.25 + 0.25·[4, 1] = [1.1875, 0.4375]
    //   w = [1, −1] + 0.1·[1 / (√1.1875 + 0.5), −0.5 / (√0.4375 + 0.5)] = [1 + 0.0629040, −1 − 0.0430501]
    expect(rounds[0]!.m).toEqual([1, -0.5]);
    expect(rounds[0]!.v).toEqual([1.1875, 0.4375]);
    expectWeights(rounds[0]!.weights, [1.062904, -1.0430501]);
    // Round 2: m = 0.5·[1, −0.5] + 0.5·[1, 1] = [1, 0.25]; v = 0.75·[1.1875, 0.4375] + 0.25·[1, 1] = [1.140625, 0.578125]
    //   w += 0.1·[1 / (√1.140625 + 0.5), 0.25 / (√0.578125 + 0.5)] = [+0.0637755, +0.0198358]
    expect(rounds[1]!.m).toEqual([1, 0.25]);
    expect(rounds[1]!.v).toEqual([1.140625, 0.578125]);
    expectWeights(rounds[1]!.weights, [1.1266795, -1.0232142]);
    // Round 3: m = [1, 0.125]; v = 0.75·[1.140625, 0.578125] + 0.25·[1, 0] = [1.10546875, 0.43359375]
    //   w += 0.1·[1 / (√1.10546875 + 0.5), 0.125 / (√0.43359375 + 0.5)] = [+0.0644574, +0.0107900]
    expect(rounds[2]!.m).toEqual([1, 0.125]);
    expect(rounds[2]!.v).toEqual([1.10546875, 0.43359375]);
    expectWeights(rounds[2]!.weights, [1.191137, -1.0124242]);
  });

  it('defaults to η = 0.01, β1 = 0.9, β2 = 0.99, τ = 1e-3 with v0 = τ²', () => {
    const strategy = fedAdam();
    const state0 = strategy.initialState(1);
    expect(Array.from(state0['m'] as Float64Array)).toEqual([0]);
    expect(Array.from(state0['v'] as Float64Array)).toEqual([1e-6]);
    // Δ = 1: m = 0.1; v = 0.99·1e-6 + 0.01 = 0.01000099; w = 0.01·0.1 / (√0.01000099 + 0.001) = 0.0099005047
    const { weights, state } = strategy.step(Float32Array.of(0), aggregateOf([[[1], 1]]), state0, 1);
    expect((state['m'] as Float64Array)[0]).toBeCloseTo(0.1, 15);
    expect((state['v'] as Float64Array)[0]).toBeCloseTo(0.01000099, 15);
    expect(weights[0]).toBeCloseTo(0.0099005047, 9);
  });
});

describe('fedYogi', () => {
  it('matches three rounds computed by hand, moving v towards Δ² by (1 − β2)·Δ² in either direction', () => {
    const rounds = threeRounds(fedYogi({ ...options, beta1: 0.5, beta2: 0.75 }));
    // Round 1: Δ² = [4, 1] > v0 = 0.25, so sign(v − Δ²) = −1 and v grows: v = 0.25 + 0.25·[4, 1] = [1.25, 0.5]
    //   m = [1, −0.5]; w = [1, −1] + 0.1·[1 / (√1.25 + 0.5), −0.5 / (√0.5 + 0.5)] = [1 + 0.0618034, −1 − 0.0414214]
    expect(rounds[0]!.m).toEqual([1, -0.5]);
    expect(rounds[0]!.v).toEqual([1.25, 0.5]);
    expectWeights(rounds[0]!.weights, [1.0618034, -1.0414214]);
    // Round 2: Δ² = [1, 1]. Coordinate 0: v = 1.25 > 1, so v shrinks: 1.25 − 0.25·1 = 1 (Adam would give
    //   0.75·1.25 + 0.25 = 1.1875). Coordinate 1: v = 0.5 < 1, so it grows: 0.5 + 0.25 = 0.75.
    //   m = [1, 0.25]; w += 0.1·[1 / (1 + 0.5), 0.25 / (√0.75 + 0.5)] = [+0.0666667, +0.0183013]
    expect(rounds[1]!.m).toEqual([1, 0.25]);
    expect(rounds[1]!.v).toEqual([1, 0.75]);
    expectWeights(rounds[1]!.weights, [1.1284701, -1.0231202]);
    // Round 3: Δ² = [1, 0]. Coordinate 0: v = Δ² = 1, sign(0) = 0: v stays 1. Coordinate 1: Δ² = 0, v stays 0.75.
    //   m = [1, 0.125]; w += 0.1·[1 / 1.5, 0.125 / (√0.75 + 0.5)] = [+0.0666667, +0.0091506]
    expect(rounds[2]!.m).toEqual([1, 0.125]);
    expect(rounds[2]!.v).toEqual([1, 0.75]);
    expectWeights(rounds[2]!.weights, [1.1951368, -1.0139695]);
  });

  it('takes the sign of v − Δ², not of Δ: a negative update grows v as a positive one does', () => {
    const strategy = fedYogi({ beta2: 0.5, tau: 1 });
    const up = strategy.step(Float32Array.of(0), aggregateOf([[[3], 1]]), strategy.initialState(1), 1).state;
    const down = strategy.step(Float32Array.of(0), aggregateOf([[[-3], 1]]), strategy.initialState(1), 1).state;
    // v0 = 1, Δ² = 9 > 1: v = 1 + 0.5·9 = 5.5 for Δ = 3 and Δ = −3 alike.
    expect(Array.from(up['v'] as Float64Array)).toEqual([5.5]);
    expect(Array.from(down['v'] as Float64Array)).toEqual([5.5]);
    // Then Δ = 1: v = 5.5 > 1, so v shrinks by 0.5·1 to 5 (never below zero: the step is at most Δ² < v).
    const after = strategy.step(Float32Array.of(0), aggregateOf([[[1], 1]]), down, 2).state;
    expect(Array.from(after['v'] as Float64Array)).toEqual([5]);
  });
});

describe('fedAdagrad', () => {
  it('matches three rounds computed by hand: no momentum, v sums Δ²', () => {
    const rounds = threeRounds(fedAdagrad(options));
    // Round 1: m = Δ = [2, −1]; v = 0.25 + [4, 1] = [4.25, 1.25]
    //   w = [1, −1] + 0.1·[2 / (√4.25 + 0.5), −1 / (√1.25 + 0.5)] = [1 + 0.0780776, −1 − 0.0618034]
    expect(rounds[0]!.m).toEqual([2, -1]);
    expect(rounds[0]!.v).toEqual([4.25, 1.25]);
    expectWeights(rounds[0]!.weights, [1.0780777, -1.0618034]);
    // Round 2: m = [1, 1]; v = [5.25, 2.25]; w += 0.1·[1 / (√5.25 + 0.5), 1 / (1.5 + 0.5)] = [+0.0358258, +0.05]
    expect(rounds[1]!.m).toEqual([1, 1]);
    expect(rounds[1]!.v).toEqual([5.25, 2.25]);
    expectWeights(rounds[1]!.weights, [1.1139034, -1.0118034]);
    // Round 3: m = [1, 0]; v = [6.25, 2.25]; w += 0.1·[1 / (2.5 + 0.5), 0] = [+0.0333333, 0]
    expect(rounds[2]!.m).toEqual([1, 0]);
    expect(rounds[2]!.v).toEqual([6.25, 2.25]);
    expectWeights(rounds[2]!.weights, [1.1472367, -1.0118034]);
  });
});

describe('the adaptive strategies', () => {
  const strategies: Strategy[] = [fedAdam(), fedYogi(), fedAdagrad()];
  for (const strategy of strategies) {
    it(`${strategy.name} weighs clients as FedAvg does and rejects a state without matching m and v`, () => {
      expect(strategy.clientWeight(50)).toBe(50);
      expect(strategy.clientWeight(5_000)).toBe(1_000);
      expect(() => strategy.step(new Float32Array(2), aggregateOf([[[1, 1], 1]]), {}, 1)).toThrow(new RegExp(`${strategy.name} state.m`));
      expect(() => strategy.step(new Float32Array(2), aggregateOf([[[1, 1], 1]]), strategy.initialState(3), 1)).toThrow(/Float64Array of 2/);
      expect(() => strategy.step(new Float32Array(1), aggregateOf([[[1], 1]]), { m: new Float64Array(1), v: new Float32Array(1) }, 1)).toThrow(/state.v/);
    });

    it(`${strategy.name}.step never mutates global, the aggregate or the state`, () => {
      const global = Float32Array.of(1, 2, 3);
      const aggregate = aggregateOf([[[1, 1, 1], 2], [[-3, 0, 5], 1]]);
      const state = strategy.step(global, aggregate, strategy.initialState(3), 1).state;
      const stateCopy = structuredClone(state);
      const weightedSumCopy = aggregate.weightedSum.slice();
      const result = strategy.step(global, aggregate, state, 2);
      expect(Array.from(global)).toEqual([1, 2, 3]);
      expect(aggregate.weightedSum).toEqual(weightedSumCopy);
      expect(state).toEqual(stateCopy);
      expect(result.weights).not.toBe(global);
    });
  }
});

describe('config of the adaptive strategies', () => {
  it('builds each by name with its options', () => {
    expect(createStrategy({ name: 'fedadam', beta1: 0, beta2: 0.5, tau: 0.1 }).name).toBe('fedadam');
    expect(createStrategy({ name: 'fedyogi', beta1: 0.5, serverLearningRate: 0.1 }).name).toBe('fedyogi');
    expect(createStrategy({ name: 'fedadagrad', tau: 1e-6, maxWeight: 10 }).clientWeight(50)).toBe(10);
    // The options reach the step: fedadam with β1 = 0, β2 = 0, τ = 1, η = 2 on Δ = 3: 2·3 / (3 + 1) = 1.5.
    const strategy = createStrategy({ name: 'fedadam', beta1: 0, beta2: 0, tau: 1, serverLearningRate: 2 });
    expect(strategy.step(Float32Array.of(0), aggregateOf([[[3], 1]]), strategy.initialState(1), 1).weights[0]).toBe(1.5);
  });

  it('fills in η = 0.01 for the adaptive strategies and keeps η = 1 for the others', () => {
    expect(parseStrategyConfig({ name: 'fedadam' })).toEqual({ name: 'fedadam', serverLearningRate: 0.01 });
    expect(parseStrategyConfig({ name: 'fedyogi' }).serverLearningRate).toBe(0.01);
    expect(parseStrategyConfig({ name: 'fedadagrad' }).serverLearningRate).toBe(0.01);
    expect(parseStrategyConfig({ name: 'fedadam', serverLearningRate: 0.5 }).serverLearningRate).toBe(0.5);
    expect(parseStrategyConfig({}).serverLearningRate).toBe(1);
    expect(parseStrategyConfig({ name: 'fedavgm' }).serverLearningRate).toBe(1);
    expect(parseStrategyConfig({ name: 'fedyogi', beta1: 0.8, beta2: 0.9, tau: 0.01 })).toEqual({ name: 'fedyogi', serverLearningRate: 0.01, beta1: 0.8, beta2: 0.9, tau: 0.01 });
  });

  it('rejects β outside [0, 1) and τ ≤ 0, naming the key', () => {
    expect(invalidConfigMessage({ name: 'fedadam', beta1: 1 })).toBe('strategy.beta1 must be in [0, 1), got 1');
    expect(invalidConfigMessage({ name: 'fedyogi', beta1: -0.1 })).toBe('strategy.beta1 must be in [0, 1), got -0.1');
    expect(invalidConfigMessage({ name: 'fedadam', beta2: 1 })).toBe('strategy.beta2 must be in [0, 1), got 1');
    expect(invalidConfigMessage({ name: 'fedyogi', beta2: '0.9' })).toBe('strategy.beta2 must be in [0, 1), got "0.9"');
    expect(invalidConfigMessage({ name: 'fedadagrad', tau: 0 })).toBe('strategy.tau must be a finite number > 0, got 0');
    expect(invalidConfigMessage({ name: 'fedadam', tau: Infinity })).toBe('strategy.tau must be a finite number > 0, got Infinity');
    expect(invalidConfigMessage({ name: 'fedyogi', tau: Number.NaN })).toBe('strategy.tau must be a finite number > 0, got NaN');
    expect(() => parseStrategyConfig({ name: 'fedadam', beta2: 2 })).toThrow('strategy.beta2 must be in [0, 1), got 2');
    expect(() => fedYogi({ tau: -1 })).toThrow(ShoalError);
  });

  it('accepts each key only with the strategies that take it', () => {
    expect(invalidConfigMessage({ name: 'fedadagrad', beta1: 0.9 })).toBe('strategy.beta1 is not an option of fedadagrad (it takes serverLearningRate, maxWeight, tau)');
    expect(invalidConfigMessage({ name: 'fedadagrad', beta2: 0.99 })).toMatch('strategy.beta2 is not an option of fedadagrad');
    expect(invalidConfigMessage({ name: 'fedavg', tau: 1e-3 })).toBe('strategy.tau is not an option of fedavg (it takes serverLearningRate, maxWeight)');
    expect(invalidConfigMessage({ name: 'fedavgm', beta1: 0.9 })).toMatch('strategy.beta1 is not an option of fedavgm');
    expect(invalidConfigMessage({ name: 'fedadam', momentum: 0.9 })).toBe('strategy.momentum is not an option of fedadam (it takes serverLearningRate, maxWeight, beta1, beta2, tau)');
    expect(invalidConfigMessage({ name: 'fedyogi', proximalMu: 0.1 })).toMatch('strategy.proximalMu is not an option of fedyogi');
    expect(invalidConfigMessage({ name: 'fedadams' })).toBe('strategy.name must be one of fedavg, fedavgm, fedprox, fedadam, fedyogi, fedadagrad, fedmedian, fedtrimmedavg, krum, qfedavg, got "fedadams"');
  });
});
