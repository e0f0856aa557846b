import { meanDelta } from './aggregate.js';
import { STRATEGY_DEFAULTS } from './config.js';
import { wrapStrategy } from './decorator.js';
import { applyUpdate, fedAvg, type FedAvgOptions } from './fedavg.js';
import { checkMomentum, checkServerLearningRate } from './options.js';
import type { Strategy, StrategyState } from './strategy.js';

export interface FedAvgMOptions extends FedAvgOptions {
  /** Server momentum β. Default 0.9. */
  readonly momentum?: number;
}

/** The velocity in a FedAvgM state, checked because state may come back from a checkpoint. */
function velocityOf(state: StrategyState, numParams: number): Float64Array {
  const velocity = state['velocity'];
  if (!(velocity instanceof Float64Array) || velocity.length !== numParams) {
    throw new RangeError(`fedavgm state.velocity must be a Float64Array of ${numParams} values; use initialState()`);
  }
  return velocity;
}

/**
 * FedAvg with server momentum (Hsu et al. 2019): v ← β·v + meanDelta; new = global + η·v.
 * State: `{ velocity: Float64Array }` (kept in Float64 so a resumed run matches an unbroken one).
 * Client weighting and train config are FedAvg's.
 */
export function fedAvgM(options: FedAvgMOptions = {}): Strategy {
  const momentum = checkMomentum(options.momentum ?? STRATEGY_DEFAULTS.momentum);
  const serverLearningRate = checkServerLearningRate(options.serverLearningRate ?? STRATEGY_DEFAULTS.serverLearningRate);
  return wrapStrategy(fedAvg(options), {
    name: 'fedavgm',
    initialState: (numParams) => ({ velocity: new Float64Array(numParams) }),
    step: (global, aggregate, state) => {
      const previous = velocityOf(state, global.length);
      const mean = meanDelta(aggregate);
      const velocity = new Float64Array(global.length);
      for (let i = 0; i < velocity.length; i++) velocity[i] = momentum * previous[i]! + mean[i]!;
      return { weights: applyUpdate(global, velocity, serverLearningRate), state: { ...state, velocity } };
    },
  });
}
