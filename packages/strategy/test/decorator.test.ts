import type { TrainConfig } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { wrapStrategy, type Aggregate, type Strategy, type StrategyState } from '../src/index.js';

/** A strategy that records every call, so delegation is visible. */
function recordingStrategy(calls: string[]): Strategy {
  return {
    name: 'inner',
    initialState: (numParams) => { calls.push(`initialState ${numParams}`); return { inner: true }; },
    configureTrain: (round, base) => { calls.push(`configureTrain ${round}`); return { ...base, epochs: 7 }; },
    clientWeight: (numExamples) => { calls.push(`clientWeight ${numExamples}`); return numExamples * 2; },
    step: (global, _aggregate, state, round) => { calls.push(`step ${round}`); return { weights: global.map((x) => x + 1), state }; },
  };
}

const base: TrainConfig = { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 };
const aggregate: Aggregate = { weightedSum: Float64Array.of(1), totalWeight: 1, count: 1 };

describe('wrapStrategy', () => {
  it('delegates every hook not overridden, passing arguments through', () => {
    const calls: string[] = [];
    const wrapped = wrapStrategy(recordingStrategy(calls), { name: 'wrapped' });
    expect(wrapped.name).toBe('wrapped');
    expect(wrapped.initialState(5)).toEqual({ inner: true });
    expect(wrapped.configureTrain(2, base).epochs).toBe(7);
    expect(wrapped.clientWeight(3)).toBe(6);
    expect(Array.from(wrapped.step(Float32Array.of(1), aggregate, {}, 9).weights)).toEqual([2]);
    expect(calls).toEqual(['initialState 5', 'configureTrain 2', 'clientWeight 3', 'step 9']);
  });

  it('uses an override instead of the inner hook, and still delegates the rest', () => {
    const calls: string[] = [];
    const inner = recordingStrategy(calls);
    const step = (global: Float32Array, agg: Aggregate, state: StrategyState, round: number) => {
      const result = inner.step(global, agg, state, round);
      return { weights: result.weights.map((x) => x * 10), state: { ...result.state, wrapped: round } };
    };
    const wrapped = wrapStrategy(inner, { name: 'times10', step, clientWeight: () => 1 });
    const result = wrapped.step(Float32Array.of(1), aggregate, {}, 4);
    expect(Array.from(result.weights)).toEqual([20]);
    expect(result.state).toEqual({ wrapped: 4 });
    expect(wrapped.clientWeight(100)).toBe(1);
    expect(wrapped.configureTrain(1, base).epochs).toBe(7);
    expect(calls).toEqual(['step 4', 'configureTrain 1']);
  });
});
