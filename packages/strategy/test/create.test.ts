import { ShoalError } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { createStrategy, WeightedSum } from '../src/index.js';
import { invalidConfigMessage } from './invalid-config.js';

describe('createStrategy', () => {
  it('builds each named strategy with its options', () => {
    expect(createStrategy({ name: 'fedavg' }).name).toBe('fedavg');
    expect(createStrategy({ name: 'fedavgm', momentum: 0.5 }).name).toBe('fedavgm');
    const prox = createStrategy({ name: 'fedprox', proximalMu: 0.01, maxWeight: 10 });
    expect(prox.name).toBe('fedprox');
    expect(prox.clientWeight(50)).toBe(10);
    expect(prox.configureTrain(1, { epochs: 1, batchSize: 1, learningRate: 1, optimizer: 'sgd', proximalMu: 0 }).proximalMu).toBe(0.01);
  });

  it('passes serverLearningRate and momentum through', () => {
    const strategy = createStrategy({ name: 'fedavgm', momentum: 0.5, serverLearningRate: 2 });
    const sum = new WeightedSum(1);
    sum.add(Float32Array.of(1), 1);
    const r1 = strategy.step(Float32Array.of(0), sum.result(), strategy.initialState(1), 1);
    expect(r1.weights[0]).toBe(2); // v1 = 1, w1 = 0 + 2·1
    expect(strategy.step(r1.weights, sum.result(), r1.state, 2).weights[0]).toBe(5); // v2 = 1.5, w2 = 2 + 3
  });

  it('rejects bad values naming the key', () => {
    expect(invalidConfigMessage({ name: 'fedavgm', momentum: 1 })).toMatch('strategy.momentum must be in [0, 1)');
    expect(invalidConfigMessage({ name: 'fedavgm', momentum: -0.1 })).toMatch('strategy.momentum');
    expect(invalidConfigMessage({ name: 'fedavg', serverLearningRate: 0 })).toMatch('strategy.serverLearningRate');
    expect(invalidConfigMessage({ name: 'fedavg', serverLearningRate: Infinity })).toMatch('strategy.serverLearningRate');
    expect(invalidConfigMessage({ name: 'fedavg', maxWeight: 0 })).toMatch('strategy.maxWeight');
    expect(invalidConfigMessage({ name: 'fedavg', maxWeight: '10' })).toMatch('strategy.maxWeight must be a number > 0, got "10"');
    expect(invalidConfigMessage({ name: 'fedprox', proximalMu: -1 })).toMatch('strategy.proximalMu');
    expect(invalidConfigMessage({ name: 'fedprox', proximalMu: Number.NaN })).toMatch('strategy.proximalMu');
  });

  it('rejects a missing proximalMu, an unknown name and options the strategy does not take', () => {
    expect(invalidConfigMessage({ name: 'fedprox' })).toMatch('strategy.proximalMu is required');
    expect(invalidConfigMessage({ name: 'fedsgd' })).toMatch('strategy.name must be one of fedavg, fedavgm, fedprox, fedadam, fedyogi, fedadagrad, fedmedian, fedtrimmedavg, krum, qfedavg, got "fedsgd"');
    expect(invalidConfigMessage({ name: 'toString' })).toMatch('strategy.name');
    expect(invalidConfigMessage({})).toMatch('strategy.name');
    expect(invalidConfigMessage({ name: 'fedavg', momentum: 0.9 })).toMatch('strategy.momentum is not an option of fedavg');
    expect(invalidConfigMessage({ name: 'fedavgm', proximalMu: 0.1 })).toMatch('strategy.proximalMu is not an option of fedavgm');
    expect(invalidConfigMessage({ name: 'fedavg', learningRate: 0.1 })).toMatch('strategy.learningRate');
  });

  it('validates the same way when the factories are called directly', async () => {
    const { fedAvgM } = await import('../src/index.js');
    expect(() => fedAvgM({ momentum: 2 })).toThrow(ShoalError);
  });
});
