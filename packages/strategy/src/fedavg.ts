import { meanDelta } from './aggregate.js';
import { STRATEGY_DEFAULTS } from './config.js';
import { checkMaxWeight, checkServerLearningRate } from './options.js';
import type { Strategy } from './strategy.js';

export interface FedAvgOptions {
  /** Server learning rate η applied to the mean update. Default 1 (plain FedAvg). */
  readonly serverLearningRate?: number;
  /**
   * Cap on one client's weight. `numExamples` is self-reported, so without a cap one client could
   * claim 2^53 examples and outweigh the whole cohort. Default 1,000 (the same as
   * `secagg.maxWeight`); Infinity for no cap, only with clients you trust.
   */
  readonly maxWeight?: number;
}

/** The default cap on a client's weight (its example count): the same as SecAgg's default `maxWeight`. */
export const DEFAULT_MAX_WEIGHT = STRATEGY_DEFAULTS.maxWeight;

/**
 * `global + learningRate · direction`, computed in Float64 and rounded once to Float32.
 * Returns a new array; `global` and `direction` are only read.
 */
export function applyUpdate(global: Float32Array, direction: ArrayLike<number>, learningRate: number): Float32Array {
  if (direction.length !== global.length) {
    throw new RangeError(`update has ${direction.length} values; the model has ${global.length}`);
  }
  const next = new Float32Array(global.length);
  for (let i = 0; i < next.length; i++) next[i] = global[i]! + learningRate * direction[i]!;
  return next;
}

/**
 * FedAvg (McMahan et al., AISTATS 2017) with a server learning rate:
 * new = global + η · weightedSum / totalWeight, where each client weighs min(numExamples, maxWeight).
 * Stateless: its state is `{}`.
 */
export function fedAvg(options: FedAvgOptions = {}): Strategy {
  const serverLearningRate = checkServerLearningRate(options.serverLearningRate ?? STRATEGY_DEFAULTS.serverLearningRate);
  const maxWeight = checkMaxWeight(options.maxWeight ?? DEFAULT_MAX_WEIGHT);
  return Object.freeze({
    name: 'fedavg',
    initialState: () => ({}),
    configureTrain: (_round, base) => base,
    clientWeight: (numExamples) => {
      if (!Number.isFinite(numExamples) || numExamples < 0) {
        throw new RangeError(`numExamples must be finite and >= 0, got ${numExamples}`);
      }
      return Math.min(numExamples, maxWeight);
    },
    step: (global, aggregate, state) => ({
      weights: applyUpdate(global, meanDelta(aggregate), serverLearningRate),
      state,
    }),
  } satisfies Strategy);
}
